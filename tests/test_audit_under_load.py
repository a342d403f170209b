"""Under load — 50 concurrent readers and writers of every role for 20 seconds — every request that
returned data has exactly its audit events (no missing, no duplicate), and the hash chain, sealed
while the load ran, verifies (DESIGN section 6). REGISTRY_TEST_LOAD_SECONDS shortens or lengthens it."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, or_, select

from audit_support import call
from conftest import national_number
from helpers import ADD_NOTE, CREATE_SUBJECT, UPDATE_SUBJECT, actor, codes, create_subject, draft_referral, step, subject_input
from registry.audit import chain
from registry.db.tables import AuditEvent

DURATION = float(os.environ.get("REGISTRY_TEST_LOAD_SECONDS", "20"))
WORKERS = 50

READ_SUBJECT = "query ReadSubject($id: UUID!) { subject(id: $id) { id givenName familyName legalStatus } }"
LIST_SUBJECTS = "query ListSubjects { subjects(first: 10) { edges { node { id reference familyName } } } }"
READ_REFERRAL = "query ReadReferral($id: UUID!) { referral(id: $id) { id status narrative } }"
AUDIT = "query Audit($agency: String!) { auditEvents(first: 5, filter: {agency: $agency}) { edges { node { id action } } } }"
LOOKUP = "query Lookup($n: String!) { lookupSubject(nationalNumber: $n) { outcome } }"

# Worker i does KINDS[i % len(KINDS)]: five kinds of readers, three of writers.
KINDS = ("read_subject", "create", "list_subjects", "update", "read_referral", "note", "audit", "lookup")
CHANGES = {"create": "subject.created", "update": "subject.updated", "note": "note.added"}


@dataclass
class Sent:
    kind: str
    request_id: str
    body: dict


def returned_data(sent: Sent) -> bool:
    """Whether the response carried records (an empty list carries none)."""
    root = next(iter((sent.body.get("data") or {}).values()), None)
    if root is None:
        return False
    return bool(root["edges"]) if sent.kind in ("list_subjects", "audit") else True


def expected_events(sent: Sent) -> Counter:
    if not returned_data(sent):
        # a lookup refused for its rate is still an event; a conflicting change is none
        return Counter({"access.refused": 1}) if "RATE_LIMITED" in codes(sent.body) else Counter()
    if sent.kind == "lookup":
        return Counter({"lookup.performed": 1})
    if sent.kind in CHANGES:
        return Counter({CHANGES[sent.kind]: 1, "records.consulted": 1})
    return Counter({"records.consulted": 1})


async def test_every_request_that_returned_data_has_its_events_and_the_chain_holds(world, services):
    # Given subjects with submitted referrals, and callers of every role
    officer = actor(world, "referral_officer")
    subjects, referrals, numbers = [], [], [national_number() for _ in range(5)]
    for number in numbers:
        subject = await create_subject(world, nationalNumber=number)
        referral = await step(world, "submit", await draft_referral(world, subject["id"], by=officer), officer)
        subjects.append(subject)
        referrals.append(referral)
    versions = {s["id"]: s["version"] for s in subjects}
    tokens = {role: world.token(role) for role in ("caseworker", "referral_officer", "analyst", "dpo")}
    sent: list[Sent] = []
    deadline = time.monotonic() + DURATION

    async def worker(n: int) -> None:
        kind = KINDS[n % len(KINDS)]
        partner = world.token("partner", agency="POLICE", name=f"load partner {n}")
        i = 0
        while time.monotonic() < deadline:
            i += 1
            subject = subjects[(n + i) % len(subjects)]
            if kind == "read_subject":
                body, rid = await call(world, tokens["caseworker"], READ_SUBJECT, {"id": subject["id"]})
            elif kind == "list_subjects":
                body, rid = await call(world, tokens["referral_officer"], LIST_SUBJECTS)
            elif kind == "read_referral":
                body, rid = await call(world, tokens["analyst"], READ_REFERRAL, {"id": referrals[(n + i) % len(referrals)]["id"]})
            elif kind == "audit":
                body, rid = await call(world, tokens["dpo"], AUDIT, {"agency": world.agency})
            elif kind == "lookup":
                number = numbers[i % len(numbers)] if i % 2 else national_number()  # hits and misses
                body, rid = await call(world, partner, LOOKUP, {"n": number})
            elif kind == "create":
                body, rid = await call(world, tokens["referral_officer"], CREATE_SUBJECT, {"input": subject_input(world)})
            elif kind == "update":
                change = {"id": subject["id"], "expectedVersion": versions[subject["id"]], "familyName": f"F{n}x{i}"}
                body, rid = await call(world, tokens["referral_officer"], UPDATE_SUBJECT, {"input": change})
                if body.get("data") and body["data"]["updateSubject"]:
                    versions[subject["id"]] = max(versions[subject["id"]], body["data"]["updateSubject"]["subject"]["version"])
                else:
                    versions[subject["id"]] = max(versions[subject["id"]], body["errors"][0]["extensions"].get("currentVersion", 0))
            else:  # note
                body, rid = await call(world, tokens["caseworker"], ADD_NOTE, {"input": {"subjectId": subject["id"], "body": f"Visit {i}."}})
            sent.append(Sent(kind, rid, body))

    async with services.sessions() as session:
        before = await session.scalar(select(func.max(AuditEvent.seq)))

    # When 50 of them work concurrently for the whole duration (the sealer running meanwhile)
    started = time.monotonic()
    await asyncio.gather(*(worker(n) for n in range(WORKERS)))
    elapsed = time.monotonic() - started
    await chain.seal_all(services.engine)

    # Then no request failed unexpectedly, and every kind of request got through
    assert not [s for s in sent if "INTERNAL" in codes(s.body)], "requests failed unexpectedly"
    assert {s.kind for s in sent if returned_data(s)} == set(KINDS)
    assert elapsed >= DURATION

    # And each request has exactly the events it should: none missing, none duplicated
    found: dict[str, Counter] = {s.request_id: Counter() for s in sent}
    ids = list(found)
    async with services.sessions() as session:
        for start in range(0, len(ids), 1000):
            rows = await session.execute(
                select(AuditEvent.request_id, AuditEvent.action).where(AuditEvent.request_id.in_(ids[start : start + 1000]))
            )
            for request_id, action in rows:
                found[request_id][action] += 1
        # and no event of these callers belongs to a request that was not sent
        ours = or_(AuditEvent.actor_name.like(f"% of {world.agency}"), AuditEvent.actor_name.like("load partner %"))
        stray = [r for r in await session.scalars(select(AuditEvent.request_id).where(AuditEvent.seq > before, ours)) if r not in found]
    wrong = [(s.kind, s.request_id, dict(found[s.request_id]), dict(expected_events(s))) for s in sent if found[s.request_id] != expected_events(s)]
    assert wrong == [], f"{len(wrong)} of {len(sent)} requests have the wrong events, e.g. {wrong[:5]}"
    assert stray == []
    assert sum(returned_data(s) for s in sent) > WORKERS * 5

    # And the whole chain verifies, every event sealed
    async with services.engine.begin() as conn:
        result = await chain.verify(conn)
    assert result.ok, result
    assert result.unsealed == 0 and result.sealed > 0
