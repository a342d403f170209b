"""The one writer of audit events. Called inside the request's transaction, so an event exists
exactly when the read or change it describes took effect."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from registry.access.principal import Principal
from registry.audit.actions import ACTIONS
from registry.db.tables import AuditEvent


@dataclass
class Disclosure:
    """What one request returned: records (type, id) and, per record, the fields disclosed."""

    fields: dict[tuple[str, uuid.UUID], set[str]] = field(default_factory=dict)
    subject_ids: set[uuid.UUID] = field(default_factory=set)

    def add(self, type_name: str, record_id: uuid.UUID, subject_id: uuid.UUID | None, field_name: str) -> None:
        self.fields.setdefault((type_name, record_id), set()).add(field_name)
        if subject_id is not None:
            self.subject_ids.add(subject_id)

    def records(self) -> list[dict[str, Any]]:
        return [
            {"type": type_name, "id": str(record_id), "fields": sorted(names)}
            for (type_name, record_id), names in sorted(self.fields.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))
        ]

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


async def record(
    session: AsyncSession,
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
    p = actor.principal
    await session.execute(
        insert(AuditEvent).values(
            id=uuid.uuid4(),
            action=action,
            outcome=outcome,
            actor_id=p.id,
            actor_name=p.name,
            actor_agency=p.agency,
            actor_roles=sorted(p.roles),
            purpose=actor.purpose,
            justification=actor.justification,
            operation=actor.operation,
            request_id=actor.request_id,
            break_glass=break_glass,
            subject_ids=sorted(set(subject_ids), key=str),
            records=records or [],
            detail=detail or {},
        )
    )


REFUSALS = ("FORBIDDEN", "PURPOSE_REQUIRED", "RATE_LIMITED")


async def record_request(
    session: AsyncSession,
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
            subject_ids=disclosure.subject_ids,
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
