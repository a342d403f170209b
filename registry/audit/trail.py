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

    def add(self, type_name: str, record_id: uuid.UUID, subject_id: uuid.UUID, field_name: str) -> None:
        self.fields.setdefault((type_name, record_id), set()).add(field_name)
        self.subject_ids.add(subject_id)

    def records(self) -> list[dict[str, Any]]:
        return [
            {"type": type_name, "id": str(record_id), "fields": sorted(names)}
            for (type_name, record_id), names in sorted(self.fields.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))
        ]

    def __bool__(self) -> bool:
        return bool(self.fields)


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


async def record_disclosure(session: AsyncSession, actor: Actor, disclosure: Disclosure, *, break_glass: bool) -> None:
    if disclosure:
        await record(
            session,
            actor,
            "records.consulted",
            subject_ids=disclosure.subject_ids,
            records=disclosure.records(),
            break_glass=break_glass,
        )
