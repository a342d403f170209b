"""GraphQL object types: thin views over domain rows; linked records come from dataloaders."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Optional

import strawberry
from strawberry.types import Info

from registry.db import tables, values
from registry.domain import versions


# The value sets are declared once, in db.values; here they get their GraphQL descriptions.
LegalStatus = values.LegalStatus
ReferralStatus = values.ReferralStatus
ReferralReason = values.ReferralReason
NoteVisibility = values.NoteVisibility
AssessmentStatus = values.AssessmentStatus
ThreatLevel = values.ThreatLevel
strawberry.enum(LegalStatus, description="Legal situation of the subject.")
strawberry.enum(ReferralStatus, description="Where a referral is in its workflow.")
strawberry.enum(ReferralReason, description="Why the agency refers the subject to the threat analysts.")
strawberry.enum(NoteVisibility, description="Who may read a follow-up note.")
strawberry.enum(AssessmentStatus, description="Where a threat assessment is in its workflow.")
strawberry.enum(ThreatLevel, description="Assessed threat level, 1 (LOW) to 4 (VERY_SERIOUS).")


NotesFirst = Annotated[int, strawberry.argument(description="How many of the latest notes (at most 100).")]


def _first(first: int) -> int:
    from registry.domain.pages import check_first

    return check_first(first)


def _revision_info(name: str, record: str) -> type:
    """Metadata of one version. One GraphQL type per record type (each with its own field
    definitions), so `changedBy` can follow that record type's author rule in the policy."""

    @strawberry.type(name=name, description=f"Metadata of one version of {record}.")
    class RevisionInfo:
        version: int = strawberry.field(description="Version number, 1 for the record as created.")
        changed_at: datetime = strawberry.field(description="When this version was written.")
        changed_by: Optional[str] = strawberry.field(description="Who wrote this version.")
        changed_fields: list[str] = strawberry.field(description="Fields that changed in this version.")

    return RevisionInfo


SubjectRevisionInfo = _revision_info("SubjectRevisionInfo", "a subject's file")
ReferralRevisionInfo = _revision_info("ReferralRevisionInfo", "a referral")
AssessmentRevisionInfo = _revision_info("AssessmentRevisionInfo", "a threat assessment")


def _revision(cls: type, row: tables.RecordVersion):
    return cls(
        version=row.version, changed_at=row.changed_at, changed_by=row.changed_by, changed_fields=row.changed_fields
    )


@strawberry.type(description="A minor registered by an agency, identified by a pseudonymous reference.")
class Subject:
    id: uuid.UUID = strawberry.field(description="Stable identifier.")
    reference: str = strawberry.field(description="Pseudonymous reference, e.g. S-2026-00042.")
    given_name: Optional[str] = strawberry.field(description="Given name.")
    family_name: Optional[str] = strawberry.field(description="Family name.")
    date_of_birth: Optional[date] = strawberry.field(description="Date of birth.")
    national_number: Optional[str] = strawberry.field(description="Belgian national register number (11 digits).")
    institution: Optional[str] = strawberry.field(description="Placement unit code.")
    legal_status: Optional[LegalStatus] = strawberry.field(description="Legal situation.")
    agency: Optional[str] = strawberry.field(description="Code of the agency that owns the file.")
    review_due_at: Optional[date] = strawberry.field(description="When the file must be reviewed.")
    retain_until: Optional[date] = strawberry.field(description="Date after which the file is erased.")
    version: int = strawberry.field(description="Current version, for expectedVersion on updates.")
    created_at: Optional[datetime] = strawberry.field(description="When the file was registered.")
    updated_at: Optional[datetime] = strawberry.field(description="When the file last changed.")

    @classmethod
    def from_row(cls, row: tables.Subject) -> "Subject":
        return cls(
            id=row.id,
            reference=row.reference,
            given_name=row.given_name,
            family_name=row.family_name,
            date_of_birth=row.date_of_birth,
            national_number=row.national_number,
            institution=row.institution,
            legal_status=LegalStatus(row.legal_status),
            agency=row.agency_code,
            review_due_at=row.review_due_at,
            retain_until=row.retain_until,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="Referrals about this subject, newest first.")
    async def referrals(self, info: Info) -> list["Referral"]:
        rows = await info.context.loaders.referrals_by_subject().load(self.id)
        return [Referral.from_row(r) for r in rows]

    @strawberry.field(description="Latest follow-up notes about this subject, newest first.")
    async def notes(self, info: Info, first: NotesFirst = 20) -> list["FollowUpNote"]:
        rows = await info.context.loaders.notes_by_subject(_first(first)).load(self.id)
        return [FollowUpNote.from_row(r) for r in rows]

    @strawberry.field(description="Threat assessments of this subject, newest first.")
    async def assessments(self, info: Info) -> list["ThreatAssessment"]:
        rows = await info.context.loaders.assessments_by_subject().load(self.id)
        return [ThreatAssessment.from_row(r) for r in rows]

    @strawberry.field(description="The subject's validated threat assessment in force, if any.")
    async def latest_assessment(self, info: Info) -> Optional["ThreatAssessment"]:
        rows = await info.context.loaders.assessments_by_subject().load(self.id)
        validated = [r for r in rows if r.status == "VALIDATED"]
        return ThreatAssessment.from_row(validated[0]) if validated else None

    @strawberry.field(description="Every version of this file, oldest first.")
    async def history(self, info: Info) -> list["SubjectRevision"]:
        rows = await info.context.loaders.history("Subject").load(self.id)
        return [
            SubjectRevision(
                revision=_revision(SubjectRevisionInfo, r),
                record=Subject.from_row(versions.restore(tables.Subject, r.data)),
            )
            for r in rows
        ]


