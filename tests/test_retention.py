"""Retention: reviewDueAt is the earlier of the 18th birthday and six months after the last validated
assessment, kept up to date on every change; `registry retention --list` shows due reviews, and
`--erase` erases exactly the subjects past retainUntil — personal fields gone from records and
history, a tombstone and the audit events kept, the erasure audited; `--dry-run` changes nothing.

The erasure runs on a database of its own (it acts on every subject), with the clock moved by the
command's hidden --today option."""

from __future__ import annotations

import calendar
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime

import httpx
import pytest
from sqlalchemy import select, text

from audit_support import registry, separate_database
from conftest import World, national_number
from helpers import (
    ADD_NOTE,
    UPDATE_SUBJECT,
    actor,
    create_subject,
    draft_assessment,
    draft_referral,
    step,
    validate_assessment,
)
from registry.app import create_app
from registry.config import Settings
from registry.db.engine import create_engine
from registry.db.tables import AuditEvent, FollowUpNote, RecordVersion, Referral, Subject, ThreatAssessment
from registry.domain import agencies

FILE = "query($id: UUID!) { subject(id: $id) { id reference reviewDueAt retainUntil } }"
PERSONAL_SUBJECT = ("given_name", "family_name", "date_of_birth", "national_number", "institution")


def eighteenth(born: date) -> date:
    return born.replace(year=born.year + 18) if (born.month, born.day) != (2, 29) else date(born.year + 18, 2, 28)


def six_months_after(day: date) -> date:
    month = day.month + 6
    year, month = day.year + (month - 1) // 12, (month - 1) % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


async def read_file(world, subject_id: str) -> dict:
    return (await actor(world, "referral_officer").ok(FILE, {"id": subject_id}))["subject"]


# --------------------------------------------------------------------------- reviewDueAt


async def test_a_new_file_is_due_for_review_at_the_18th_birthday(world):
    born = date(2012, 8, 31)
    subject = await create_subject(world, dateOfBirth=born.isoformat(), nationalNumber=national_number(born))
    file = await read_file(world, subject["id"])
    assert file["reviewDueAt"] == eighteenth(born).isoformat() == "2030-08-31"


async def test_a_validated_assessment_brings_the_review_forward_and_a_new_birth_date_moves_it(world):
    # Given a 13-year-old with a submitted referral
    born = date(2013, 3, 10)
    subject = await create_subject(world, dateOfBirth=born.isoformat(), nationalNumber=national_number(born))
    officer = actor(world, "referral_officer")
    await step(world, "submit", await draft_referral(world, subject["id"], by=officer), officer)

    # When an assessment is validated (four eyes)
    assessment = await draft_assessment(world, subject["id"], by=actor(world, "analyst"))
    validated = await validate_assessment(assessment, actor(world, "senior_analyst"))
    validated_on = datetime.fromisoformat(
        (await actor(world, "analyst").ok("query($id: UUID!) { subject(id: $id) { latestAssessment { validatedAt } } }", {"id": subject["id"]}))
        ["subject"]["latestAssessment"]["validatedAt"]
    ).date()
    assert validated["status"] == "VALIDATED"

    # Then the review is due six months after it, well before the 18th birthday
    file = await read_file(world, subject["id"])
    assert file["reviewDueAt"] == six_months_after(validated_on).isoformat()

    # When the birth date is corrected to make the 18th birthday come first
    older = date(validated_on.year - 18, validated_on.month, 1)
    await officer.ok(UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "dateOfBirth": older.isoformat()}})

    # Then the review is due at that birthday, the validation still counting for retention
    file = await read_file(world, subject["id"])
    assert file["reviewDueAt"] == min(eighteenth(older), six_months_after(validated_on)).isoformat() == eighteenth(older).isoformat()
    assert file["retainUntil"] == validated_on.replace(year=validated_on.year + 5).isoformat()


async def test_other_changes_leave_the_review_date_alone(world):
    born = date(2011, 1, 31)
    subject = await create_subject(world, dateOfBirth=born.isoformat(), nationalNumber=national_number(born))
    await actor(world, "referral_officer").ok(UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "givenName": "Jo"}})
    assert (await read_file(world, subject["id"]))["reviewDueAt"] == "2029-01-31"


@pytest.mark.parametrize(
    "validated, due",
    [(date(2026, 1, 15), date(2026, 7, 15)), (date(2026, 8, 31), date(2027, 2, 28)), (date(2027, 12, 31), date(2028, 6, 30))],
)
def test_six_months_is_counted_in_calendar_months(validated, due):
    from registry.domain.subjects import review_due

    assert review_due(date(2014, 1, 1), datetime(validated.year, validated.month, validated.day, 12)) == due


# --------------------------------------------------------------------------- the retention command


