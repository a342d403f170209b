"""GraphQL for the data-protection officer: audit events, their search, break-glass review."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Optional

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from registry.api.types import PageInfo, page_info
from registry.audit import queries
from registry.db import tables


@strawberry.type(description="A record returned to the caller, and which of its fields.")
class DisclosedRecord:
    type: str = strawberry.field(description="GraphQL type of the record.")
    id: str = strawberry.field(description="The record's id.")
    fields: list[str] = strawberry.field(description="Fields disclosed (empty for a change or lookup).")


@strawberry.type(description="One consultation, change, lookup or refusal, as the audit trail holds it.")
class AuditEvent:
    id: uuid.UUID = strawberry.field(description="Stable identifier.")
    sequence: int = strawberry.field(description="Position in the order events were written.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    action: str = strawberry.field(description="What happened, e.g. records.consulted, referral.submitted.")
    outcome: str = strawberry.field(description="ok or refused.")
    actor_id: str = strawberry.field(description="Token subject of the caller.")
    actor_name: str = strawberry.field(description="Caller's name.")
    actor_agency: Optional[str] = strawberry.field(description="Caller's agency.")
    actor_roles: list[str] = strawberry.field(description="Caller's roles.")
    purpose: Optional[str] = strawberry.field(description="Declared purpose of use.")
    justification: Optional[str] = strawberry.field(description="Declared justification.")
    operation: Optional[str] = strawberry.field(description="GraphQL operation name.")
    request_id: Optional[str] = strawberry.field(description="Request id, as in the server log.")
    break_glass: bool = strawberry.field(description="Whether break-glass access was used.")
    subject_ids: list[uuid.UUID] = strawberry.field(description="Subjects concerned.")
    records: list[DisclosedRecord] = strawberry.field(description="Records concerned, with the fields disclosed.")
    detail: JSON = strawberry.field(description="Action-specific detail (versions before and after, outcome...).")
    # Looked up for a whole page at once (audit_events); None: not looked up yet.
    known_reviewed: strawberry.Private[Optional[bool]] = None

    @classmethod
    def from_row(cls, row: tables.AuditEvent, reviewed: Optional[bool] = None) -> "AuditEvent":
        return cls(
            id=row.id,
            sequence=row.seq,
            occurred_at=row.occurred_at,
            action=row.action,
            outcome=row.outcome,
            actor_id=row.actor_id,
            actor_name=row.actor_name,
            actor_agency=row.actor_agency,
            actor_roles=list(row.actor_roles),
            purpose=row.purpose,
            justification=row.justification,
            operation=row.operation,
            request_id=row.request_id,
            break_glass=row.break_glass,
            subject_ids=list(row.subject_ids),
            records=[DisclosedRecord(type=r["type"], id=r["id"], fields=r.get("fields", [])) for r in row.records],
            detail=row.detail,  # type: ignore[arg-type]  # JSON is a scalar over any JSON value
            known_reviewed=reviewed,
        )

    @strawberry.field(description="For a break-glass event: whether the DPO has reviewed it.")
    async def reviewed(self, info: Info) -> Optional[bool]:
        if not self.break_glass:
            return None
        if self.known_reviewed is not None:
            return self.known_reviewed
        async with info.context.db() as session:
            return (await queries.reviewed(session, [self.id]))[self.id]


@strawberry.type(description="An audit event in a page of events.")
class AuditEventEdge:
    cursor: str = strawberry.field(description="Position of this item.")
    node: AuditEvent = strawberry.field(description="The event.")


@strawberry.type(description="A page of audit events, newest first.")
class AuditEventConnection:
    edges: list[AuditEventEdge] = strawberry.field(description="The events of this page.")
    page_info: PageInfo = strawberry.field(description="Pagination state.")


@strawberry.input(description="Narrows the audit trail; every criterion given must hold.")
class AuditEventFilter:
    subject_id: Optional[uuid.UUID] = strawberry.field(default=None, description="Events concerning this subject.")
    actor_id: Optional[str] = strawberry.field(default=None, description="Events by this caller (token subject).")
    agency: Optional[str] = strawberry.field(default=None, description="Events by callers of this agency.")
    purpose: Optional[str] = strawberry.field(default=None, description="Events under this purpose.")
    operation: Optional[str] = strawberry.field(default=None, description="Events of this GraphQL operation.")
    action: Optional[str] = strawberry.field(default=None, description="Events of this action.")
    since: Optional[datetime] = strawberry.field(default=None, description="At or after this time.")
    until: Optional[datetime] = strawberry.field(default=None, description="Before this time.")
    break_glass: Optional[bool] = strawberry.field(default=None, description="Only break-glass (or only other) events.")
    awaiting_review: Optional[bool] = strawberry.field(default=None, description="Only break-glass events not yet reviewed.")


@strawberry.input(description="The DPO's review of a break-glass access.")
class ReviewBreakGlassInput:
    event_id: uuid.UUID = strawberry.field(description="The break-glass event reviewed.")
    note: str = strawberry.field(description="The DPO's conclusion, kept in the review event.")


@strawberry.type(description="The break-glass event reviewed.")
class ReviewBreakGlassPayload:
    event: AuditEvent = strawberry.field(description="The break-glass event, now reviewed.")


async def audit_events(info: Info, first: int, after: Optional[str], filter: Optional[AuditEventFilter]) -> AuditEventConnection:
    f = filter or AuditEventFilter()
    command = queries.EventFilter(**{k: getattr(f, k) for k in queries.EventFilter.__dataclass_fields__})
    async with info.context.db() as session:
        page = await queries.page(session, first, after, command)
        # One query for the page, not one per event (selected or not: it costs one probe per event).
        reviewed = await queries.reviewed(session, [r.id for r in page.rows if r.break_glass])
    cursors = [queries.cursor(r) for r in page.rows]
    return AuditEventConnection(
        edges=[AuditEventEdge(cursor=c, node=AuditEvent.from_row(r, reviewed.get(r.id))) for c, r in zip(cursors, page.rows)],
        page_info=page_info(page, cursors),
    )


async def review_break_glass(info: Info, input: ReviewBreakGlassInput) -> ReviewBreakGlassPayload:
    ctx = info.context
    async with ctx.db() as session:
        async with session.begin_nested():
            row = await queries.mark_reviewed(session, ctx.actor(), input.event_id, input.note)
    return ReviewBreakGlassPayload(event=AuditEvent.from_row(row))