@strawberry.type(description="One version of a subject's file.")
class SubjectRevision:
    revision: SubjectRevisionInfo = strawberry.field(description="Who wrote this version, when, and what changed.")  # type: ignore[valid-type]  # a type made by _revision_info
    record: Subject = strawberry.field(description="The file as it was in this version.")


@strawberry.type(description="An agency's referral of a subject to the threat analysts.")
class Referral:
    id: uuid.UUID = strawberry.field(description="Stable identifier.")
    subject_id: strawberry.Private[uuid.UUID]
    status: ReferralStatus = strawberry.field(description="Workflow status.")
    reason: ReferralReason = strawberry.field(description="Why the subject is referred.")
    narrative: Optional[str] = strawberry.field(description="The agency's account of the concern.")
    legal_basis: Optional[str] = strawberry.field(description="Legal basis for sharing.")
    referred_by: Optional[str] = strawberry.field(description="Who drafted the referral.")
    agency: Optional[str] = strawberry.field(description="Code of the referring agency.")
    created_at: datetime = strawberry.field(description="When the referral was drafted.")
    submitted_at: Optional[datetime] = strawberry.field(description="When the referral was submitted.")
    acknowledged_at: Optional[datetime] = strawberry.field(description="When the analysts acknowledged it.")
    closed_at: Optional[datetime] = strawberry.field(description="When the referral was closed.")
    version: int = strawberry.field(description="Current version, for expectedVersion on updates.")

    @classmethod
    def from_row(cls, row: tables.Referral) -> "Referral":
        return cls(
            id=row.id,
            subject_id=row.subject_id,
            status=ReferralStatus(row.status),
            reason=ReferralReason(row.reason),
            narrative=row.narrative,
            legal_basis=row.legal_basis,
            referred_by=row.referred_by,
            agency=row.agency_code,
            created_at=row.created_at,
            submitted_at=row.submitted_at,
            acknowledged_at=row.acknowledged_at,
            closed_at=row.closed_at,
            version=row.version,
        )

    @strawberry.field(description="The subject the referral concerns.")
    async def subject(self, info: Info) -> Optional[Subject]:
        row = await info.context.loaders.subject().load(self.subject_id)
        return Subject.from_row(row) if row else None

    @strawberry.field(description="Follow-up notes attached to this referral, newest first.")
    async def notes(self, info: Info, first: NotesFirst = 20) -> list["FollowUpNote"]:
        rows = await info.context.loaders.notes_by_referral(_first(first)).load(self.id)
        return [FollowUpNote.from_row(r) for r in rows]

    @strawberry.field(description="Threat assessments made on this referral, newest first.")
    async def assessments(self, info: Info) -> list["ThreatAssessment"]:
        rows = await info.context.loaders.assessments_by_referral().load(self.id)
        return [ThreatAssessment.from_row(r) for r in rows]

    @strawberry.field(description="Every version of this referral, oldest first.")
    async def history(self, info: Info) -> list["ReferralRevision"]:
        rows = await info.context.loaders.history("Referral").load(self.id)
        return [
            ReferralRevision(
                revision=_revision(ReferralRevisionInfo, r),
                record=Referral.from_row(versions.restore(tables.Referral, r.data)),
            )
            for r in rows
        ]


