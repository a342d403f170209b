"""The event outbox: what subscribers are told of, written by the change's own transaction.

An event row holds ids only (the record's and its subject's), never personal data; the
record itself is read at delivery with each subscriber's own row scope. Events are numbered
under a transaction-scoped advisory lock taken just before the commit, so ids are committed
in increasing order: a reader that has seen event N has seen every committed event before it,
and the id is a gap-free cursor. `NOTIFY` carries the id alone.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

import asyncpg
from sqlalchemy import bindparam, literal_column, select
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from registry.access.principal import Principal
from registry.access.scopes import record_scope, scope_key
from registry.db.tables import FollowUpNote, Referral, ThreatAssessment

CHANNEL = "registry_events"
# Any constant both the writers agree on: the key of the lock that orders the outbox ids.
_ORDER_LOCK = 0x5245_4745_5645_4E54 & 0x7FFF_FFFF_FFFF_FFFF

# Audit action of a change -> the event type subscribers are told of.
EVENTS = {
    "referral.submitted": "REFERRAL_SUBMITTED",
    "referral.acknowledged": "REFERRAL_ACKNOWLEDGED",
    "referral.closed": "REFERRAL_CLOSED",
    "assessment.validated": "ASSESSMENT_VALIDATED",
    "note.added": "NOTE_ADDED",
    "note.corrected": "NOTE_ADDED",  # the correction is a new note
}
RECORD_TYPES = {"Referral": Referral, "FollowUpNote": FollowUpNote, "ThreatAssessment": ThreatAssessment}


@dataclass(frozen=True, slots=True)
class Event:
    """One outbox row: ids and a time, nothing personal."""

    id: int
    type: str
    occurred_at: datetime
    record_type: str
    record_id: uuid.UUID
    subject_id: uuid.UUID


_COLUMNS = "id, type, occurred_at, record_type, record_id, subject_id"
_INSERT = (
    "INSERT INTO event_outbox (type, record_type, record_id, subject_id) VALUES ($1, $2, $3, $4) RETURNING id"
)


async def publish(session: AsyncSession, changes: Iterable[Any]) -> None:
    """Write the events of these changes (audit trail `Change`s) and notify their ids on commit.
    Call last before the commit: the ordering lock is held until then."""
    events = [(EVENTS[c.action], c.record) for c in changes if c.action in EVENTS]
    if not events:
        return
    connection = await session.connection()
    await connection.exec_driver_sql("SELECT pg_advisory_xact_lock($1)", (_ORDER_LOCK,))
    for type_, row in events:
        result = await connection.exec_driver_sql(
            _INSERT, (type_, type(row).__name__, row.id, row.subject_id)
        )
        event_id = result.scalar_one()
        await connection.exec_driver_sql("SELECT pg_notify($1, $2)", (CHANNEL, str(event_id)))


def _event(row: Any) -> Event:
    return Event(row["id"], row["type"], row["occurred_at"], row["record_type"], row["record_id"], row["subject_id"])


async def after(connection: asyncpg.Connection, last_id: int, limit: int = 500) -> list[Event]:
    """Committed events after `last_id`, oldest first."""
    rows = await connection.fetch(
        f"SELECT {_COLUMNS} FROM event_outbox WHERE id > $1 ORDER BY id LIMIT $2", last_id, limit
    )
    return [_event(r) for r in rows]


async def last_id(connection: asyncpg.Connection) -> int:
    """The newest committed event's id (0 when there is none)."""
    return await connection.fetchval("SELECT coalesce(max(id), 0) FROM event_outbox")


async def prune(connection: asyncpg.Connection, keep: timedelta) -> int:
    """Delete the events older than `keep`; their cursors are refused from then on anyway."""
    status = await connection.execute("DELETE FROM event_outbox WHERE occurred_at < now() - $1::interval", keep)
    return int(status.split()[-1])


_VISIBLE: dict[tuple, Any] = {}  # (record type, scope key) -> statement; the record id is its one parameter
_VISIBLE_MAX = 4096


def _visible_statement(kind: Any, principal: Principal) -> Any:
    """Built once per record type and scope: the row scope's expression costs far more to build
    than to run (about 2 ms), and every event is checked against every subscriber's scope."""
    key = (kind, scope_key(principal))
    statement = _VISIBLE.get(key)
    if statement is None:
        if len(_VISIBLE) >= _VISIBLE_MAX:
            _VISIBLE.clear()
        statement = _VISIBLE[key] = select(kind).where(kind.id == bindparam("record_id", value=None), record_scope(kind, principal))
    return statement


_DIALECT = postgresql_asyncpg.dialect()
_PARAMETER = re.compile(r"\$(\d+)")
_BATCHES: dict[tuple, tuple[str, list[Any]]] = {}  # (record type, scope keys) -> statement, arguments


def _scope_check(kind: type, principal: Principal) -> tuple[str, list[Any]]:
    """One scope's check as SQL text and its arguments (None where the record id goes)."""
    statement = _visible_statement(kind, principal).with_only_columns(literal_column("1"))
    compiled = statement.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    names = compiled.positiontup or []
    return compiled.string, [None if n == "record_id" else compiled.params[n] for n in names]


def _batch(kind: type, principals: list[Principal]) -> tuple[str, list[Any]]:
    key = (kind, tuple(scope_key(p) for p in principals))
    found = _BATCHES.get(key)
    if found is None:
        parts: list[str] = []
        arguments: list[Any] = []
        for i, principal in enumerate(principals):
            sql, args = _scope_check(kind, principal)
            offset = len(arguments)
            sql = _PARAMETER.sub(lambda m: f"${int(m.group(1)) + offset}", sql)
            parts.append(f"SELECT {i} AS scope WHERE EXISTS ({sql})")
            arguments.extend(args)
        if len(_BATCHES) >= 256:
            _BATCHES.clear()
        found = _BATCHES[key] = (" UNION ALL ".join(parts), arguments)
    return found


async def visible_to(connection: asyncpg.Connection, event: Event, principals: list[Principal]) -> list[bool]:
    """For each principal, whether the event's record is in their row scope: one statement for
    all of them (the scopes are the same predicates as `visible_record`'s, with their values as
    parameters), so an event costs one round trip whatever the number of scopes subscribed."""
    kind = RECORD_TYPES.get(event.record_type)
    if kind is None or not principals:
        return [False] * len(principals)
    sql, template = _batch(kind, principals)
    rows = await connection.fetch(sql, *(event.record_id if a is None else a for a in template))
    seen = {r["scope"] for r in rows}
    return [i in seen for i in range(len(principals))]


async def visible_record(session: AsyncSession, principal: Principal, event: Event) -> Any | None:
    """The event's record as the principal may see it now, or None (outside their row scope)."""
    kind = RECORD_TYPES.get(event.record_type)
    if kind is None:
        return None
    return await session.scalar(_visible_statement(kind, principal), {"record_id": event.record_id})
