"""Mutation root: one input, one payload, one savepoint each. Who may call what is in the policy."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Optional

import strawberry
from strawberry.types import Info

from registry.api.types import (
    FollowUpNote,
    LegalStatus,
    NoteVisibility,
    Referral,
    ReferralReason,
    Subject,
    ThreatAssessment,
    ThreatLevel,
)
from registry.api import audit
from registry.api.audit import ReviewBreakGlassInput, ReviewBreakGlassPayload
from registry.domain import assessments, notes, referrals, subjects

UNSET = strawberry.UNSET


def mutation(description: str):
    """A mutation field; who may call it is `mutations` per role in auth/policy.toml, enforced by
    api.field_guard like every other field (a refused mutation resolves to null, nothing runs)."""
    return strawberry.mutation(description=description)


def _changes(input: object, fields: dict[str, str]) -> dict:
    """The input fields actually given (graphql name -> domain name), enums unwrapped."""
    out = {}
    for attr, column in fields.items():
        value = getattr(input, attr)
        if value is not UNSET:
            out[column] = value.value if hasattr(value, "value") else value
    return out


@strawberry.input(description="A new subject file, owned by the caller's agency.")
class CreateSubjectInput:
    given_name: str
    family_name: str
    date_of_birth: date
    national_number: str
    institution: str
    legal_status: LegalStatus


@strawberry.input(description="Changes to a subject; fields left out stay as they are.")
class UpdateSubjectInput:
    id: uuid.UUID
    expected_version: int
    given_name: Optional[str] = UNSET
    family_name: Optional[str] = UNSET
    date_of_birth: Optional[date] = UNSET
    national_number: Optional[str] = UNSET
    institution: Optional[str] = UNSET
    legal_status: Optional[LegalStatus] = UNSET


@strawberry.type(description="The subject as created or updated.")
class SubjectPayload:
    subject: Subject


@strawberry.input(description="A draft referral of a subject to the threat analysts.")
class DraftReferralInput:
    subject_id: uuid.UUID
    reason: ReferralReason
    narrative: str
    legal_basis: str


@strawberry.input(description="A step in a referral's workflow.")
class ReferralTransitionInput:
    id: uuid.UUID
    expected_version: int


@strawberry.type(description="The referral after the change.")
class ReferralPayload:
    referral: Referral


@strawberry.input(description="A follow-up note about a subject, optionally on one of its referrals.")
class AddNoteInput:
    subject_id: uuid.UUID
    body: str
    visibility: NoteVisibility = NoteVisibility.SHARED
    referral_id: Optional[uuid.UUID] = None


@strawberry.input(description="The corrected text of an earlier note; the earlier note stays.")
class CorrectNoteInput:
    note_id: uuid.UUID
    body: str


@strawberry.type(description="The note written.")
class NotePayload:
    note: FollowUpNote


@strawberry.input(description="A draft threat assessment.")
class DraftAssessmentInput:
    subject_id: uuid.UUID
    level: ThreatLevel
    summary: str
    rationale: str
    sources: list[str] = strawberry.field(default_factory=list)
    valid_until: Optional[date] = None
    referral_id: Optional[uuid.UUID] = None


@strawberry.input(description="Changes to a draft assessment; fields left out stay as they are.")
class UpdateAssessmentInput:
    id: uuid.UUID
    expected_version: int
    level: Optional[ThreatLevel] = UNSET
    summary: Optional[str] = UNSET
    rationale: Optional[str] = UNSET
    sources: Optional[list[str]] = UNSET
    valid_until: Optional[date] = UNSET


@strawberry.input(description="Validation of a draft assessment by a second senior analyst.")
class ValidateAssessmentInput:
    id: uuid.UUID
    expected_version: int


@strawberry.type(description="The assessment after the change.")
class AssessmentPayload:
    assessment: ThreatAssessment


SUBJECT_FIELDS = {
    "given_name": "given_name",
    "family_name": "family_name",
    "date_of_birth": "date_of_birth",
    "national_number": "national_number",
    "institution": "institution",
    "legal_status": "legal_status",
}
ASSESSMENT_FIELDS = {
    "level": "level",
    "summary": "summary",
    "rationale": "rationale",
    "sources": "sources",
    "valid_until": "valid_until",
}


async def _transition(info: Info, input: ReferralTransitionInput, step: str) -> ReferralPayload:
    ctx = info.context
    async with ctx.change(f"referral.{referrals.TRANSITIONS[step][1].lower()}") as change:
        row = change.done(
            await referrals.transition(change.session, ctx.principal, input.id, input.expected_version, step),
            before=input.expected_version,
        )
    return ReferralPayload(referral=Referral.from_row(row))


@strawberry.type(description="Changes to the registry. Each mutation is one transaction.")
class Mutation:
    @mutation("Register a subject (one file per child: a known national number is a CONFLICT).")
    async def create_subject(self, info: Info, input: CreateSubjectInput) -> SubjectPayload:
        ctx = info.context
        command = subjects.CreateSubject(**_changes(input, SUBJECT_FIELDS))
        async with ctx.change("subject.created") as change:
            row = change.done(await subjects.create(change.session, ctx.principal, command))
        return SubjectPayload(subject=Subject.from_row(row))

    @mutation("Change a subject's file; refused with CONFLICT when expectedVersion is stale.")
    async def update_subject(self, info: Info, input: UpdateSubjectInput) -> SubjectPayload:
        ctx = info.context
        command = subjects.UpdateSubject(input.id, input.expected_version, _changes(input, SUBJECT_FIELDS))
        async with ctx.change("subject.updated") as change:
            row = change.done(await subjects.update(change.session, ctx.principal, command), before=input.expected_version)
        return SubjectPayload(subject=Subject.from_row(row))

    @mutation("Draft a referral of a subject.")
    async def draft_referral(self, info: Info, input: DraftReferralInput) -> ReferralPayload:
        ctx = info.context
        command = referrals.DraftReferral(input.subject_id, input.reason.value, input.narrative, input.legal_basis)
        async with ctx.change("referral.drafted") as change:
            row = change.done(await referrals.draft(change.session, ctx.principal, command))
        return ReferralPayload(referral=Referral.from_row(row))

    @mutation("Submit a draft referral to the threat analysts.")
    async def submit_referral(self, info: Info, input: ReferralTransitionInput) -> ReferralPayload:
        return await _transition(info, input, "submit")

    @mutation("Acknowledge receipt of a submitted referral.")
    async def acknowledge_referral(self, info: Info, input: ReferralTransitionInput) -> ReferralPayload:
        return await _transition(info, input, "acknowledge")

    @mutation("Close an acknowledged referral.")
    async def close_referral(self, info: Info, input: ReferralTransitionInput) -> ReferralPayload:
        return await _transition(info, input, "close")

    @mutation("Add a follow-up note.")
    async def add_note(self, info: Info, input: AddNoteInput) -> NotePayload:
        ctx = info.context
        command = notes.AddNote(input.subject_id, input.body, input.visibility.value, input.referral_id)
        async with ctx.change("note.added") as change:
            row = change.done(await notes.add(change.session, ctx.principal, command))
        return NotePayload(note=FollowUpNote.from_row(row))

    @mutation("Correct a note you wrote: a new note that replaces it; the original stays, marked corrected.")
    async def correct_note(self, info: Info, input: CorrectNoteInput) -> NotePayload:
        ctx = info.context
        async with ctx.change("note.corrected") as change:
            row = change.done(await notes.correct(change.session, ctx.principal, notes.CorrectNote(input.note_id, input.body)))
        return NotePayload(note=FollowUpNote.from_row(row))

    @mutation("Draft a threat assessment.")
    async def draft_assessment(self, info: Info, input: DraftAssessmentInput) -> AssessmentPayload:
        ctx = info.context
        command = assessments.DraftAssessment(
            subject_id=input.subject_id,
            level=input.level.value,
            summary=input.summary,
            rationale=input.rationale,
            sources=input.sources,
            valid_until=input.valid_until,
            referral_id=input.referral_id,
        )
        async with ctx.change("assessment.drafted") as change:
            row = change.done(await assessments.draft(change.session, ctx.principal, command))
        return AssessmentPayload(assessment=ThreatAssessment.from_row(row))

    @mutation("Change a draft assessment; refused with CONFLICT when expectedVersion is stale.")
    async def update_assessment(self, info: Info, input: UpdateAssessmentInput) -> AssessmentPayload:
        ctx = info.context
        command = assessments.UpdateAssessment(input.id, input.expected_version, _changes(input, ASSESSMENT_FIELDS))
        async with ctx.change("assessment.updated") as change:
            row = change.done(await assessments.update(change.session, ctx.principal, command), before=input.expected_version)
        return AssessmentPayload(assessment=ThreatAssessment.from_row(row))

    @mutation("Record the DPO's review of a break-glass access (itself an audit event).")
    async def review_break_glass(self, info: Info, input: ReviewBreakGlassInput) -> ReviewBreakGlassPayload:
        return await audit.review_break_glass(info, input)

    @mutation("Validate a draft assessment (four-eyes: not its author); supersedes the previous one.")
    async def validate_assessment(self, info: Info, input: ValidateAssessmentInput) -> AssessmentPayload:
        ctx = info.context
        async with ctx.change("assessment.validated") as change:
            row = change.done(await assessments.validate(change.session, ctx.principal, input.id, input.expected_version), before=input.expected_version)
        return AssessmentPayload(assessment=ThreatAssessment.from_row(row))