@strawberry.type(description="One version of a referral.")
class ReferralRevision:
    revision: ReferralRevisionInfo = strawberry.field(description="Who wrote this version, when, and what changed.")  # type: ignore[valid-type]  # a type made by _revision_info
    record: Referral = strawberry.field(description="The referral as it was in this version.")


@strawberry.type(description="A follow-up note. Notes are never changed: a correction is a new note.")
class FollowUpNote:
    id: uuid.UUID = strawberry.field(description="Stable identifier.")
    subject_id: strawberry.Private[uuid.UUID]
    referral_id: Optional[uuid.UUID] = strawberry.field(description="The referral the note belongs to, if any.")
    corrects_id: Optional[uuid.UUID] = strawberry.field(description="The earlier note this one corrects, if any.")
    visibility: NoteVisibility = strawberry.field(description="Who may read the note.")
    body: Optional[str] = strawberry.field(description="The note's text.")
    author: Optional[str] = strawberry.field(description="Who wrote the note.")
    agency: Optional[str] = strawberry.field(description="Code of the author's agency.")
    created_at: datetime = strawberry.field(description="When the note was written.")

    @classmethod
    def from_row(cls, row: tables.FollowUpNote) -> "FollowUpNote":
        return cls(
            id=row.id,
            subject_id=row.subject_id,
            referral_id=row.referral_id,
            corrects_id=row.corrects_id,
            visibility=NoteVisibility(row.visibility),
            body=row.body,
            author=row.author,
            agency=row.agency_code,
            created_at=row.created_at,
        )

    @strawberry.field(description="The note that corrects this one, if it was corrected.")
    async def corrected_by_id(self, info: Info) -> Optional[uuid.UUID]:
        return await info.context.loaders.corrected_by().load(self.id)

    @strawberry.field(description="The subject the note is about.")
    async def subject(self, info: Info) -> Optional[Subject]:
        row = await info.context.loaders.subject().load(self.subject_id)
        return Subject.from_row(row) if row else None


@strawberry.type(description="A threat analysts' assessment of a subject.")
class ThreatAssessment:
    id: uuid.UUID = strawberry.field(description="Stable identifier.")
    subject_id: strawberry.Private[uuid.UUID]
    referral_id: Optional[uuid.UUID] = strawberry.field(description="The referral assessed, if any.")
    level: Optional[ThreatLevel] = strawberry.field(description="Assessed threat level.")
    status: AssessmentStatus = strawberry.field(description="Workflow status.")
    summary: Optional[str] = strawberry.field(description="Guidance for the agency.")
    rationale: Optional[str] = strawberry.field(description="The analysts' reasoning.")
    sources: Optional[list[str]] = strawberry.field(description="Intelligence sources.")
    author: Optional[str] = strawberry.field(description="The analyst who drafted it.")
    validated_by: Optional[str] = strawberry.field(description="The senior analyst who validated it.")
    validated_at: Optional[datetime] = strawberry.field(description="When it was validated.")
    valid_until: Optional[date] = strawberry.field(description="Until when the assessment holds.")
    created_at: datetime = strawberry.field(description="When it was drafted.")
    version: int = strawberry.field(description="Current version, for expectedVersion on updates.")

    @classmethod
    def from_row(cls, row: tables.ThreatAssessment) -> "ThreatAssessment":
        return cls(
            id=row.id,
            subject_id=row.subject_id,
            referral_id=row.referral_id,
            level=ThreatLevel(row.level),
            status=AssessmentStatus(row.status),
            summary=row.summary,
            rationale=row.rationale,
            sources=list(row.sources or []),
            author=row.author,
            validated_by=row.validated_by,
            validated_at=row.validated_at,
            valid_until=row.valid_until,
            created_at=row.created_at,
            version=row.version,
        )

    @strawberry.field(description="The subject assessed.")
    async def subject(self, info: Info) -> Optional[Subject]:
        row = await info.context.loaders.subject().load(self.subject_id)
        return Subject.from_row(row) if row else None

    @strawberry.field(description="Every version of this assessment, oldest first.")
    async def history(self, info: Info) -> list["AssessmentRevision"]:
        rows = await info.context.loaders.history("ThreatAssessment").load(self.id)
        return [
            AssessmentRevision(
                revision=_revision(AssessmentRevisionInfo, r),
                record=ThreatAssessment.from_row(versions.restore(tables.ThreatAssessment, r.data)),
            )
            for r in rows
        ]


