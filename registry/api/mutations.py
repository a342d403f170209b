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
from registry.api.errors import CODES_DESCRIPTION
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
    given_name: str = strawberry.field(description="Given name.")
    family_name: str = strawberry.field(description="Family name.")
    date_of_birth: date = strawberry.field(description="Date of birth.")
    national_number: str = strawberry.field(description="Belgian national register (or BIS) number: 11 digits.")
    institution: str = strawberry.field(description="Placement unit code; a caseworker registers in their own unit.")
    legal_status: LegalStatus = strawberry.field(description="Legal situation.")


@strawberry.input(description="Changes to a subject; fields left out stay as they are.")
class UpdateSubjectInput:
    id: uuid.UUID = strawberry.field(description="The subject to change.")
    expected_version: int = strawberry.field(description="The version the change is based on; a stale one is a CONFLICT.")
    given_name: Optional[str] = strawberry.field(default=UNSET, description="New given name.")
    family_name: Optional[str] = strawberry.field(default=UNSET, description="New family name.")
    date_of_birth: Optional[date] = strawberry.field(default=UNSET, description="Corrected date of birth.")
    national_number: Optional[str] = strawberry.field(default=UNSET, description="Corrected national register number.")
    institution: Optional[str] = strawberry.field(default=UNSET, description="New placement unit code.")
    legal_status: Optional[LegalStatus] = strawberry.field(default=UNSET, description="New legal situation.")


@strawberry.type(description="The subject as created or updated.")
class SubjectPayload:
    subject: Subject = strawberry.field(description="The subject after the change.")


@strawberry.input(description="A draft referral of a subject to the threat analysts.")
class DraftReferralInput:
    subject_id: uuid.UUID = strawberry.field(description="The subject referred.")
    reason: ReferralReason = strawberry.field(description="Why the subject is referred.")
    narrative: str = strawberry.field(description="The agency's account of the concern.")
    legal_basis: str = strawberry.field(description="Legal basis for sharing.")


@strawberry.input(description="A step in a referral's workflow.")
class ReferralTransitionInput:
    id: uuid.UUID = strawberry.field(description="The referral to move.")
    expected_version: int = strawberry.field(description="The version the step is based on; a stale one is a CONFLICT.")


@strawberry.type(description="The referral after the change.")
class ReferralPayload:
    referral: Referral = strawberry.field(description="The referral after the change.")


@strawberry.input(description="A follow-up note about a subject, optionally on one of its referrals.")
class AddNoteInput:
    subject_id: uuid.UUID = strawberry.field(description="The subject the note is about.")
    body: str = strawberry.field(description="The note's text.")
    visibility: NoteVisibility = strawberry.field(default=NoteVisibility.SHARED, description="Who may read the note.")
    referral_id: Optional[uuid.UUID] = strawberry.field(default=None, description="The referral the note belongs to, if any.")


@strawberry.input(description="The corrected text of an earlier note; the earlier note stays.")
class CorrectNoteInput:
    note_id: uuid.UUID = strawberry.field(description="The note to correct (one you wrote).")
    body: str = strawberry.field(description="The corrected text.")


@strawberry.type(description="The note written.")
class NotePayload:
    note: FollowUpNote = strawberry.field(description="The note written.")


@strawberry.input(description="A draft threat assessment.")
class DraftAssessmentInput:
    subject_id: uuid.UUID = strawberry.field(description="The subject assessed.")
    level: ThreatLevel = strawberry.field(description="Assessed threat level.")
    summary: str = strawberry.field(description="Guidance for the agency.")
    rationale: str = strawberry.field(description="The analysts' reasoning.")
    sources: list[str] = strawberry.field(default_factory=list, description="Intelligence sources.")
    valid_until: Optional[date] = strawberry.field(default=None, description="Until when the assessment holds.")
    referral_id: Optional[uuid.UUID] = strawberry.field(default=None, description="The referral assessed, if any.")


@strawberry.input(description="Changes to a draft assessment; fields left out stay as they are.")
class UpdateAssessmentInput:
    id: uuid.UUID = strawberry.field(description="The draft assessment to change.")
    expected_version: int = strawberry.field(description="The version the change is based on; a stale one is a CONFLICT.")
    level: Optional[ThreatLevel] = strawberry.field(default=UNSET, description="New threat level.")
    summary: Optional[str] = strawberry.field(default=UNSET, description="New guidance for the agency.")
    rationale: Optional[str] = strawberry.field(default=UNSET, description="New reasoning.")
    sources: Optional[list[str]] = strawberry.field(default=UNSET, description="New list of sources (replaces the old one).")
    valid_until: Optional[date] = strawberry.field(default=UNSET, description="New end of validity.")


@strawberry.input(description="Validation of a draft assessment by a second senior analyst.")
class ValidateAssessmentInput:
    id: uuid.UUID = strawberry.field(description="The draft assessment to validate.")
    expected_version: int = strawberry.field(description="The version validated; a stale one is a CONFLICT.")


@strawberry.type(description="The assessment after the change.")
class AssessmentPayload:
    assessment: ThreatAssessment = strawberry.field(description="The assessment after the change.")


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


@strawberry.type(description="Changes to the registry. Each mutation is one transaction. " + CODES_DESCRIPTION)
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
