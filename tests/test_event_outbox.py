"""Each change subscribers are told of writes one outbox event in its own transaction, and
NOTIFY carries only the event's id."""

from __future__ import annotations

import asyncio

import asyncpg

from helpers import actor, create_subject, draft_assessment, draft_referral, step, validate_assessment, ADD_NOTE


async def _events_after(url: str, last: int) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch("SELECT * FROM event_outbox WHERE id > $1 ORDER BY id", last)
    finally:
        await conn.close()


async def test_workflow_writes_one_event_per_change_and_notifies_ids_only(world, database_url):
    # given a listener on the events channel, and the id of the newest event so far
    listener = await asyncpg.connect(database_url)
    heard: list[str] = []
    await listener.add_listener("registry_events", lambda *args: heard.append(args[3]))
    before = await listener.fetchval("SELECT coalesce(max(id), 0) FROM event_outbox")
    officer, analyst, senior = actor(world, "referral_officer"), actor(world, "analyst"), actor(world, "senior_analyst")
    try:
        # when a referral is drafted, submitted, acknowledged and closed, a note is added and
        # an assessment drafted and validated
        subject = await create_subject(world)
        referral = await draft_referral(world, subject["id"], by=officer)
        referral = await step(world, "submit", referral, officer)
        referral = await step(world, "acknowledge", referral, analyst)
        await officer.ok(ADD_NOTE, {"input": {"subjectId": subject["id"], "body": "Met the family.", "visibility": "SHARED"}})
        assessment = await draft_assessment(world, subject["id"], by=analyst)
        await validate_assessment(assessment, by=senior)
        await step(world, "close", referral, officer)
        for _ in range(50):
            if len(heard) >= 5:
                break
            await asyncio.sleep(0.05)
    finally:
        await listener.close()
    # then the outbox holds exactly the five events, in commit order, with ids only
    rows = await _events_after(database_url, before)
    assert [r["type"] for r in rows] == [
        "REFERRAL_SUBMITTED", "REFERRAL_ACKNOWLEDGED", "NOTE_ADDED", "ASSESSMENT_VALIDATED", "REFERRAL_CLOSED",
    ]
    assert {str(r["subject_id"]) for r in rows} == {subject["id"]}
    assert rows[0]["record_type"] == "Referral" and str(rows[0]["record_id"]) == referral["id"]
    assert set(rows[0].keys()) == {"id", "type", "occurred_at", "record_type", "record_id", "subject_id"}
    # and each notification carried the event's id and nothing else
    assert heard == [str(r["id"]) for r in rows]


async def test_a_refused_change_writes_no_event(world, database_url):
    # given a drafted referral
    officer = actor(world, "referral_officer")
    subject = await create_subject(world)
    referral = await draft_referral(world, subject["id"], by=officer)
    conn = await asyncpg.connect(database_url)
    before = await conn.fetchval("SELECT coalesce(max(id), 0) FROM event_outbox")
    await conn.close()
    # when a caseworker tries to submit it (not theirs to submit) and a stale submit is sent
    await actor(world, "caseworker").gql(
        "mutation($i: ReferralTransitionInput!) { submitReferral(input: $i) { referral { id } } }",
        {"i": {"id": referral["id"], "expectedVersion": referral["version"]}},
    )
    await officer.gql(
        "mutation($i: ReferralTransitionInput!) { submitReferral(input: $i) { referral { id } } }",
        {"i": {"id": referral["id"], "expectedVersion": referral["version"] + 5}},
    )
    # then no event was written
    assert await _events_after(database_url, before) == []


async def test_events_older_than_the_kept_period_are_pruned_by_the_service_role(database_url):
    from datetime import timedelta
    import uuid

    from registry.domain import outbox

    # given an event written 8 days ago and one just now
    conn = await asyncpg.connect(database_url)
    try:
        old = await conn.fetchval(
            "INSERT INTO event_outbox (type, occurred_at, record_type, record_id, subject_id)"
            " VALUES ('NOTE_ADDED', now() - interval '8 days', 'FollowUpNote', $1, $1) RETURNING id", uuid.uuid4()
        )
        new = await conn.fetchval(
            "INSERT INTO event_outbox (type, record_type, record_id, subject_id)"
            " VALUES ('NOTE_ADDED', 'FollowUpNote', $1, $1) RETURNING id", uuid.uuid4()
        )
        # when the service role prunes what is older than 7 days
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE registry_service")
            removed = await outbox.prune(conn, timedelta(days=7))
        # then the old event is gone and the new one kept
        remaining = {r["id"] for r in await conn.fetch("SELECT id FROM event_outbox WHERE id = ANY($1)", [old, new])}
        assert removed >= 1 and remaining == {new}
    finally:
        await conn.close()
