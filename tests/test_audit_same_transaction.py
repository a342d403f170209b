"""The audit event is written in the same transaction as the read or change it describes: when the
audit write fails, the request fails, returns no data, and changes nothing (DESIGN section 6)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select, text

from audit_support import call, events_of
from conftest import national_number
from helpers import CREATE_SUBJECT, codes, create_subject, subject_input
from registry.db.engine import create_engine
from registry.db.tables import RecordVersion, Subject


@pytest.fixture
async def failing_actor(database_url, settings):
    """A token subject whose audit events the database refuses to store (as a broken audit store would)."""
    actor_id = f"audit-fails-{uuid.uuid4().hex}"
    name = f"fail_audit_{uuid.uuid4().hex[:12]}"
    owner = create_engine(database_url, settings, as_owner=True)
    async with owner.begin() as conn:
        await conn.execute(
            text(
                f"""
                CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  IF NEW.actor_id = '{actor_id}' THEN RAISE EXCEPTION 'audit store unavailable (test)'; END IF;
                  RETURN NEW;
                END $$
                """
            )
        )
        await conn.execute(text(f"CREATE TRIGGER {name} BEFORE INSERT ON audit_event FOR EACH ROW EXECUTE FUNCTION {name}()"))
    try:
        yield actor_id
    finally:
        async with owner.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER {name} ON audit_event"))
            await conn.execute(text(f"DROP FUNCTION {name}()"))
        await owner.dispose()


def token_for(world, actor_id: str, role: str, **claims) -> str:
    claims.setdefault("agency", world.agency)
    return world.services.dev_issuer.issue(role=role, subject=actor_id, name=f"{role} {actor_id[-6:]}", **claims)


def internal_error_only(body: dict) -> bool:
    return body["data"] is None and codes(body) == ["INTERNAL"]


async def test_a_read_whose_event_cannot_be_written_returns_no_data(world, services, failing_actor):
    # Given a subject, and a caseworker whose audit events cannot be stored
    subject = await create_subject(world, givenName="Nobody-Should-See")
    query = "query($id: UUID!) { subject(id: $id) { id givenName familyName } }"
    failing = token_for(world, failing_actor, "caseworker", unit=world.unit)

    # When that caseworker reads the subject
    body, rid = await call(world, failing, query, {"id": subject["id"]}, purpose="CASE_SUPERVISION")

    # Then the request fails as INTERNAL with the request id, and nothing of the subject is returned
    assert internal_error_only(body), body
    assert body["errors"][0]["extensions"]["requestId"] == rid
    assert "Nobody-Should-See" not in str(body)
    assert await events_of(services, rid) == []

    # While the same read by anyone else is returned and audited
    body, rid = await call(world, world.token("caseworker"), query, {"id": subject["id"]})
    assert body["data"]["subject"]["givenName"] == "Nobody-Should-See"
    assert [e.action for e in await events_of(services, rid)] == ["records.consulted"]


async def test_a_change_whose_event_cannot_be_written_leaves_no_trace(world, services, failing_actor):
    # Given a referral officer whose audit events cannot be stored
    failing = token_for(world, failing_actor, "referral_officer")
    number = national_number()

    # When they register a subject
    body, rid = await call(world, failing, CREATE_SUBJECT, {"input": subject_input(world, nationalNumber=number)}, purpose="CASE_SUPERVISION")

    # Then the request fails, and neither the subject nor its first version exists
    assert internal_error_only(body), body
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Subject).where(Subject.national_number == number)) == 0
        assert await session.scalar(select(func.count()).select_from(RecordVersion).where(RecordVersion.changed_by.contains(failing_actor[-6:]))) == 0
    assert await events_of(services, rid) == []


async def test_a_lookup_whose_event_cannot_be_written_gives_no_answer(world, services, failing_actor):
    number = national_number()
    await create_subject(world, nationalNumber=number)
    failing = token_for(world, failing_actor, "partner", agency="POLICE")

    body, rid = await call(world, failing, "query($n: String!) { lookupSubject(nationalNumber: $n) { outcome } }", {"n": number}, purpose="LOOKUP")

    assert internal_error_only(body), body
    assert await events_of(services, rid) == []


async def test_a_refusal_whose_event_cannot_be_written_fails_too(world, services, failing_actor):
    subject = await create_subject(world)
    failing = token_for(world, failing_actor, "caseworker", unit=world.unit)

    body, rid = await call(world, failing, "query($id: UUID!) { subject(id: $id) { id } }", {"id": subject["id"]}, purpose=None)

    assert internal_error_only(body), body
    assert await events_of(services, rid) == []


async def test_a_compiled_read_whose_event_cannot_be_written_returns_no_data(world, services, failing_actor):
    # Given a read the compiler has learned (the resolvers ran it once for a caseworker)
    subject = await create_subject(world, givenName="Compiled-Nobody")
    query = "query Compiled($id: UUID!) { subject(id: $id) { id givenName } }"
    await call(world, world.token("caseworker"), query, {"id": subject["id"]})
    failing = token_for(world, failing_actor, "caseworker", unit=world.unit)
    runs = services.compiler.compiled_runs

    # When a caseworker whose audit events cannot be stored reads it, as one compiled statement
    body, rid = await call(world, failing, query, {"id": subject["id"]}, purpose="CASE_SUPERVISION")

    # Then the compiled read failed as a whole: no data, no event
    assert services.compiler.compiled_runs == runs + 1
    assert internal_error_only(body), body
    assert "Compiled-Nobody" not in str(body)
    assert await events_of(services, rid) == []
