"""Audit events are append-only, enforced by PostgreSQL twice over: the service's role may only
INSERT and SELECT them, and a trigger refuses UPDATE, DELETE and TRUNCATE even to the owner."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from audit_support import call
from helpers import create_subject
from registry.audit import chain
from registry.db.engine import create_engine

SERVICE_ROLE = "registry_service"


@pytest.fixture
async def owner(database_url, settings):
    engine = create_engine(database_url, settings, as_owner=True)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sealed_event(world, services) -> int:
    """The sequence number of a committed, sealed event."""
    subject = await create_subject(world)
    body, rid = await call(world, world.token("caseworker"), "query($id: UUID!) { subject(id: $id) { id } }", {"id": subject["id"]})
    assert body["data"]["subject"]
    await chain.seal_all(services.engine)
    async with services.engine.connect() as conn:
        return await conn.scalar(text("SELECT seq FROM audit_event WHERE request_id = :rid"), {"rid": rid})


def changes(seq: int) -> list[tuple[str, str]]:
    return [
        ("audit_event", f"UPDATE audit_event SET outcome = 'forged', actor_name = 'someone else' WHERE seq = {seq}"),
        ("audit_event", f"DELETE FROM audit_event WHERE seq = {seq}"),
        ("audit_event", "TRUNCATE audit_event CASCADE"),
        ("audit_seal", f"UPDATE audit_seal SET hash = '\\x00'::bytea WHERE event_seq = {seq}"),
        ("audit_seal", f"DELETE FROM audit_seal WHERE event_seq = {seq}"),
        ("audit_seal", "TRUNCATE audit_seal"),
    ]


async def snapshot(conn, seq: int) -> tuple:
    event = (await conn.execute(text("SELECT to_jsonb(e)::text FROM audit_event e WHERE seq = :s"), {"s": seq})).scalar_one()
    seal = (await conn.execute(text("SELECT to_jsonb(s)::text FROM audit_seal s WHERE event_seq = :s"), {"s": seq})).scalar_one()
    return event, seal


async def refused(engine, statement: str, *, as_service: bool) -> str:
    """Run `statement` (as the service role, or as the owner); the database's refusal message."""
    async with engine.connect() as conn:
        if as_service:
            await conn.execute(text(f"SET ROLE {SERVICE_ROLE}"))
        with pytest.raises(DBAPIError) as failure:
            await conn.execute(text(statement))
        await conn.rollback()
    assert failure.value.orig.sqlstate == "42501"  # insufficient_privilege
    return str(failure.value.orig)


async def test_the_service_works_as_the_restricted_role(services):
    async with services.engine.connect() as conn:
        assert await conn.scalar(text("SELECT current_user")) == SERVICE_ROLE
        privileges = {
            (table, privilege)
            for table in ("audit_event", "audit_seal")
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
            if await conn.scalar(text("SELECT has_table_privilege(:t, :p)"), {"t": table, "p": privilege})
        }
    assert privileges == {("audit_event", "SELECT"), ("audit_event", "INSERT"), ("audit_seal", "SELECT"), ("audit_seal", "INSERT")}


@pytest.mark.parametrize("case", range(6), ids=[f"{t}-{s.split()[0]}" for t, s in changes(0)])
async def test_the_service_role_cannot_change_or_remove_events(owner, sealed_event, case):
    table, statement = changes(sealed_event)[case]
    async with owner.connect() as conn:
        before = await snapshot(conn, sealed_event)

    message = await refused(owner, statement, as_service=True)

    assert f"permission denied for table {table}" in message
    async with owner.connect() as conn:
        assert await snapshot(conn, sealed_event) == before


@pytest.mark.parametrize("case", range(6), ids=[f"{t}-{s.split()[0]}" for t, s in changes(0)])
async def test_even_the_owner_is_refused_by_the_trigger(owner, sealed_event, case):
    table, statement = changes(sealed_event)[case]
    async with owner.connect() as conn:
        before = await snapshot(conn, sealed_event)

    message = await refused(owner, statement, as_service=False)

    verb = statement.split()[0]
    assert f"audit trail is append-only: {verb} on {table} refused" in message
    async with owner.connect() as conn:
        assert await snapshot(conn, sealed_event) == before


async def test_the_service_role_may_append_and_read(owner):
    async with owner.connect() as conn:
        await conn.execute(text(f"SET ROLE {SERVICE_ROLE}"))
        event_id = uuid.uuid4()
        await conn.execute(
            text(
                "INSERT INTO audit_event (id, action, outcome, actor_id, actor_name, actor_roles, break_glass, subject_ids, records, detail) "
                "VALUES (:id, 'records.consulted', 'ok', 'test', 'test', '{}', false, '{}', '[]', '{}')"
            ),
            {"id": event_id},
        )
        assert await conn.scalar(text("SELECT count(*) FROM audit_event WHERE id = :id"), {"id": event_id}) == 1
        await conn.rollback()
