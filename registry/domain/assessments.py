"""Threat assessments: DRAFT -> VALIDATED -> SUPERSEDED, validated under four-eyes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.access.principal import Principal
from registry.access.scopes import record_scope
from registry.db.tables import Referral, Subject, ThreatAssessment
from registry.db.values import ThreatLevel
from registry.domain import subjects, versions
from registry.domain.errors import BadUserInput, Forbidden, NotFound
from registry.domain.text import NAME_MAX, TEXT_MAX, clean

LEVELS = {level.name: level.value for level in ThreatLevel}
MAX_SOURCES = 50


@dataclass
class DraftAssessment:
    subject_id: uuid.UUID
    level: int
    summary: str
    rationale: str
    sources: list[str] = field(default_factory=list)
    valid_until: date | None = None
    referral_id: uuid.UUID | None = None


@dataclass
class UpdateAssessment:
    id: uuid.UUID
    expected_version: int
    changes: dict = field(default_factory=dict)


def _validated(values: dict) -> dict:
    out = {}
    if "level" in values:
        if values["level"] not in LEVELS.values():
            raise BadUserInput("level must be 1 (LOW) to 4 (VERY_SERIOUS)", field="level")
        out["level"] = values["level"]
    if "summary" in values:
        out["summary"] = clean(values["summary"], "summary", limit=TEXT_MAX, required=True, multiline=True)
    if "rationale" in values:
        out["rationale"] = clean(values["rationale"], "rationale", limit=TEXT_MAX, required=True, multiline=True)
    if "sources" in values:
        sources = values["sources"] or []
        if len(sources) > MAX_SOURCES:
            raise BadUserInput(f"at most {MAX_SOURCES} sources", field="sources")
        out["sources"] = [clean(s, "sources", limit=NAME_MAX, required=True) for s in sources]
    if "valid_until" in values:
        if values["valid_until"] is not None and values["valid_until"] <= date.today():
            raise BadUserInput("validUntil must be in the future", field="validUntil")
        out["valid_until"] = values["valid_until"]
    return out


async def draft(session: AsyncSession, principal: Principal, command: DraftAssessment) -> ThreatAssessment:
    await subjects.require_writable(session, principal, command.subject_id)
    if command.referral_id is not None:
        referral_subject = await session.scalar(
            select(Referral.subject_id).where(Referral.id == command.referral_id, record_scope(Referral, principal))
        )
        if referral_subject is None:
            raise NotFound(f"Referral {command.referral_id} not found")
        if referral_subject != command.subject_id:
            raise BadUserInput("the referral concerns another subject", field="referralId")
    values = _validated(
        {k: getattr(command, k) for k in ("level", "summary", "rationale", "sources", "valid_until")}
    )
    assessment = ThreatAssessment(
        id=uuid.uuid4(),
        subject_id=command.subject_id,
        referral_id=command.referral_id,
        status="DRAFT",
        author=principal.name,
        author_id=principal.id,
        version=1,
        updated_by=principal.name,
        **values,
    )
    session.add(assessment)
    await versions.record(session, assessment, principal, ["status", *values])
    return assessment


async def update(session: AsyncSession, principal: Principal, command: UpdateAssessment) -> ThreatAssessment:
    assessment = await versions.load_for_update(
        session, ThreatAssessment, command.id, record_scope(ThreatAssessment, principal), command.expected_version
    )
    if assessment.status != "DRAFT":
        raise BadUserInput(f"a {assessment.status} assessment cannot change; draft a new one", field="status")
    changed = versions.apply_changes(assessment, _validated(command.changes), principal)
    if changed:
        await versions.record(session, assessment, principal, changed)
    return assessment


async def validate(
    session: AsyncSession, principal: Principal, assessment_id: uuid.UUID, expected_version: int
) -> ThreatAssessment:
    """Four-eyes: a senior analyst other than the author validates; the previous one is superseded."""
    assessment = await versions.load_for_update(
        session, ThreatAssessment, assessment_id, record_scope(ThreatAssessment, principal), expected_version
    )
    if assessment.status != "DRAFT":
        raise BadUserInput(f"cannot validate a {assessment.status} assessment", field="status")
    if assessment.author_id == principal.id:
        raise Forbidden("four-eyes: the author of an assessment cannot validate it")
    subject = (
        await session.scalars(select(Subject).where(Subject.id == assessment.subject_id).with_for_update())
    ).one()
    previous = await session.scalars(
        select(ThreatAssessment)
        .where(ThreatAssessment.subject_id == assessment.subject_id, ThreatAssessment.status == "VALIDATED")
        .with_for_update()
    )
    for old in previous:
        await versions.record(session, old, principal, versions.apply_changes(old, {"status": "SUPERSEDED"}, principal))
    now = datetime.now(timezone.utc)
    changed = versions.apply_changes(
        assessment,
        {"status": "VALIDATED", "validated_by": principal.name, "validated_by_id": principal.id, "validated_at": now},
        principal,
    )
    await versions.record(session, assessment, principal, changed)
    subjects.set_retention_dates(subject, now)
    return assessment


async def for_parents(
    session: AsyncSession, principal: Principal, column, parent_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[ThreatAssessment]]:
    rows = await session.scalars(
        select(ThreatAssessment)
        .where(column.in_(parent_ids), record_scope(ThreatAssessment, principal))
        .order_by(ThreatAssessment.created_at.desc(), ThreatAssessment.id.desc())
    )
    out: dict[uuid.UUID, list[ThreatAssessment]] = {pid: [] for pid in parent_ids}
    for row in rows:
        out[getattr(row, column.key)].append(row)
    return out
