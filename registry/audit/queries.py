"""The DPO's questions to the audit trail: who consulted or changed what, when and why."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Exists, Text, exists, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from registry.audit import trail
from registry.db.tables import AuditEvent
from registry.domain.errors import BadUserInput, Conflict, NotFound
from registry.domain.pages import Page, check_first, decode_cursor, encode_cursor
from registry.domain.text import TEXT_MAX, clean

REVIEWED = "break_glass.reviewed"
# Written as a literal, not a parameter: the planner must see it to use the partial index of
# reviews (ix_audit_event_reviewed_event) also in a prepared statement's generic plan.
_IS_REVIEW: ColumnElement[str] = literal_column("'break_glass.reviewed'")


@dataclass
class EventFilter:
    subject_id: uuid.UUID | None = None
    actor_id: str | None = None
    agency: str | None = None
    purpose: str | None = None
    operation: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    break_glass: bool | None = None
    awaiting_review: bool | None = None


def _review_of(event_column: Any) -> Exists:
    review = aliased(AuditEvent)
    return exists().where(review.action == _IS_REVIEW, review.detail["reviewedEvent"].astext == event_column.cast(Text))


async def page(session: AsyncSession, first: int, after: str | None, f: EventFilter) -> Page[AuditEvent]:
    """Events newest first, narrowed by every criterion given."""
    query = select(AuditEvent)
    conditions: list[ColumnElement[bool]] = []
    if f.subject_id:
        conditions.append(AuditEvent.subject_ids.contains([f.subject_id]))
    for column, value in (
        (AuditEvent.actor_id, f.actor_id),
        (AuditEvent.actor_agency, f.agency),
        (AuditEvent.purpose, f.purpose),
        (AuditEvent.operation, f.operation),
        (AuditEvent.action, f.action),
    ):
        if value is not None:
            conditions.append(column == clean(value, "filter", limit=200, required=True))
    if f.since:
        conditions.append(AuditEvent.occurred_at >= f.since)
    if f.until:
        conditions.append(AuditEvent.occurred_at < f.until)
    # The bare column (not `IS true`): the planner then uses the partial index of break-glass events.
    if f.break_glass is not None:
        conditions.append(AuditEvent.break_glass.expression if f.break_glass else ~AuditEvent.break_glass)
    if f.awaiting_review:
        conditions += [AuditEvent.break_glass.expression, ~_review_of(AuditEvent.id)]
    if after:
        (seq,) = decode_cursor(after, 1)
        if not seq.isdigit():
            raise BadUserInput("after is not a valid cursor", field="after")
        conditions.append(AuditEvent.seq < int(seq))
    # By a subject or in a time window, events are found through the subject's (GIN) or the time
    # index and then ordered: `seq + 0` keeps the planner from walking the whole trail backwards
    # by seq instead, expecting to meet them early (it cannot tell how rare one subject is, nor
    # that time follows seq).
    order = (AuditEvent.seq + 0) if f.subject_id or (f.since and f.until) else AuditEvent.seq
    rows = list(await session.scalars(query.where(*conditions).order_by(order.desc()).limit(check_first(first) + 1)))
    return Page(rows=rows[:first], has_next=len(rows) > first, has_previous=after is not None)


def cursor(event: AuditEvent) -> str:
    return encode_cursor(event.seq)


async def reviewed(session: AsyncSession, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
    """Whether each event was reviewed: one query for a whole page."""
    if not event_ids:
        return {}
    rows = await session.scalars(
        select(AuditEvent.detail["reviewedEvent"].astext).where(
            AuditEvent.action == _IS_REVIEW,
            AuditEvent.detail["reviewedEvent"].astext.in_([str(i) for i in event_ids]),
        )
    )
    done = {uuid.UUID(r) for r in rows}
    return {i: i in done for i in event_ids}


async def mark_reviewed(session: AsyncSession, actor: trail.Actor, event_id: uuid.UUID, note: str) -> AuditEvent:
    """Record the DPO's review of a break-glass access as an event of its own (events never change)."""
    # Events cannot be locked for update (the service may not update them): lock the id instead.
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(str(event_id)))))
    event = await session.scalar(select(AuditEvent).where(AuditEvent.id == event_id, AuditEvent.break_glass.is_(True)))
    if event is None:
        raise NotFound(f"no break-glass event {event_id}")
    if (await reviewed(session, [event_id]))[event_id]:
        raise Conflict("this break-glass access was already reviewed")
    await trail.record(
        session,
        actor,
        REVIEWED,
        subject_ids=event.subject_ids,
        detail={"reviewedEvent": str(event_id), "note": clean(note, "note", limit=TEXT_MAX, required=True, multiline=True)},
    )
    return event
