"""The DPO's questions at volume: a trail of a million events or more, and how fast each is answered.

  .venv/bin/python bench/audit_volume.py SERVER_URL [--events 1000000] [--repeat 30] [--keep]

SERVER_URL is a PostgreSQL server (e.g. postgresql://postgres@127.0.0.1:5432/postgres); the
benchmark makes a database of its own there (registry_audit_volume), migrated and seeded with the
demo data. The trail is built as a deployment's would be: the service itself (in process, through
POST /graphql with development tokens) writes events of every kind — consultations of lists and
files, changes, partner lookups, refusals, break-glass reads and their reviews — and these events
are replicated with INSERT .. SELECT over generate_series, in the proportions of a working day
(actors, agencies and subjects varied), then sealed by the project's own sealer. Measured: the
sealer's rate; each `auditEvents` filter through HTTP as the DPO (p50/p95 of --repeat runs after
warm-up), the subject export's disclosure log, and `verify`'s rate. Prints a Markdown table and
writes it to bench/results/audit-volume-<UTC time>.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from registry.app import create_app  # noqa: E402
from registry.audit import chain  # noqa: E402
from registry.audit.export import disclosures  # noqa: E402
from registry.config import Settings  # noqa: E402
from registry.db.engine import create_engine, create_sessionmaker  # noqa: E402
from registry.db.migrate import upgrade  # noqa: E402
from registry.domain.demo import seed  # noqa: E402

DATABASE = "registry_audit_volume"
RESULTS = Path(__file__).resolve().parent / "results"

# Share of the replicated trail per kind of template event (break-glass: 1 in 400 events).
WEIGHTS = {
    "records.consulted": 80.0, "lookup.performed": 8.0, "access.refused": 3.0, "subject.updated": 4.0,
    "subject.created": 1.0, "referral.drafted": 1.0, "break_glass": 0.25,
}
AUDIT = """query AuditSearch($filter: AuditEventFilter) { auditEvents(first: 50, filter: $filter) {
  edges { cursor node { id sequence occurredAt action actorId actorAgency purpose operation breakGlass reviewed
                         subjectIds records { type id fields } } }
  pageInfo { hasNextPage endCursor } } }"""


def url_of(server: str, database: str) -> str:
    return make_url(server.replace("postgres://", "postgresql://", 1)).set(database=database).render_as_string(hide_password=False)


async def fresh_database(server: str) -> str:
    admin = await asyncpg.connect(url_of(server, "postgres"))
    await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    await admin.close()
    return url_of(server, DATABASE)


class Service:
    """The registry in process, and callers with development tokens."""

    def __init__(self, app) -> None:
        self.app, self.services = app, app.state.services
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry", timeout=120)

    def token(self, role: str, agency: str, unit: str | None = None, name: str | None = None) -> str:
        return self.services.dev_issuer.issue(role=role, agency=agency, unit=unit, name=name or f"Bench {role}")

    async def gql(self, token: str, query: str, variables: dict | None = None, **headers: str) -> dict:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers={"Authorization": f"Bearer {token}", **headers}
        )
        response.raise_for_status()
        return response.json()


async def write_templates(service: Service) -> None:
    """Events of every kind, written by the service itself."""
    caseworker = service.token("caseworker", "YOUTH", "IPPJ-BRAINE")
    officer = service.token("referral_officer", "YOUTH")
    analyst = service.token("analyst", "CUTA")
    partner = service.token("partner", "POLICE")
    dpo = service.token("dpo", "YOUTH")
    cs = {"Registry-Purpose": "CASE_SUPERVISION"}
    listing = await service.gql(caseworker, "query UnitList { subjects(first: 20) { edges { node { id givenName familyName institution } } } }", **cs)
    ids = [e["node"]["id"] for e in listing["data"]["subjects"]["edges"]]
    file = "query SubjectFile($id: UUID!) { subject(id: $id) { id givenName familyName referrals { id reason narrative } notes { id body } } }"
    for subject in ids[:3]:
        await service.gql(officer, file, {"id": subject}, **cs)
    await service.gql(analyst, "query ReferralInbox { referrals(first: 20) { edges { node { id reason narrative subject { id givenName } } } } }",
                      **{"Registry-Purpose": "THREAT_ASSESSMENT"})
    for number in ("00000000097", "08010100123"):
        await service.gql(partner, "query LookupSubject($n: String!) { lookupSubject(nationalNumber: $n) { outcome contactAgency } }",
                          {"n": number}, **{"Registry-Purpose": "LOOKUP"})
    await service.gql(partner, "query Browse { subjects { edges { node { id } } } }", **{"Registry-Purpose": "LOOKUP"})
    version = (await service.gql(officer, "query V($id: UUID!) { subject(id: $id) { version } }", {"id": ids[0]}, **cs))["data"]["subject"]["version"]
    await service.gql(officer, "mutation UpdateSubject($input: UpdateSubjectInput!) { updateSubject(input: $input) { subject { id version } } }",
                      {"input": {"id": ids[0], "expectedVersion": version, "legalStatus": "CONCERN"}}, **cs)
    # A break-glass read: an analyst reads a file outside their scope
    async with service.services.engine.connect() as conn:
        hidden = await conn.scalar(text(
            "SELECT s.id FROM subject s WHERE NOT EXISTS (SELECT 1 FROM referral r WHERE r.subject_id = s.id AND r.status <> 'DRAFT') LIMIT 1"
        ))
    await service.gql(analyst, file.replace("SubjectFile", "EmergencyFile"), {"id": str(hidden)},
                      **{"Registry-Purpose": "BREAK_GLASS", "Registry-Justification": "Imminent threat reported by a partner service."})
    await service.gql(dpo, AUDIT, {"filter": {"breakGlass": True}}, **{"Registry-Purpose": "DATA_PROTECTION_AUDIT"})


def kind(action: str, break_glass: bool) -> str:
    return "break_glass" if break_glass else action


async def replicate(owner, events: int) -> dict[str, int]:
    """The service's events, copied in the proportions of WEIGHTS up to `events` in all."""
    async with owner.connect() as conn:
        templates = (await conn.execute(text("SELECT seq, action, break_glass FROM audit_event ORDER BY seq"))).all()
    present = {kind(t.action, t.break_glass) for t in templates}
    weights = {k: w for k, w in WEIGHTS.items() if k in present}
    per_kind = {k: sum(1 for t in templates if kind(t.action, t.break_glass) == k) for k in weights}
    total = sum(weights.values())
    copies: dict[str, int] = {}
    async with owner.begin() as conn:
        for t in templates:
            k = kind(t.action, t.break_glass)
            if k not in weights:
                continue
            n = max(1, round(events * weights[k] / total / per_kind[k]))
            copies[k] = copies.get(k, 0) + n
            await conn.execute(text(
                """
                INSERT INTO audit_event (id, occurred_at, action, outcome, actor_id, actor_name, actor_agency, actor_roles,
                                         purpose, justification, operation, request_id, break_glass, subject_ids, records, detail)
                SELECT gen_random_uuid(), clock_timestamp(), e.action, e.outcome, e.actor_id || ':' || (n % 300),
                       e.actor_name || ' ' || (n % 300), e.actor_agency, e.actor_roles, e.purpose, e.justification, e.operation,
                       md5(e.seq::text || ':' || n), e.break_glass,
                       CASE WHEN n % 2000 = 0 THEN e.subject_ids
                            ELSE ARRAY(SELECT gen_random_uuid() FROM unnest(e.subject_ids)) END,
                       e.records, e.detail
                FROM audit_event e, generate_series(1, :n) AS n WHERE e.seq = :seq
                """
            ), {"n": n, "seq": t.seq})
        # The DPO has reviewed half of the break-glass reads
        await conn.execute(text(
            """
            INSERT INTO audit_event (id, occurred_at, action, outcome, actor_id, actor_name, actor_agency, actor_roles, purpose,
                                     operation, break_glass, subject_ids, records, detail)
            SELECT gen_random_uuid(), clock_timestamp(), 'break_glass.reviewed', 'ok', 'dpo-bench', 'Bench DPO', 'YOUTH',
                   ARRAY['dpo'], 'DATA_PROTECTION_AUDIT', 'ReviewBreakGlass', false, subject_ids, '[]'::json,
                   jsonb_build_object('reviewedEvent', id::text, 'note', 'Justified: the report of the partner was confirmed.')
            FROM audit_event WHERE break_glass AND seq % 2 = 0
            """
        ))
    return copies


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, round(0.95 * len(ordered)) - 1)]


