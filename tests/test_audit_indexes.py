"""At volume, every question the DPO asks the audit trail is answered through an index: on a trail
of 200,000 events (built with generate_series in a database of its own), the plan of the very
statement each `auditEvents` filter, the page's `reviewed` lookup and the subject export's
disclosure log run contains no sequential scan of the events and uses the index made for it."""

from __future__ import annotations

import json
import os
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from audit_support import separate_database
from registry.audit import queries
from registry.audit.export import disclosures
from registry.config import Settings
from registry.db.engine import create_engine, create_sessionmaker
from registry.db.migrate import upgrade

EVENTS = 200_000
SUBJECT = uuid.UUID("00000000-0000-4000-8000-000000000007")  # in every 1,000th event
START = datetime(2026, 1, 1, tzinfo=timezone.utc)

# Mostly consultations by many callers; the rare actions, operations, purposes, agencies and
# break-glass events the DPO looks for are a small part, as in a real trail.
TRAIL = f"""
INSERT INTO audit_event (id, occurred_at, action, outcome, actor_id, actor_name, actor_agency, actor_roles,
                         purpose, operation, request_id, break_glass, subject_ids, records, detail)
SELECT gen_random_uuid(), '{START.isoformat()}'::timestamptz + n * interval '10 seconds',
       CASE WHEN n % 500 = 0 THEN 'subject.created' ELSE 'records.consulted' END, 'ok',
       'user-' || (n % 1000), 'User ' || (n % 1000),
       CASE WHEN n % 400 = 0 THEN 'POLICE' WHEN n % 3 = 0 THEN 'CUTA' ELSE 'YOUTH' END,
       ARRAY['caseworker'],
       CASE WHEN n % 200 = 0 THEN 'BREAK_GLASS' ELSE 'CASE_SUPERVISION' END,
       CASE WHEN n % 700 = 0 THEN 'RareOperation' ELSE 'SubjectFile' END,
       md5(n::text), n % 200 = 0,
       CASE WHEN n % 1000 = 7 THEN ARRAY['{SUBJECT}'::uuid] ELSE ARRAY[gen_random_uuid()] END,
       '[]'::json, '{{}}'::jsonb
FROM generate_series(1, {EVENTS}) AS n
"""
# Reviews of half the break-glass events.
REVIEWS = """
INSERT INTO audit_event (id, action, outcome, actor_id, actor_name, actor_roles, break_glass, subject_ids, records, detail)
SELECT gen_random_uuid(), 'break_glass.reviewed', 'ok', 'dpo-1', 'DPO', ARRAY['dpo'], false, subject_ids, '[]'::json,
       jsonb_build_object('reviewedEvent', id::text, 'note', 'reviewed')
FROM audit_event WHERE break_glass AND seq % 400 = 0
"""


@pytest.fixture(scope="module")
async def trail(server_url, tmp_path_factory):
    name = f"registry_audit_indexes_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    async with separate_database(server_url, name) as url:
        settings = Settings(database_url=url, data_dir=tmp_path_factory.mktemp("data"))
        owner = create_engine(url, settings, as_owner=True)
        try:
            await upgrade(owner)
            async with owner.begin() as conn:
                await conn.exec_driver_sql(TRAIL)
                await conn.exec_driver_sql(REVIEWS)
            async with owner.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("VACUUM ANALYZE audit_event")
            yield owner
        finally:
            await owner.dispose()


@asynccontextmanager
async def captured(engine):
    """The statements run on `engine` meanwhile, with their parameters, as the driver got them."""
    seen: list[tuple[str, tuple]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", keep)


def scans(plan: dict) -> list[tuple[str, str | None]]:
    """Every scan of the plan tree: (node type, index name)."""
    found = [(plan["Node Type"], plan.get("Index Name"))] if "Scan" in plan["Node Type"] else []
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


async def plan_of(engine, statement: str, parameters: tuple) -> list[tuple[str, str | None]]:
    async with engine.connect() as conn:
        result = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
        raw = result.scalar()
    return scans((json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"])


FILTERS = {
    "action": (queries.EventFilter(action="subject.created"), "ix_audit_event_action_seq"),
    "operation": (queries.EventFilter(operation="RareOperation"), "ix_audit_event_operation_seq"),
    "purpose": (queries.EventFilter(purpose="BREAK_GLASS"), "ix_audit_event_purpose_seq"),
    "agency": (queries.EventFilter(agency="POLICE"), "ix_audit_event_actor_agency_seq"),
    "actor": (queries.EventFilter(actor_id="user-7"), "ix_audit_event_actor_id_seq"),
    "subject": (queries.EventFilter(subject_id=SUBJECT), "ix_audit_event_subject_ids"),
    "time": (
        queries.EventFilter(since=START + timedelta(days=3), until=START + timedelta(days=3, hours=1)),
        "ix_audit_event_occurred_at",
    ),
    "breakGlass": (queries.EventFilter(break_glass=True), "ix_audit_event_break_glass"),
    "awaitingReview": (queries.EventFilter(awaiting_review=True), "ix_audit_event_break_glass"),
}


@pytest.mark.parametrize("name", FILTERS)
async def test_each_filter_of_the_audit_search_uses_its_index(trail, name):
    f, index = FILTERS[name]
    async with captured(trail) as seen:
        async with create_sessionmaker(trail)() as session:
            page = await queries.page(session, 50, None, f)
    assert page.rows, "the filter matches events of the trail"
    (statement, parameters), = seen
    plan = await plan_of(trail, statement, parameters)
    assert index in {i for _, i in plan}, plan
    assert not any(node == "Seq Scan" for node, _ in plan), plan
    if name == "awaitingReview":  # each event's review: one probe of the reviews' index
        assert "ix_audit_event_reviewed_event" in {i for _, i in plan}, plan
        assert all(not e.detail for e in page.rows) and all(e.break_glass for e in page.rows)


async def test_a_page_knows_which_events_were_reviewed_in_one_indexed_query(trail):
    async with create_sessionmaker(trail)() as session:
        page = await queries.page(session, 50, None, queries.EventFilter(break_glass=True))
        async with captured(trail) as seen:
            reviewed = await queries.reviewed(session, [e.id for e in page.rows])
    assert len(seen) == 1 and len(reviewed) == 50
    assert any(reviewed.values()) and not all(reviewed.values())
    plan = await plan_of(trail, *seen[0])
    assert "ix_audit_event_reviewed_event" in {i for _, i in plan}, plan
    assert not any(node == "Seq Scan" for node, _ in plan), plan


async def test_the_subject_exports_disclosure_log_uses_the_subject_index(trail):
    async with captured(trail) as seen:
        async with create_sessionmaker(trail)() as session:
            log = list(await session.scalars(disclosures(SUBJECT)))
    assert len(log) == EVENTS // 1000
    plan = await plan_of(trail, *seen[0])
    assert "ix_audit_event_subject_ids" in {i for _, i in plan}, plan
    assert not any(node == "Seq Scan" for node, _ in plan), plan
