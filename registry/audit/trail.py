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

    # type -> record id (text) -> fields (a sorted tuple). A compiled read of 50 referrals with
    # their notes discloses hundreds of records, most of them with one of a few field lists.
    by_type: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    subject_ids: set[str] = field(default_factory=set)

    def add(self, type_name: str, record_id: Any, subject_id: Any, names: Iterable[str]) -> None:
        if names:  # else nothing of the record was returned
            subjects = [] if subject_id is None else [str(subject_id)]
            self.add_many(type_name, tuple(sorted(set(names))), [str(record_id)], subjects)

    def add_many(self, type_name: str, names: tuple[str, ...], record_ids: list[str], subject_ids: list[str]) -> None:
        """Records of one type that disclosed the same fields (`names`, sorted)."""
        records = self.by_type.setdefault(type_name, {})
        before = {record_id: records[record_id] for record_id in records.keys() & record_ids}
        records.update(dict.fromkeys(record_ids, names))
        for record_id, had in before.items():  # disclosed before, maybe with other fields
            if had is not names:
                records[record_id] = tuple(sorted(set(had).union(names)))
        self.subject_ids.update(subject_ids)

    def records(self) -> list[dict[str, Any]]:
        return [
            {"type": type_name, "id": record_id, "fields": self.by_type[type_name][record_id]}
            for type_name in sorted(self.by_type)
            for record_id in sorted(self.by_type[type_name])
        ]

    def __bool__(self) -> bool:
        return any(self.by_type.values())


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


async def _execute(target: AsyncSession | asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> None:
    """Run `sql` in the caller's transaction: an ORM session's or a plain driver connection's."""
    if isinstance(target, AsyncSession):
        connection = await target.connection()
        await connection.exec_driver_sql(sql, args)
    else:
        await target.execute(sql, *args)


# The actor's columns (actor_values fills them), then the event's own.
_ACTOR_COLUMNS = ("id", "actor_id", "actor_name", "actor_agency", "actor_roles", "purpose", "justification",
                  "operation", "request_id")
_COLUMNS = ", ".join((*_ACTOR_COLUMNS, "action", "outcome", "break_glass", "subject_ids", "records", "detail"))
# Sent as is to the driver (a prepared statement, no SQL compilation): one per request.
_INSERT = f"INSERT INTO audit_event ({_COLUMNS}) VALUES ({', '.join(f'${n}' for n in range(1, 16))})"


def actor_values(actor: Actor) -> list[Any]:
    """A new event id and the actor's columns, in _ACTOR_COLUMNS order."""
    p = actor.principal
    return [uuid.uuid4(), p.id, p.name, p.agency, sorted(p.roles), actor.purpose, actor.justification,
            actor.operation, actor.request_id]


def consulted_insert(source: str, first: int) -> str:
    """The records.consulted event of a statement that works out itself what it disclosed
    (api.json_query): one event per row of `source`, a query with the columns `subject_ids` and
    `records`; the actor's values are the parameters from `$first` on (actor_values)."""
    actor = ", ".join(f"${first + i}" for i in range(len(_ACTOR_COLUMNS)))
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
    subject_ids: Iterable[uuid.UUID | str] = (),
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
    duplicates: Iterable[uuid.UUID | None] = (),
    searches: Iterable[tuple[Any, list[uuid.UUID]]] = (),
) -> None:
    """The events of one operation: what it changed, returned, answered and was refused."""
    for change in changes:
        await record(session, actor, change.action, **change.event())
    for existing_id in duplicates:
        await record(
            session, actor, "subject.duplicate_refused", outcome="refused",
            subject_ids=[existing_id] if existing_id else [],
            records=[{"type": "Subject", "id": str(existing_id)}] if existing_id else [],
        )
    for subject_id in lookups:
        hit = subject_id is not None
        await record(
            session, actor, "lookup.performed", subject_ids=[] if subject_id is None else [subject_id], detail={"outcome": "HIT" if hit else "NO_HIT"}
        )
    for search, found in searches:
        born = search.date_of_birth
        await record(
            session, actor, "subjects.searched", subject_ids=found,
            records=[{"type": "Subject", "id": subject_id} for subject_id in sorted(str(i) for i in found)],
            detail={"text": search.text, "dateOfBirth": born.isoformat() if born else None},
        )
    if disclosure:
        await record(
            session,
            actor,
            "records.consulted",
            subject_ids=disclosure.subject_ids,  # text: the driver writes it as uuid[]
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