@dataclass
class Held:
    """One subject and everything held on it."""

    id: str
    reference: str
    marker: str  # a string found only in this subject's personal data
    national_number: str
    retain_until: date
    review_due_at: date


@dataclass
class Population:
    url: str
    settings: Settings
    world: World
    held: dict[str, Held]


@pytest.fixture
async def population(server_url, tmp_path):
    """Five subjects on a database of their own, each with a referral, a note and an assessment
    (validated for some): born 2008 to 2015, so their retention ends from 2031 to 2038."""
    async with separate_database(server_url, f"registry_retention_{os.getpid()}_{uuid.uuid4().hex[:6]}") as url:
        settings = Settings(database_url=url, data_dir=tmp_path / "data")
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry") as client:
                world = World(client, app.state.services)
                async with world.services.sessions.begin() as session:
                    for code, kind in ((world.agency, "youth"), ("CUTA", "threat_analysis"), ("POLICE", "partner")):
                        await agencies.ensure(session, code, code, kind)
                held = {}
                for name, born, validate in (
                    ("a", date(2008, 3, 1), True),
                    ("b", date(2008, 6, 1), False),
                    ("d", date(2009, 2, 1), False),
                    ("c", date(2014, 1, 1), True),
                    ("e", date(2015, 5, 5), False),
                ):
                    held[name] = await _hold(world, name, born, validate)
                yield Population(url, settings, world, held)


async def _hold(world: World, name: str, born: date, validate: bool) -> Held:
    marker = f"Marker{name.upper()}{uuid.uuid4().hex[:8]}"
    number = national_number(born)
    subject = await create_subject(world, givenName=marker, familyName=f"Family{marker}", dateOfBirth=born.isoformat(), nationalNumber=number)
    officer = actor(world, "referral_officer")
    referral = await draft_referral(world, subject["id"], by=officer, narrative=f"Narrative about {marker}.", legalBasis=f"Basis {marker}")
    await step(world, "submit", referral, officer)
    await actor(world, "caseworker").ok(ADD_NOTE, {"input": {"subjectId": subject["id"], "body": f"Note on {marker}.", "visibility": "SHARED"}})
    assessment = await draft_assessment(
        world, subject["id"], by=actor(world, "analyst"), summary=f"Summary {marker}.", rationale=f"Rationale {marker}.", sources=[f"source {marker}"]
    )
    if validate:
        await validate_assessment(assessment, actor(world, "senior_analyst"))
    file = await read_file(world, subject["id"])
    return Held(
        subject["id"], subject["reference"], marker, number, date.fromisoformat(file["retainUntil"]), date.fromisoformat(file["reviewDueAt"])
    )


async def retention(population: Population, tmp_path, *args: str) -> list[str]:
    code, out, err = await registry("retention", *args, database_url=population.url, data_dir=tmp_path)
    assert code == 0, err
    return out.strip().splitlines()


async def dump(population: Population) -> dict[str, list]:
    """Every row of every table but the audit trail, as text, per table."""
    engine = create_engine(population.url, population.settings, as_owner=True)
    try:
        async with engine.connect() as conn:
            return {
                table: sorted(r for (r,) in await conn.execute(text(f"SELECT to_jsonb(t)::text FROM {table} t")))
                for table in ("subject", "referral", "follow_up_note", "threat_assessment", "record_version")
            }
    finally:
        await engine.dispose()


async def audit_events(population: Population) -> list[AuditEvent]:
    async with population.world.services.sessions() as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def mentions(rows: dict[str, list], marker: str) -> dict[str, int]:
    return {table: sum(marker in row for row in found) for table, found in rows.items() if any(marker in row for row in found)}


async def test_the_population_expires_as_designed(population):
    """The fixture's premise: with the clock at c's retainUntil, a, b and d are past theirs, c and e are not."""
    held = population.held
    today = held["c"].retain_until
    assert {k for k, h in held.items() if h.retain_until < today} == {"a", "b", "d"}


async def test_a_dry_run_lists_exactly_the_expired_subjects_and_changes_nothing(population, tmp_path):
    held = population.held
    today = held["c"].retain_until
    before, events_before = await dump(population), await audit_events(population)

    lines = await retention(population, tmp_path, "--erase", "--dry-run", "--today", today.isoformat())

    assert sorted(lines) == sorted(f"would erase {held[k].reference} (retain until {held[k].retain_until})" for k in "abd")
    assert await dump(population) == before
    assert [e.id for e in await audit_events(population)] == [e.id for e in events_before]


