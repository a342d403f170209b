"""The one writer of audit events. Called inside the request's transaction, so an event exists
exactly when the read or change it describes took effect."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from registry.access.principal import Principal
from registry.audit.actions import ACTIONS


@dataclass
class Disclosure:
    """What one request returned: records (type, id) and, per record, the fields disclosed."""

    # Ids as text: a compiled read has them as text already, and 50 records x 10 notes add up.
    fields: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    subject_ids: set[str] = field(default_factory=set)

    def add(self, type_name: str, record_id: Any, subject_id: Any, names: Iterable[str]) -> None:
        if not names:
            return  # nothing of the record was returned
        self.fields.setdefault((type_name, str(record_id)), set()).update(names)
        if subject_id is not None:
            self.subject_ids.add(str(subject_id))

    def records(self) -> list[dict[str, Any]]:
        ordered: dict[frozenset[str], list[str]] = {}  # most records share a few field sets
        out = []
        for (type_name, record_id), names in sorted(self.fields.items()):
            key = frozenset(names)
            if key not in ordered:
                ordered[key] = sorted(key)
            out.append({"type": type_name, "id": record_id, "fields": ordered[key]})
        return out

    def __bool__(self) -> bool:
        return bool(self.fields)


@dataclass
class Change:
    """One mutation's effect: the record it changed and its versions before and after."""

    action: str
    session: AsyncSession
    record: Any = None
    version_before: int | None = None

    def done(self, row: Any, *, before: int | None = None) -> Any:
        self.record, self.version_before = row, before
        return row

    def event(self) -> dict[str, Any]:
        row = self.record
        return {
            "subject_ids": [getattr(row, "subject_id", None) or row.id],
            "records": [{"type": type(row).__name__, "id": str(row.id)}],
            "detail": {"versionBefore": self.version_before, "versionAfter": getattr(row, "version", None)},
        }


@dataclass(frozen=True)
class Actor:
    """Who acted and in which request: copied into every event of that request."""

    principal: Principal
    request_id: str | None = None
    operation: str | None = None
    purpose: str | None = None
    justification: str | None = None


async def _execute(target: AsyncSession | asyncpg.Connection, sql: str, args: tuple) -> None:
    """Run `sql` in the caller's transaction: an ORM session's or a plain driver connection's."""
    if isinstance(target, AsyncSession):
        connection = await target.connection()
        await connection.exec_driver_sql(sql, args)
    else:
        await target.execute(sql, *args)


_COLUMNS = (
    "id, actor_id, actor_name, actor_agency, actor_roles, purpose, justification, operation, request_id,"
    " action, outcome, break_glass, subject_ids, records, detail"
)
# Sent as is to the driver (a prepared statement, no SQL compilation): one per request.
_INSERT = (
    f"INSERT INTO audit_event ({_COLUMNS})"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
)


def actor_values(actor: Actor) -> list[Any]:
    """A new event id and the actor's columns, in _COLUMNS order."""
    p = actor.principal
    return [
        uuid.uuid4(),
        p.id,
        p.name,
        p.agency,
        sorted(p.roles),
        actor.purpose,
        actor.justification,
        actor.operation,
        actor.request_id,
    ]


ACTOR_VALUES = 9  # how many values actor_values gives


def consulted_insert(source: str, first: int) -> str:
    """The records.consulted event of a statement that works out itself what it disclosed
    (db.json_query): one event per row of `source`, a query with the columns `subject_ids`
    and `records`; the actor's values are the parameters from `$first` (actor_values)."""
    actor = ", ".join(f"${first + i}" for i in range(ACTOR_VALUES))
    return (
        f"INSERT INTO audit_event ({_COLUMNS})"
        f" SELECT {actor}, 'records.consulted', 'ok', false, subject_ids, records, '{{}}'::jsonb FROM {source}"
    )


async def record(
    session: AsyncSession | asyncpg.Connection,
    actor: Actor,
    action: str,
    *,
    outcome: str = "ok",
    subject_ids: set[uuid.UUID] | list[uuid.UUID] = (),
    records: list[dict[str, Any]] | None = None,
    detail: dict[str, Any] | None = None,
    break_glass: bool = False,
) -> None:
    """Append one event; if this fails, the caller's transaction fails with it."""
    if action not in ACTIONS:
        raise ValueError(f"undeclared audit action {action!r}")
    await _execute(
        session,
        _INSERT,
        (
            *actor_values(actor),
            action,
            outcome,
            break_glass,
            sorted(set(subject_ids), key=str),
            orjson.dumps(records or []).decode(),
            orjson.dumps(detail or {}).decode(),
        ),
    )


REFUSALS = ("FORBIDDEN", "PURPOSE_REQUIRED", "RATE_LIMITED")


async def record_request(
    session: AsyncSession | asyncpg.Connection,
    actor: Actor,
    *,
    disclosure: Disclosure,
    changes: list[Change],
    lookups: list[uuid.UUID | None],
    errors: list[dict[str, Any]],
    break_glass: bool,
) -> None:
    """The events of one operation: what it changed, returned, answered and was refused."""
    for change in changes:
        await record(session, actor, change.action, **change.event())
    for subject_id in lookups:
        hit = subject_id is not None
        await record(
            session, actor, "lookup.performed", subject_ids=[subject_id] if hit else [], detail={"outcome": "HIT" if hit else "NO_HIT"}
        )
    if disclosure:
        await record(
            session,
            actor,
            "records.consulted",
            subject_ids=[uuid.UUID(s) for s in disclosure.subject_ids],
            records=disclosure.records(),
            break_glass=break_glass,
        )
    refused = [e["extensions"] for e in errors if e.get("extensions", {}).get("code") in REFUSALS]
    if refused:
        await record(
            session,
            actor,
            "access.refused",
            outcome="refused",
            detail={"refusals": [{"code": r["code"], "field": r.get("field")} for r in refused]},
            break_glass=break_glass,
        )
