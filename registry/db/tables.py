"""ORM tables. The schema here and the Alembic migrations must agree (a test compares them)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from registry.db.values import AssessmentStatus, LegalStatus, NoteVisibility, ReferralReason, ReferralStatus, ThreatLevel, between, one_of

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


subject_reference_seq = Sequence("subject_reference_seq", metadata=Base.metadata)


class Agency(Base):
    __tablename__ = "agency"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    # youth, threat_analysis or partner (access.principal.AGENCY_KINDS): the policy binds roles
    # to kinds. None (an agency registered before kinds existed) holds only roles open to any agency.
    kind: Mapped[str | None] = mapped_column(Text)


class Subject(Base):
    """The minor. Personal fields are nullable so that erasure can remove them."""

    __tablename__ = "subject"

    id: Mapped[uuid.UUID] = _uuid_pk()
    reference: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    given_name: Mapped[str | None] = mapped_column(Text)
    family_name: Mapped[str | None] = mapped_column(Text)
    date_of_birth: Mapped[date | None] = mapped_column(Date, index=True)
    national_number: Mapped[str | None] = mapped_column(Text, unique=True)
    institution: Mapped[str | None] = mapped_column(Text, index=True)
    legal_status: Mapped[str] = mapped_column(Text, nullable=False)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agency.code"), nullable=False, index=True)
    review_due_at: Mapped[date | None] = mapped_column(Date)
    retain_until: Mapped[date | None] = mapped_column(Date)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _now()
    updated_by: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint(one_of("legal_status", LegalStatus), name="legal_status"),
        CheckConstraint("national_number ~ '^[0-9]{11}$'", name="national_number_ascii"),
        Index("ix_subject_reference_prefix", "reference", postgresql_ops={"reference": "text_pattern_ops"}),
    )


# searchSubjects: the names' search key (lower case, unaccented; the function is migration 0005's),
# computed by PostgreSQL, and its trigram index. Added to the table after the class is mapped, so
# it is a column of the table only: no record, history or export carries it.
cast(Table, Subject.__table__).append_column(
    Column("search_name", Text, Computed("registry_subject_name(given_name, family_name)", persisted=True))
)
Index("ix_subject_search_name", Subject.__table__.c.search_name, postgresql_using="gin",
      postgresql_ops={"search_name": "gin_trgm_ops"})


class Referral(Base):
    __tablename__ = "referral"

    id: Mapped[uuid.UUID] = _uuid_pk()
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subject.id"), nullable=False)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agency.code"), nullable=False, index=True)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    narrative: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    referred_by: Mapped[str] = mapped_column(Text, nullable=False)
    referred_by_id: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _now()
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_by: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint(one_of("status", ReferralStatus), name="status"),
        CheckConstraint(one_of("reason", ReferralReason), name="reason"),
        Index(None, "subject_id", "created_at"),
        Index(None, "created_at", "id"),
    )


class FollowUpNote(Base):
    """Append-only: a correction is a new note pointing at the one it corrects."""

    __tablename__ = "follow_up_note"

    id: Mapped[uuid.UUID] = _uuid_pk()
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subject.id"), nullable=False)
    referral_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referral.id"), index=True)
    corrects_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("follow_up_note.id"), unique=True
    )
    author: Mapped[str] = mapped_column(Text, nullable=False)
    author_id: Mapped[str] = mapped_column(Text, nullable=False)
    agency_code: Mapped[str] = mapped_column(ForeignKey("agency.code"), nullable=False)
    visibility: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint(one_of("visibility", NoteVisibility), name="visibility"),
        Index(None, "subject_id", "created_at"),
    )


class ThreatAssessment(Base):
    __tablename__ = "threat_assessment"

    id: Mapped[uuid.UUID] = _uuid_pk()
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subject.id"), nullable=False)
    referral_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("referral.id"), index=True)
    level: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    summary: Mapped[str | None] = mapped_column(Text)
    rationale: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list)
    author: Mapped[str] = mapped_column(Text, nullable=False)
    author_id: Mapped[str] = mapped_column(Text, nullable=False)
    validated_by: Mapped[str | None] = mapped_column(Text)
    validated_by_id: Mapped[str | None] = mapped_column(Text)
    validated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = _now()
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_by: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint(between("level", ThreatLevel), name="level"),
        CheckConstraint(one_of("status", AssessmentStatus), name="status"),
        Index(None, "subject_id", "created_at"),
        # at most one validated assessment per subject
        Index(
            "uq_threat_assessment_validated_subject",
            "subject_id",
            unique=True,
            postgresql_where="status = 'VALIDATED'",
        ),
    )


class RecordVersion(Base):
    """Every version of every subject, referral and assessment: who, when, what changed."""

    __tablename__ = "record_version"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    record_type: Mapped[str] = mapped_column(Text, nullable=False)
    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[dict] = mapped_column(JSONB, nullable=False)
    changed_fields: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    changed_by: Mapped[str] = mapped_column(Text, nullable=False)
    changed_at: Mapped[datetime] = _now()

    __table_args__ = (
        Index(None, "record_type", "record_id", "version", unique=True),
    )


class AuditEvent(Base):
    """One consultation or change. Append-only: the service role may only insert and read."""

    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, unique=True, default=uuid.uuid4)
    occurred_at: Mapped[datetime] = _now()
    action: Mapped[str] = mapped_column(Text, nullable=False)
    outcome: Mapped[str] = mapped_column(Text, nullable=False)
    actor_id: Mapped[str] = mapped_column(Text, nullable=False)
    actor_name: Mapped[str] = mapped_column(Text, nullable=False)
    actor_agency: Mapped[str | None] = mapped_column(Text)
    actor_roles: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    purpose: Mapped[str | None] = mapped_column(Text)
    justification: Mapped[str | None] = mapped_column(Text)
    operation: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)
    break_glass: Mapped[bool] = mapped_column(nullable=False, default=False)
    subject_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), nullable=False)
    records: Mapped[list] = mapped_column(JSON, nullable=False)  # as written: migration 0004
    detail: Mapped[dict] = mapped_column(JSONB, nullable=False)

    # Each of the DPO's filters has an index in the order pages are read (newest first, by seq):
    # a page reads its rows and stops, at any volume (migration 0006).
    __table_args__ = (
        Index(None, "occurred_at"),
        Index(None, "actor_id", "seq"),
        Index(None, "actor_agency", "seq"),
        Index(None, "purpose", "seq"),
        Index(None, "operation", "seq"),
        Index(None, "action", "seq"),
        Index("ix_audit_event_subject_ids", "subject_ids", postgresql_using="gin"),
        Index("ix_audit_event_break_glass", "seq", postgresql_where="break_glass"),
        # The review of each break-glass event: whether one exists is one index probe.
        Index(
            "ix_audit_event_reviewed_event",
            text("(detail ->> 'reviewedEvent')"),
            postgresql_where=text("action = 'break_glass.reviewed'"),
        ),
    )


class AuditSeal(Base):
    """The hash chain over audit events, in the order the sealer linked them."""

    __tablename__ = "audit_seal"

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, unique=True)
    event_digest: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sealed_at: Mapped[datetime] = _now()


class LookupAttempt(Base):
    """Hit/no-hit lookups of the last window, per principal: the one budget every worker and
    instance counts against (registry.domain.budget). Rows older than the window are deleted."""

    __tablename__ = "lookup_attempt"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    principal: Mapped[str] = mapped_column(Text, nullable=False)
    attempted_at: Mapped[datetime] = _now()

    __table_args__ = (Index(None, "principal", "attempted_at"),)


class OutboxEvent(Base):
    """An event subscribers are told of, written by the change's own transaction. Ids only:
    the record is read at delivery, with each subscriber's own scope and field rules."""

    __tablename__ = "event_outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)  # the cursor
    type: Mapped[str] = mapped_column(Text, nullable=False)
    occurred_at: Mapped[datetime] = _now()
    record_type: Mapped[str] = mapped_column(Text, nullable=False)
    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    subject_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)

    __table_args__ = (Index(None, "occurred_at"),)
