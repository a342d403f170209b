"""Retention: files due for review, and erasure of files past `retainUntil`.

Erasure removes the personal fields from the file, its records and their history, and keeps
a tombstone (id, reference, dates) and the audit trail, which records the erasure itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from registry.db.tables import FollowUpNote, Referral, Subject, ThreatAssessment

PERSONAL = {
    "Subject": ("given_name", "family_name", "date_of_birth", "national_number", "institution"),
    "Referral": ("narrative", "legal_basis", "referred_by"),
    "ThreatAssessment": ("summary", "rationale", "sources"),
}


@dataclass
class Due:
    id: uuid.UUID
    reference: str
    agency: str
    review_due_at: date | None
    retain_until: date | None


def _due(row: Subject) -> Due:
    return Due(row.id, row.reference, row.agency_code, row.review_due_at, row.retain_until)


async def due_reviews(session: AsyncSession, today: date) -> list[Due]:
    rows = await session.scalars(
        select(Subject)
        .where(Subject.review_due_at <= today, Subject.erased_at.is_(None))
        .order_by(Subject.review_due_at, Subject.reference)
    )
    return [_due(r) for r in rows]


async def expired(session: AsyncSession, today: date) -> list[Due]:
    rows = await session.scalars(
        select(Subject)
        .where(Subject.retain_until < today, Subject.erased_at.is_(None))
        .order_by(Subject.retain_until, Subject.reference)
        .with_for_update()
    )
    return [_due(r) for r in rows]


async def erase(session: AsyncSession, subject_ids: list[uuid.UUID]) -> None:
    """Remove personal data of these subjects everywhere but the audit trail."""
    if not subject_ids:
        return
    now = datetime.now(timezone.utc)
    await session.execute(
        update(Subject)
        .where(Subject.id.in_(subject_ids))
        .values({**{c: None for c in PERSONAL["Subject"]}, "erased_at": now, "updated_by": "retention", "updated_at": now})
    )
    await session.execute(
        update(Referral).where(Referral.subject_id.in_(subject_ids)).values(narrative=None, legal_basis=None, referred_by="erased")
    )
    await session.execute(update(FollowUpNote).where(FollowUpNote.subject_id.in_(subject_ids)).values(body=None))
    await session.execute(
        update(ThreatAssessment)
        .where(ThreatAssessment.subject_id.in_(subject_ids))
        .values(summary=None, rationale=None, sources=[])
    )
    owned = {
        "Subject": select(Subject.id).where(Subject.id.in_(subject_ids)),
        "Referral": select(Referral.id).where(Referral.subject_id.in_(subject_ids)),
        "ThreatAssessment": select(ThreatAssessment.id).where(ThreatAssessment.subject_id.in_(subject_ids)),
    }
    for record_type, ids in owned.items():
        record_ids = list(await session.scalars(ids))
        if record_ids:
            await session.execute(
                text("UPDATE record_version SET data = data - CAST(:keys AS text[]) WHERE record_type = :t AND record_id = ANY(:ids)"),
                {"keys": list(PERSONAL[record_type]), "t": record_type, "ids": record_ids},
            )