async def test_erasure_removes_personal_data_of_exactly_the_expired_subjects(population, tmp_path):
    held = population.held
    today = held["c"].retain_until
    before, events_before = await dump(population), await audit_events(population)

    # When the expired subjects are erased
    lines = await retention(population, tmp_path, "--erase", "--today", today.isoformat())

    # Then exactly a, b and d are named
    assert sorted(lines) == sorted(f"erased {held[k].reference} (retain until {held[k].retain_until})" for k in "abd")
    after = await dump(population)
    # And their personal data is gone from every record and every version
    for k in "abd":
        assert mentions(before, held[k].marker), "premise: the marker was there"
        assert mentions(after, held[k].marker) == {}, k
        assert not any(held[k].national_number in row for rows in after.values() for row in rows)
    # While the others are untouched, row for row
    for k in "ce":
        assert mentions(after, held[k].marker) == mentions(before, held[k].marker)
    kept = {table: [r for r in rows if not any(held[k].id in r for k in "abd")] for table, rows in before.items()}
    assert {table: [r for r in rows if not any(held[k].id in r for k in "abd")] for table, rows in after.items()} == kept

    # And a tombstone remains: id, reference, status and dates, marked erased
    async with population.world.services.sessions() as session:
        for k in "abd":
            tomb = await session.get(Subject, uuid.UUID(held[k].id))
            assert tomb.reference == held[k].reference and tomb.erased_at is not None
            assert tomb.retain_until == held[k].retain_until and tomb.legal_status == "CONCERN"
            assert all(getattr(tomb, f) is None for f in PERSONAL_SUBJECT)
            subject_id = uuid.UUID(held[k].id)
            referrals = list(await session.scalars(select(Referral).where(Referral.subject_id == subject_id)))
            assert len(referrals) == 1 and (referrals[0].narrative, referrals[0].legal_basis) == (None, None)
            assert referrals[0].status == "SUBMITTED"
            notes = list(await session.scalars(select(FollowUpNote).where(FollowUpNote.subject_id == subject_id)))
            assert len(notes) == 1 and notes[0].body is None
            assessments = list(await session.scalars(select(ThreatAssessment).where(ThreatAssessment.subject_id == subject_id)))
            assert len(assessments) == 1 and (assessments[0].summary, assessments[0].rationale, assessments[0].sources) == (None, None, [])
            versions = list(await session.scalars(select(RecordVersion).where(RecordVersion.record_id.in_([subject_id, referrals[0].id, assessments[0].id]))))
            assert versions and all(not set(PERSONAL_SUBJECT) & set(v.data) for v in versions if v.record_type == "Subject")
            assert all(v.data.get("narrative") is None for v in versions if v.record_type == "Referral")

    # And every audit event is kept, with one subject.erased event per erased subject
    events_after = await audit_events(population)
    assert [e.id for e in events_after[: len(events_before)]] == [e.id for e in events_before]
    erased = events_after[len(events_before):]
    assert sorted((e.action, str(e.subject_ids[0])) for e in erased) == sorted(("subject.erased", held[k].id) for k in "abd")
    assert all(e.actor_id.startswith("operator:") and e.operation == "retention" for e in erased)
    assert {e.detail["retainUntil"] for e in erased} == {str(held[k].retain_until) for k in "abd"}

    # And the chain still holds, the erasure included
    code, out, _ = await registry("audit", "verify", "--seal", database_url=population.url, data_dir=tmp_path)
    assert code == 0, out

    # And a second run finds nothing more to erase
    assert await retention(population, tmp_path, "--erase", "--today", today.isoformat()) == ["nothing due"]


async def test_an_erased_subject_is_no_longer_a_hit(population, tmp_path):
    held = population.held
    await retention(population, tmp_path, "--erase", "--today", held["c"].retain_until.isoformat())
    partner = actor(population.world, "partner", agency="POLICE")
    lookup = "query($n: String!) { lookupSubject(nationalNumber: $n) { outcome } }"
    assert (await partner.ok(lookup, {"n": held["a"].national_number}))["lookupSubject"]["outcome"] == "NO_HIT"
    assert (await partner.ok(lookup, {"n": held["c"].national_number}))["lookupSubject"]["outcome"] == "HIT"


async def test_nothing_is_erased_before_its_time(population, tmp_path):
    held = population.held
    earliest = min(h.retain_until for h in held.values())
    assert await retention(population, tmp_path, "--erase", "--today", earliest.isoformat()) == ["nothing due"]


async def test_the_list_shows_the_reviews_due(population, tmp_path):
    held = population.held
    today = held["d"].review_due_at
    due = sorted(k for k, h in held.items() if h.review_due_at <= today)
    assert set(due) >= {"b", "d"} and "e" not in due

    lines = await retention(population, tmp_path, "--list", "--today", today.isoformat())

    assert sorted(lines) == sorted(f"review due {held[k].review_due_at}  {held[k].reference}  {population.world.agency}" for k in due)

    # And an erased file is no longer due for review
    await retention(population, tmp_path, "--erase", "--today", held["c"].retain_until.isoformat())
    assert await retention(population, tmp_path, "--list", "--today", today.isoformat()) == ["nothing due"]
