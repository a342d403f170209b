"""Subject access: everything held on one subject, with its disclosure log, as one JSON document."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.db.tables import AuditEvent, FollowUpNote, RecordVersion, Referral, Subject, ThreatAssessment
from registry.domain.versions import snapshot


async def find_subject(session: AsyncSession, id_or_reference: str) -> Subject | None:
    try:
        condition = Subject.id == uuid.UUID(id_or_reference)
    except ValueError:
        condition = Subject.reference == id_or_reference
    return await session.scalar(select(Subject).where(condition))


def _event(event: AuditEvent, record_ids: set[str]) -> dict[str, Any]:
    return {
        "at": event.occurred_at.isoformat(),
        "action": event.action,
        "outcome": event.outcome,
        "actor": {"id": event.actor_id, "name": event.actor_name, "agency": event.actor_agency, "roles": event.actor_roles},
        "purpose": event.purpose,
        "justification": event.justification,
        "breakGlass": event.break_glass,
        "operation": event.operation,
        "requestId": event.request_id,
        "records": [r for r in event.records if r.get("id") in record_ids] or event.records,
        "detail": event.detail,
    }


def disclosures(subject_id: uuid.UUID) -> Select[AuditEvent]:
    """The events concerning one subject, oldest first (found through the subject index)."""
    return select(AuditEvent).where(AuditEvent.subject_ids.contains([subject_id])).order_by(AuditEvent.seq)


async def export_subject(session: AsyncSession, subject: Subject) -> dict[str, Any]:
    """Records, every version, and who received what, when and why."""
    referrals = list(await session.scalars(select(Referral).where(Referral.subject_id == subject.id).order_by(Referral.created_at)))
    notes = list(await session.scalars(select(FollowUpNote).where(FollowUpNote.subject_id == subject.id).order_by(FollowUpNote.created_at)))
    assessments = list(
        await session.scalars(select(ThreatAssessment).where(ThreatAssessment.subject_id == subject.id).order_by(ThreatAssessment.created_at))
    )
    record_ids = {subject.id, *(r.id for r in referrals), *(a.id for a in assessments)}
    versions = await session.scalars(
        select(RecordVersion).where(RecordVersion.record_id.in_(record_ids)).order_by(RecordVersion.record_type, RecordVersion.record_id, RecordVersion.version)
    )
    all_ids = {str(i) for i in record_ids} | {str(n.id) for n in notes}
    events = await session.scalars(disclosures(subject.id))
    return {
        "subject": snapshot(subject),
        "referrals": [snapshot(r) for r in referrals],
        "notes": [snapshot(n) for n in notes],
        "assessments": [snapshot(a) for a in assessments],
        "history": [
            {
                "type": v.record_type,
                "id": str(v.record_id),
                "version": v.version,
                "changedAt": v.changed_at.isoformat(),
                "changedBy": v.changed_by,
                "changedFields": v.changed_fields,
                "data": v.data,
            }
            for v in versions
        ],
        "disclosureLog": [_event(e, all_ids) for e in events],
    }
