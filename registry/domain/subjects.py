"""Subjects (the minors): one file per child, created and changed only within the caller's scope."""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registry.access.principal import Principal
from registry.access.scopes import subject_scope
from registry.db.tables import Subject, ThreatAssessment, subject_reference_seq
from registry.db.values import LegalStatus, names
from registry.domain import agencies, national_number, versions
from registry.domain.errors import BadUserInput, Conflict, DuplicateNationalNumber, NotFound
from registry.domain.pages import Page, check_first, decode_cursor, encode_cursor
from registry.domain.text import CODE_MAX, NAME_MAX, clean, refuse_nul

LEGAL_STATUSES = names(LegalStatus)
REVIEW_MONTHS_AFTER_ASSESSMENT = 6
RETENTION_YEARS = 5


@dataclass
class CreateSubject:
    given_name: str
    family_name: str
    date_of_birth: date
    national_number: str
    institution: str
    legal_status: str


@dataclass
class UpdateSubject:
    id: uuid.UUID
    expected_version: int
    changes: dict = field(default_factory=dict)  # snake_case field -> new value


@dataclass
class SubjectFilter:
    reference: str | None = None
    institution: str | None = None
    legal_status: str | None = None
    agency: str | None = None


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _months_after(day: date, months: int) -> date:
    """The same day `months` calendar months later, or the last day of a shorter month."""
    year, month = divmod(day.month - 1 + months, 12)
    year, month = day.year + year, month + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def eighteenth_birthday(born: date) -> date:
    return _years_after(born, 18)


def review_due(born: date | None, last_validated: datetime | None) -> date | None:
    """The earlier of the 18th birthday and six months after the last validated assessment."""
    candidates = []
    if born:
        candidates.append(eighteenth_birthday(born))
    if last_validated:
        candidates.append(_months_after(last_validated.date(), REVIEW_MONTHS_AFTER_ASSESSMENT))
    return min(candidates) if candidates else None


def retain_until(born: date | None, last_validated: datetime | None) -> date | None:
    """Five years after the later of the 18th birthday and the last validated assessment."""
    anchors = [eighteenth_birthday(born)] if born else []
    if last_validated:
        anchors.append(last_validated.date())
    return _years_after(max(anchors), RETENTION_YEARS) if anchors else None


def set_retention_dates(subject: Subject, last_validated: datetime | None) -> None:
    """Keep reviewDueAt and retainUntil in step with every change that moves them."""
    subject.review_due_at = review_due(subject.date_of_birth, last_validated)
    subject.retain_until = retain_until(subject.date_of_birth, last_validated)


def _validated_fields(values: dict) -> dict:
    """Check and normalise the personal fields of a create or update."""
    out = {}
    for key, limit in (("given_name", NAME_MAX), ("family_name", NAME_MAX), ("institution", CODE_MAX)):
        if key in values:
            out[key] = clean(values[key], _camel(key), limit=limit, required=True)
    if "national_number" in values:
        out["national_number"] = national_number.normalize(values["national_number"])
    if "legal_status" in values:
        if values["legal_status"] not in LEGAL_STATUSES:
            raise BadUserInput("legalStatus is not one of " + ", ".join(LEGAL_STATUSES), field="legalStatus")
        out["legal_status"] = values["legal_status"]
    if "date_of_birth" in values:
        born = values["date_of_birth"]
        if born is None or born > date.today() or born < date.today().replace(year=date.today().year - 25):
            raise BadUserInput("dateOfBirth is not the birth date of a minor or young adult", field="dateOfBirth")
        out["date_of_birth"] = born
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


async def _refuse_duplicate(session: AsyncSession, number: str, except_id: uuid.UUID | None = None) -> None:
    """One file per child: a known national number is a conflict, with nothing said about the file."""
    query = select(Subject.id).where(Subject.national_number == number)
    if except_id:
        query = query.where(Subject.id != except_id)
    existing = await session.scalar(query.limit(1))
    if existing is not None:
        raise DuplicateNationalNumber(existing)


