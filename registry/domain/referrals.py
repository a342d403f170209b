"""Referrals: DRAFT -> SUBMITTED -> ACKNOWLEDGED -> CLOSED, each step by the role that owns it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.access.principal import Principal
from registry.access.scopes import record_scope
from registry.db.tables import Referral
from registry.db.values import ReferralReason, ReferralStatus, names
from registry.domain import agencies, subjects, versions
from registry.domain.errors import BadUserInput
from registry.domain.pages import Page, check_first, decode_cursor, encode_cursor, timestamp_text
from registry.domain.text import NAME_MAX, TEXT_MAX, clean, refuse_nul

REASONS = names(ReferralReason)
STATUSES = names(ReferralStatus)

# transition name -> (required status, new status, timestamp column)
TRANSITIONS = {
    "submit": ("DRAFT", "SUBMITTED", "submitted_at"),
    "acknowledge": ("SUBMITTED", "ACKNOWLEDGED", "acknowledged_at"),
    "close": ("ACKNOWLEDGED", "CLOSED", "closed_at"),
}


@dataclass
class DraftReferral:
    subject_id: uuid.UUID
    reason: str
    narrative: str
    legal_basis: str


@dataclass
class ReferralFilter:
    status: list[str] | None = None
    reason: str | None = None
    subject_id: uuid.UUID | None = None
    agency: str | None = None


async def draft(session: AsyncSession, principal: Principal, command: DraftReferral) -> Referral:
    await subjects.require_writable(session, principal, command.subject_id)
    if command.reason not in REASONS:
        raise BadUserInput("reason is not one of " + ", ".join(REASONS), field="reason")
    referral = Referral(
        id=uuid.uuid4(),
        subject_id=command.subject_id,
        agency_code=await agencies.require_own(session, principal),
        status="DRAFT",
        reason=command.reason,
        narrative=clean(command.narrative, "narrative", limit=TEXT_MAX, required=True, multiline=True),
        legal_basis=clean(command.legal_basis, "legalBasis", limit=NAME_MAX, required=True),
        referred_by=principal.name,
        referred_by_id=principal.id,
        version=1,
        updated_by=principal.name,
    )
    session.add(referral)
    await versions.record(session, referral, principal, ["status", "reason", "narrative", "legal_basis"])
    return referral


async def transition(
    session: AsyncSession, principal: Principal, referral_id: uuid.UUID, expected_version: int, name: str
) -> Referral:
    """Move a referral one step along its workflow; any other step is refused."""
    required, new_status, stamp = TRANSITIONS[name]
    referral = await versions.load_for_update(
        session, Referral, referral_id, record_scope(Referral, principal), expected_version
    )
    if referral.status != required:
        raise BadUserInput(
            f"cannot {name} a referral that is {referral.status}; it must be {required}", field="status"
        )
    changed = versions.apply_changes(
        referral, {"status": new_status, stamp: datetime.now(timezone.utc)}, principal
    )
    await versions.record(session, referral, principal, changed)
    return referral


async def get(session: AsyncSession, principal: Principal, referral_id: uuid.UUID) -> Referral | None:
    return await session.scalar(
        select(Referral).where(Referral.id == referral_id, record_scope(Referral, principal))
    )


async def for_subjects(
    session: AsyncSession, principal: Principal, subject_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Referral]]:
    rows = await session.scalars(
        select(Referral)
        .where(Referral.subject_id.in_(subject_ids), record_scope(Referral, principal))
        .order_by(Referral.created_at.desc(), Referral.id.desc())
    )
    out: dict[uuid.UUID, list[Referral]] = {sid: [] for sid in subject_ids}
    for row in rows:
        out[row.subject_id].append(row)
    return out


async def page(
    session: AsyncSession, principal: Principal, first: int, after: str | None, filter: ReferralFilter
) -> Page[Referral]:
    """Referrals in scope, newest first."""
    query = select(Referral).where(record_scope(Referral, principal))
    if filter.status:
        query = query.where(Referral.status.in_(filter.status))
    if filter.reason:
        query = query.where(Referral.reason == filter.reason)
    if filter.subject_id:
        query = query.where(Referral.subject_id == filter.subject_id)
    if filter.agency:
        refuse_nul(filter.agency, "filter.agency")
        query = query.where(Referral.agency_code == filter.agency)
    if after:
        created, ident = decode_cursor(after, 2)
        try:
            created_at, ident_uuid = datetime.fromisoformat(created), uuid.UUID(ident)
        except ValueError:
            raise BadUserInput("after is not a valid cursor", field="after") from None
        query = query.where(
            or_(
                Referral.created_at < created_at,
                and_(Referral.created_at == created_at, Referral.id < ident_uuid),
            )
        )
    query = query.order_by(Referral.created_at.desc(), Referral.id.desc()).limit(check_first(first) + 1)
    rows = list(await session.scalars(query))
    return Page(rows=rows[:first], has_next=len(rows) > first, has_previous=after is not None)


def cursor(referral: Referral) -> str:
    return encode_cursor(timestamp_text(referral.created_at), referral.id)