async def measure(label: str, run, repeat: int) -> dict:
    for _ in range(3):
        await run()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - started) * 1000)
    p50, p95 = percentiles(samples)
    print(f"  {label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)
    return {"query": label, "p50": p50, "p95": p95}


async def main(server: str, events: int, repeat: int, keep: bool) -> None:
    url = await fresh_database(server)
    settings = Settings(database_url=url, data_dir=Path(tempfile.mkdtemp(prefix="audit-volume-")), audit_seal_interval_seconds=3600,
                        statement_timeout_ms=600_000)
    owner = create_engine(url, settings, as_owner=True)
    await upgrade(owner)
    print(await seed(owner), flush=True)
    app = create_app(settings)
    rows: list[dict] = []
    async with app.router.lifespan_context(app):
        service = Service(app)
        await write_templates(service)
        started = time.perf_counter()
        copies = await replicate(owner, events)
        built = time.perf_counter() - started
        async with owner.connect() as conn:
            total = await conn.scalar(text("SELECT count(*) FROM audit_event"))
        print(f"trail: {total:,} events ({copies}) inserted in {built:.0f} s", flush=True)
        started = time.perf_counter()
        sealed = await chain.seal_all(owner)
        sealing = time.perf_counter() - started
        print(f"sealed by the sealer: {sealed:,} events in {sealing:.0f} s ({sealed / sealing:,.0f} events/s)", flush=True)
        async with owner.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE audit_event")
            await conn.exec_driver_sql("VACUUM ANALYZE audit_seal")
            size = await conn.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('audit_event'))"))
            sample = (await conn.execute(text(
                "SELECT actor_id, subject_ids[1] AS subject, occurred_at FROM audit_event WHERE action = 'records.consulted' ORDER BY seq LIMIT 1 OFFSET :o"
            ), {"o": total // 2})).first()
            # The replicated trail was written within minutes (the sealer seals recent events only): a
            # time window holds as many events as an hour of a deployment writing a million a month.
            window_end = await conn.scalar(text(
                "SELECT occurred_at FROM audit_event WHERE occurred_at > :t ORDER BY occurred_at LIMIT 1 OFFSET 1400"
            ), {"t": sample.occurred_at})
            template_subject = await conn.scalar(text("SELECT subject_ids[1] FROM audit_event WHERE action = 'subject.updated' ORDER BY seq LIMIT 1"))
        dpo = service.token("dpo", "YOUTH")
        headers = {"Registry-Purpose": "DATA_PROTECTION_AUDIT"}
        filters = {
            "no filter": {},
            "subjectId": {"subjectId": str(sample.subject)},
            "actorId": {"actorId": sample.actor_id},
            "agency (POLICE)": {"agency": "POLICE"},
            "purpose (LOOKUP)": {"purpose": "LOOKUP"},
            "operation (UpdateSubject)": {"operation": "UpdateSubject"},
            "operation (none match)": {"operation": "NoSuchOperation"},
            "action (subject.updated)": {"action": "subject.updated"},
            "action (none match)": {"action": "referral.closed"},
            "since/until (1,400 events)": {"since": sample.occurred_at.isoformat(), "until": window_end.isoformat()},
            "breakGlass": {"breakGlass": True},
            "awaitingReview": {"awaitingReview": True},
        }
        print(f"DPO queries ({repeat} runs each after 3 warm-up runs), audit_event {size}:", flush=True)
        for label, f in filters.items():
            async def run(f=f):
                body = await service.gql(dpo, AUDIT, {"filter": f}, **headers)
                assert "errors" not in body, body["errors"]
            rows.append(await measure(f"auditEvents {label}", run, repeat))

        sessions = create_sessionmaker(owner)

        async def export_log(subject=template_subject):
            async with sessions() as session:
                return len(list(await session.scalars(disclosures(subject))))
        found = await export_log()
        rows.append(await measure(f"export-subject disclosure log ({found:,} events)", export_log, repeat))
        await service.client.aclose()
    started = time.perf_counter()
    async with owner.begin() as conn:
        result = await chain.verify(conn)
    took = time.perf_counter() - started
    assert result.ok, result.reason
    print(f"verify: {result.sealed:,} events in {took:.1f} s ({result.sealed / took:,.0f} events/s)", flush=True)
    await owner.dispose()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lines = [
        f"# DPO queries at volume ({stamp})", "",
        f"Trail: {total:,} events, audit_event {size}; sealed by the sealer at {sealed / sealing:,.0f} events/s; "
        f"verify {result.sealed / took:,.0f} events/s ({took:.1f} s).", "",
        "| query | p50 ms | p95 ms |", "|---|---|---|",
        *(f"| {r['query']} | {r['p50']:.1f} | {r['p95']:.1f} |" for r in rows),
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"audit-volume-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not keep:
        admin = await asyncpg.connect(url_of(server, "postgres"))
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("server")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    asyncio.run(main(args.server, args.events, args.repeat, args.keep))