@strawberry.type(description="One version of a threat assessment.")
class AssessmentRevision:
    revision: AssessmentRevisionInfo = strawberry.field(description="Who wrote this version, when, and what changed.")  # type: ignore[valid-type]  # a type made by _revision_info
    record: ThreatAssessment = strawberry.field(description="The assessment as it was in this version.")


@strawberry.type(description="Pagination state of a connection.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow.")
    has_previous_page: bool = strawberry.field(description="Whether items precede (an `after` was given).")
    start_cursor: Optional[str] = strawberry.field(description="Cursor of the first item.")
    end_cursor: Optional[str] = strawberry.field(description="Cursor of the last item; pass as `after`.")


def page_info(page: Any, cursors: list[str]) -> PageInfo:
    """PageInfo of a domain.pages.Page and the cursors of its rows."""
    return PageInfo(
        has_next_page=page.has_next,
        has_previous_page=page.has_previous,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


@strawberry.type(description="A subject in a page of subjects.")
class SubjectEdge:
    cursor: str = strawberry.field(description="Position of this item.")
    node: Subject = strawberry.field(description="The subject.")


@strawberry.type(description="A page of subjects.")
class SubjectConnection:
    edges: list[SubjectEdge] = strawberry.field(description="The subjects of this page.")
    page_info: PageInfo = strawberry.field(description="Pagination state.")


@strawberry.type(description="A subject found by searchSubjects, with how well it matched.")
class SubjectSearchEdge:
    cursor: str = strawberry.field(description="Position of this item.")
    score: float = strawberry.field(
        description="How well the subject matched the search text, from 0 to 1 (1: a reference prefix or the exact names)."
    )
    node: Subject = strawberry.field(description="The subject.")


@strawberry.type(description="A page of search results, best match first, then by reference.")
class SubjectSearchConnection:
    edges: list[SubjectSearchEdge] = strawberry.field(description="The subjects of this page.")
    page_info: PageInfo = strawberry.field(description="Pagination state.")


@strawberry.type(description="A referral in a page of referrals.")
class ReferralEdge:
    cursor: str = strawberry.field(description="Position of this item.")
    node: Referral = strawberry.field(description="The referral.")


@strawberry.type(description="A page of referrals.")
class ReferralConnection:
    edges: list[ReferralEdge] = strawberry.field(description="The referrals of this page.")
    page_info: PageInfo = strawberry.field(description="Pagination state.")


@strawberry.type(description="Fields of one type that the caller may read, or of one input type that the caller may set.")
class TypeFields:
    type: str = strawberry.field(description="GraphQL type name.")
    fields: list[str] = strawberry.field(description="Field names, sorted.")


@strawberry.type(description="What the caller may ask for, from the access policy: a front-end hides the rest.")
class Permissions:
    queries: list[str] = strawberry.field(description="Query fields the caller may call.")
    mutations: list[str] = strawberry.field(description="Mutations the caller may call.")
    purposes: list[str] = strawberry.field(description="Values the caller may send in Registry-Purpose.")
    scopes: list[str] = strawberry.field(description="Named row scopes: which records the caller sees at all.")
    read: list[TypeFields] = strawberry.field(description="Readable fields per type; others resolve to null.")
    write: list[TypeFields] = strawberry.field(description="Input fields the caller may set, per input type.")


@strawberry.type(description="The caller, as the registry sees them.")
class Me:
    id: str = strawberry.field(description="Subject identifier from the token.")
    name: str = strawberry.field(description="Display name.")
    agency: Optional[str] = strawberry.field(description="Agency code.")
    roles: list[str] = strawberry.field(description="Roles the registry recognises.")
    unit: Optional[str] = strawberry.field(description="Unit (institution) code, for caseworkers.")
    mutations: list[str] = strawberry.field(description="Mutations the caller may call.")
    purposes: list[str] = strawberry.field(description="Purposes the caller may declare.")
    permissions: Permissions = strawberry.field(description="What the caller may read, set and call.")


@strawberry.enum(description="Whether the registry holds a file on a national number.")
class LookupOutcome(enum.Enum):
    HIT = "HIT"
    NO_HIT = "NO_HIT"


@strawberry.type(description="Answer to a hit/no-hit lookup.")
class LookupResult:
    outcome: LookupOutcome = strawberry.field(description="HIT or NO_HIT.")
    contact_agency: Optional[str] = strawberry.field(description="Agency to contact on a HIT.")