async def create(session: AsyncSession, principal: Principal, command: CreateSubject) -> Subject:
    values = _validated_fields(command.__dict__)
    agency = await agencies.require_own(session, principal)
    await _refuse_duplicate(session, values["national_number"])
    number = await session.scalar(subject_reference_seq.next_value())
    subject = Subject(
        id=uuid.uuid4(),
        reference=f"S-{date.today().year}-{number:05d}",
        agency_code=agency,
        version=1,
        created_by=principal.name,
        updated_by=principal.name,
        review_due_at=review_due(values["date_of_birth"], None),
        retain_until=retain_until(values["date_of_birth"], None),
        **values,
    )
    session.add(subject)
    try:
        await versions.record(session, subject, principal, list(values))
    except IntegrityError:  # a concurrent registration of the same child won the race (its id unknown here)
        raise DuplicateNationalNumber(None) from None
    await _refuse_outside_scope(session, principal, subject)
    return subject


async def _refuse_outside_scope(session: AsyncSession, principal: Principal, subject: Subject) -> None:
    """A file is registered, or moved, only within the caller's own row scope (a caseworker's
    unit, a referral officer's agency): the scope decides, as it does for every read."""
    if await session.scalar(select(Subject.id).where(Subject.id == subject.id, subject_scope(principal))) is None:
        raise BadUserInput("a subject's file stays within the caller's own scope (unit or agency)", field="institution")


async def update(session: AsyncSession, principal: Principal, command: UpdateSubject) -> Subject:
    subject = await versions.load_for_update(
        session, Subject, command.id, subject_scope(principal), command.expected_version
    )
    if subject.erased_at is not None:
        raise Conflict("this subject's file was erased at the end of its retention; it cannot change")
    values = _validated_fields(command.changes)
    if "national_number" in values:
        await _refuse_duplicate(session, values["national_number"], except_id=subject.id)
    changed = versions.apply_changes(subject, values, principal)
    if "date_of_birth" in changed:
        await _refresh_retention_dates(session, subject)
    if changed:
        await versions.record(session, subject, principal, changed)
        await _refuse_outside_scope(session, principal, subject)
    return subject


async def _refresh_retention_dates(session: AsyncSession, subject: Subject) -> None:
    last_validated = await session.scalar(
        select(func.max(ThreatAssessment.validated_at)).where(
            ThreatAssessment.subject_id == subject.id, ThreatAssessment.validated_at.is_not(None)
        )
    )
    set_retention_dates(subject, last_validated)


async def require_writable(session: AsyncSession, principal: Principal, subject_id: uuid.UUID) -> None:
    """A record may be added to a subject in the caller's scope whose file was not erased."""
    erased = (
        await session.execute(
            select(Subject.erased_at).where(Subject.id == subject_id, subject_scope(principal))
        )
    ).first()
    if erased is None:
        raise NotFound(f"Subject {subject_id} not found")
    if erased.erased_at is not None:
        raise Conflict("this subject's file was erased at the end of its retention; nothing can be added")


async def get(session: AsyncSession, principal: Principal, subject_id: uuid.UUID) -> Subject | None:
    return await session.scalar(select(Subject).where(Subject.id == subject_id, subject_scope(principal)))


async def by_ids(session: AsyncSession, principal: Principal, ids: list[uuid.UUID]) -> dict[uuid.UUID, Subject]:
    rows = await session.scalars(select(Subject).where(Subject.id.in_(ids), subject_scope(principal)))
    return {row.id: row for row in rows}


async def page(
    session: AsyncSession, principal: Principal, first: int, after: str | None, filter: SubjectFilter
) -> Page[Subject]:
    """Subjects in scope, ordered by reference."""
    for name in ("reference", "institution", "agency"):
        refuse_nul(getattr(filter, name), f"filter.{name}")
    query = select(Subject).where(subject_scope(principal))
    if filter.reference:
        query = query.where(Subject.reference == filter.reference)
    if filter.institution:
        query = query.where(Subject.institution == filter.institution)
    if filter.legal_status:
        query = query.where(Subject.legal_status == filter.legal_status)
    if filter.agency:
        query = query.where(Subject.agency_code == filter.agency)
    if after:
        (reference,) = decode_cursor(after, 1)
        query = query.where(Subject.reference > reference)
    rows = list(await session.scalars(query.order_by(Subject.reference).limit(check_first(first) + 1)))
    return Page(rows=rows[:first], has_next=len(rows) > first, has_previous=after is not None)


def cursor(subject: Subject) -> str:
    return encode_cursor(subject.reference)
