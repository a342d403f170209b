"""Fictional demo data, identical on every run (fixed seed, ids and dates) so demos and measurements compare.

Every name, number and text here is invented. Records follow the domain's rules: workflows in
order, four-eyes validation, one validated assessment per subject, a history row per version.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.access.identity import _dev_subject
from registry.db.tables import Agency, FollowUpNote, RecordVersion, Referral, Subject, ThreatAssessment
from registry.domain.national_number import check_digits, normalize
from registry.domain.subjects import eighteenth_birthday, review_due
from registry.domain.versions import snapshot

SEED = 20261101
NOW = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
NAMESPACE = uuid.UUID("6f0c7a52-3d1e-5b7a-9c44-2a9d1e0b5d00")
YEAR, SUBJECTS = 2026, 300
AGENCIES = {  # code: (name, kind)
    "YOUTH": ("Youth welfare agency", "youth"),
    "CUTA": ("Threat analysis unit", "threat_analysis"),
    "POLICE": ("Partner police service", "partner"),
}
UNITS = ("IPPJ-BRAINE", "IPPJ-FRAIPONT", "IPPJ-SAINT-SERVAIS", "IPPJ-WAUTHIER-BRAINE", "IPPJ-SAINT-HUBERT")
OLDEST, YOUNGEST = date(2008, 11, 2), date(2014, 11, 1)  # 12 to 17 years old on 2026-11-01

BOYS = ("Lucas Noah Louis Arthur Adam Mohamed Nathan Victor Jules Liam Hugo Rayan Elias Milan Ayoub Theo "
        "Maxime Simon Bilal Yanis Wout Lars Senne Ilias Sami Tom Robin Mathis Younes Kobe").split()
GIRLS = ("Emma Louise Olivia Nora Lina Alice Juliette Lea Camille Sarah Ines Yasmine Zoe Manon Chloe "
         "Amira Lotte Marie Elise Fien").split()
FAMILY = ("Peeters Janssens Maes Jacobs Mertens Willems Claes Goossens Wouters Dubois Lambert Dupont "
          "Martin Laurent Leclercq Lemaire Renard Hermans Michel Lejeune Dumont Collard Gilson Mathieu "
          "Thiry Benali Yilmaz Kaya Diallo Nowak Moreau Pirard Henrard Vandenberghe Desmet Lefebvre "
          "Haddad Bouzid Demir Lenoir").split()

# The demo person behind each role's development token (`registry token`); also named in the staff lists.
ROLE_EXAMPLES: dict[str, dict[str, str | None]] = {
    "caseworker": {"agency": "YOUTH", "unit": "IPPJ-BRAINE", "name": "Camille Caseworker"},
    "referral_officer": {"agency": "YOUTH", "unit": None, "name": "Robin Referral-Officer"},
    "analyst": {"agency": "CUTA", "unit": None, "name": "Alex Analyst"},
    "senior_analyst": {"agency": "CUTA", "unit": None, "name": "Sam Senior-Analyst"},
    "partner": {"agency": "POLICE", "unit": None, "name": "Pat Partner"},
    "dpo": {"agency": "YOUTH", "unit": None, "name": "Dana Data-Protection"},
    "admin": {"agency": "YOUTH", "unit": None, "name": "Ari Admin"},
}


STAFF_NAMES: dict[str, Any] = {
    "caseworker": {
        "IPPJ-BRAINE": [ROLE_EXAMPLES["caseworker"]["name"], "Nadia Verhaegen"],
        "IPPJ-FRAIPONT": ["Julien Marchal", "Sofie Dewilde"],
        "IPPJ-SAINT-SERVAIS": ["Aurore Delvaux", "Karim Mansouri"],
        "IPPJ-WAUTHIER-BRAINE": ["Pieter Coppens", "Ludivine Hardy"],
        "IPPJ-SAINT-HUBERT": ["Olivier Gobert", "Samira Tahiri"],
    },
    "referral_officer": [ROLE_EXAMPLES["referral_officer"]["name"], "Anne Gerardy"],
    "analyst": [ROLE_EXAMPLES["analyst"]["name"], "Hamza Belkacem", "Els Verstraeten"],
    "senior_analyst": [ROLE_EXAMPLES["senior_analyst"]["name"], "Marc Delhaye"],
}
LEGAL_BASES = (
    "Youth code (decree of 18 January 2018), art. 3",
    "Law of 30 July 2018 on data protection, title 2",
    "Royal decree of 21 July 2016 on the common database",
)
CONCERNS = (
    "shares extremist propaganda videos with peers in the unit",
    "stated support for a terrorist organisation during group sessions",
    "is in online contact with a recruiter known to the partner service",
    "was found with printed material glorifying attacks",
    "expressed the wish to travel to a conflict zone",
)
NOTES_YOUTH = (
    "Weekly follow-up held; engages with the school programme.",
    "Supervised family visit; no particular concern observed.",
    "Refused to attend the group session; talk planned with the educator.",
    "Met the unit psychologist; a second meeting is scheduled.",
    "Conflict with another resident about religious practice; de-escalated.",
    "Progress noted in vocational training; attitude more open.",
)
NOTES_CUTA = (
    "Open-source review completed; no new indicators.",
    "Partner service consulted; nothing further to share at this stage.",
    "Online activity decreased since the last assessment.",
)
GUIDANCE = {
    1: "No specific measure; continue the usual educational follow-up.",
    2: "Monitor contacts and online activity; report any new indicator.",
    3: "Restrict unsupervised outings; inform the threat analysts of incidents within 24 hours.",
    4: "Individual supervision; coordinate every transfer or outing with the threat analysts.",
}
SOURCES = ("OSINT review", "Partner service report", "Institution incident log", "Caseworker interview")


def _person(role: str, name: str, unit: str | None = None) -> tuple[str, str]:
    """(id, name) as in a development token for this person, so demo tokens match authored records."""
    agency = "CUTA" if role in ("analyst", "senior_analyst") else "YOUTH"
    return _dev_subject([role], agency, unit, name), name


CASEWORKERS = {u: [_person("caseworker", n, u) for n in names] for u, names in STAFF_NAMES["caseworker"].items()}
OFFICERS, ANALYSTS, SENIORS = ([_person(r, n) for n in STAFF_NAMES[r]] for r in ("referral_officer", "analyst", "senior_analyst"))


class _Builder:
    """Generates all rows in memory, from the fixed seed only."""

    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.count = 0
        self.numbers: set[str] = set()
        self.rows: dict[str, list[dict[str, Any]]] = {k: [] for k in ("subject", "referral", "note", "correction", "assessment", "version")}

    def uid(self, kind: str) -> uuid.UUID:
        self.count += 1
        return uuid.uuid5(NAMESPACE, f"{kind}:{self.count}")

    def after(self, t: datetime, low_days: float, high_days: float) -> datetime:
        return t + timedelta(minutes=int(self.rng.uniform(low_days, high_days) * 1440))

    def keep(self, model: Any, row: dict, changed: list[str]) -> None:
        """A history row holding the full snapshot of this version, as versions.record writes it."""
        self.rows["version"].append(dict(
            record_type=model.__name__, record_id=row["id"], version=row["version"],
            data=snapshot(model(**row)), changed_fields=sorted(changed),
            changed_by=row["updated_by"], changed_at=row["updated_at"],
        ))

    def change(self, model: Any, row: dict, who: tuple[str, str], at: datetime, **changes: Any) -> None:
        row.update(changes, version=row["version"] + 1, updated_by=who[1], updated_at=at)
        self.keep(model, row, list(changes))

    def national_number(self, born: date, boy: bool) -> str:
        """Valid by its check digits; the serial is odd for boys, even for girls, as in the register."""
        while True:
            body = f"{born:%y%m%d}{self.rng.randrange(1 if boy else 2, 998, 2):03d}"
            number = normalize(body + check_digits(body, born.year >= 2000))
            if number not in self.numbers:
                self.numbers.add(number)
                return number

    def subject(self, index: int) -> None:
        rng = self.rng
        boy = rng.random() < 0.75
        born = OLDEST + timedelta(days=rng.randrange((YOUNGEST - OLDEST).days + 1))
        unit = rng.choice(UNITS)
        status = rng.choices(("CONCERN", "SUSPECTED", "CONVICTED"), weights=(55, 30, 15))[0]
        creator = rng.choice(CASEWORKERS[unit])
        created = NOW - timedelta(days=rng.randint(90, 720), minutes=rng.randrange(600))
        escalated = status != "CONCERN" and rng.random() < 0.5
        row = dict(
            id=self.uid("subject"), reference=f"S-{YEAR}-{index:05d}",
            given_name=rng.choice(BOYS if boy else GIRLS), family_name=rng.choice(FAMILY),
            date_of_birth=born, national_number=self.national_number(born, boy), institution=unit,
            legal_status="CONCERN" if escalated else status, agency_code="YOUTH",
            review_due_at=eighteenth_birthday(born), retain_until=None, version=1,
            created_by=creator[1], created_at=created, updated_by=creator[1], updated_at=created,
        )
        self.keep(Subject, row, ["given_name", "family_name", "date_of_birth", "national_number", "institution", "legal_status"])
        if escalated:
            self.change(Subject, row, rng.choice(OFFICERS), self.after(created, 5, 40), legal_status=status)
        self.rows["subject"].append(row)
        referrals = self.referrals(row, unit, status)
        self.notes(row, unit, referrals)
        validated = self.assessments(row, referrals)
        row["review_due_at"] = review_due(born, validated)

    def referrals(self, subject: dict, unit: str, legal_status: str) -> list[dict]:
        """0-2 referrals; all but the last are closed; steps stop before the demo's fixed date."""
        rng, out = self.rng, []
        reason = {"CONCERN": "RADICALISATION_CONCERN", "SUSPECTED": "TERRORISM_SUSPECTED", "CONVICTED": "TERRORISM_CONVICTED"}[legal_status]
        t = subject["updated_at"]
        count = rng.choices((0, 1, 2), weights=(30, 55, 15))[0]
        for k in range(count):
            target = "CLOSED" if k < count - 1 else rng.choices(("DRAFT", "SUBMITTED", "ACKNOWLEDGED", "CLOSED"), weights=(15, 25, 30, 30))[0]
            author = rng.choice(CASEWORKERS[unit] + OFFICERS)
            t = self.after(t, 3, 40)
            if t >= NOW:
                break
            row = dict(
                id=self.uid("referral"), subject_id=subject["id"], agency_code="YOUTH", status="DRAFT", reason=reason,
                narrative=f"The young person {rng.choice(CONCERNS)}.", legal_basis=rng.choice(LEGAL_BASES),
                referred_by=author[1], referred_by_id=author[0], created_at=t, submitted_at=None,
                acknowledged_at=None, closed_at=None, version=1, updated_by=author[1], updated_at=t,
            )
            self.keep(Referral, row, ["status", "reason", "narrative", "legal_basis"])
            steps = [("SUBMITTED", "submitted_at", OFFICERS, 1, 7), ("ACKNOWLEDGED", "acknowledged_at", ANALYSTS, 1, 10),
                     ("CLOSED", "closed_at", OFFICERS, 20, 90)]
            for status, stamp, actors, low, high in steps:
                step = self.after(t, low, high)
                if row["status"] == target or step >= NOW:
                    break
                t = step
                self.change(Referral, row, rng.choice(actors), t, status=status, **{stamp: t})
            self.rows["referral"].append(row)
            out.append(row)
        return out

    def notes(self, subject: dict, unit: str, referrals: list[dict]) -> None:
        """Youth-agency notes of both visibilities, analysts' shared notes, and a few corrections."""
        rng = self.rng
        shared = [r for r in referrals if r["status"] != "DRAFT"]
        for _ in range(rng.randint(0, 4)):
            analyst = bool(shared) and rng.random() < 0.3
            author = rng.choice(ANALYSTS if analyst else CASEWORKERS[unit])
            linkable = shared if analyst else referrals
            referral = rng.choice(linkable) if linkable and rng.random() < 0.5 else None
            start = (referral or subject)["created_at"]
            row = dict(
                id=self.uid("note"), subject_id=subject["id"], referral_id=referral and referral["id"], corrects_id=None,
                author=author[1], author_id=author[0], agency_code="CUTA" if analyst else "YOUTH",
                visibility="SHARED" if analyst or rng.random() < 0.5 else "AGENCY_INTERNAL",
                body=rng.choice(NOTES_CUTA if analyst else NOTES_YOUTH),
                created_at=start + (NOW - start) * rng.uniform(0.05, 0.9),
            )
            self.rows["note"].append(row)
            if rng.random() < 0.06:
                fix = dict(row, id=self.uid("note"), corrects_id=row["id"], created_at=min(self.after(row["created_at"], 0.02, 2), NOW),
                           body="Correction: " + rng.choice(NOTES_CUTA if analyst else NOTES_YOUTH))
                self.rows["correction"].append(fix)

    def assessments(self, subject: dict, referrals: list[dict]) -> datetime | None:
        """Validated in turn (each superseding the previous), maybe a draft after; returns the last validation time."""
        rng = self.rng
        acknowledged = [r for r in referrals if r["acknowledged_at"]]
        if not acknowledged:
            return None
        referral, validated, last = acknowledged[-1], None, None
        t = referral["acknowledged_at"]
        validations = rng.choices((1, 2, 3), weights=(55, 30, 15))[0]
        for k in range(validations + (rng.random() < 0.25)):
            t = self.after(t, 2, 30)
            if t >= NOW:
                break
            author, level = rng.choice(ANALYSTS), rng.choices((1, 2, 3, 4), weights=(35, 35, 20, 10))[0]
            row = dict(
                id=self.uid("assessment"), subject_id=subject["id"], referral_id=referral["id"], level=level,
                status="DRAFT", summary=GUIDANCE[level],
                rationale=f"Level {level}: indicators weighed against protective factors observed in the unit.",
                sources=sorted(rng.sample(SOURCES, rng.randint(1, 3))), author=author[1], author_id=author[0],
                validated_by=None, validated_by_id=None, validated_at=None, valid_until=(t + timedelta(days=365)).date(),
                created_at=t, version=1, updated_by=author[1], updated_at=t,
            )
            self.keep(ThreatAssessment, row, ["status", "level", "summary", "rationale", "sources", "valid_until"])
            self.rows["assessment"].append(row)
            done = self.after(t, 1, 5)
            if k == validations or done >= NOW:  # left as a draft: the subject's latest work
                break
            t, senior = done, rng.choice(SENIORS)  # four-eyes: seniors never author here
            if validated:
                self.change(ThreatAssessment, validated, senior, t, status="SUPERSEDED")
            self.change(ThreatAssessment, row, senior, t, status="VALIDATED",
                        validated_by=senior[1], validated_by_id=senior[0], validated_at=t)
            validated, last = row, t
        return last


def build() -> dict[str, list[dict[str, Any]]]:
    """All demo rows, by kind; the same on every call."""
    builder = _Builder()
    for index in range(1, SUBJECTS + 1):
        builder.subject(index)
    return builder.rows


async def seed(engine: AsyncEngine) -> str:
    """Insert the demo data in one transaction, unless it is already there."""
    rows = build()
    async with engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(727275)"))  # concurrent seeds queue here
        agencies = insert(Agency).values([{"code": c, "name": n, "kind": k} for c, (n, k) in AGENCIES.items()])
        await conn.execute(  # a demo database from before agency kinds gets them
            agencies.on_conflict_do_update(
                index_elements=["code"], set_={"kind": agencies.excluded.kind}, where=Agency.kind.is_(None)
            )
        )
        references = [r["reference"] for r in rows["subject"]]
        present = await conn.scalar(select(func.count()).select_from(Subject).where(Subject.reference.in_(references)))
        if present:
            return f"demo data already present ({present} demo subject references in use): nothing seeded"
        for table, kind in ((Subject, "subject"), (Referral, "referral"), (FollowUpNote, "note"),
                            (FollowUpNote, "correction"), (ThreatAssessment, "assessment"), (RecordVersion, "version")):
            await conn.execute(cast(Table, table.__table__).insert(), rows[kind])
        await conn.execute(
            text("SELECT setval('subject_reference_seq', GREATEST(:n, (SELECT last_value FROM subject_reference_seq)))"),
            {"n": SUBJECTS},
        )
    notes = len(rows["note"]) + len(rows["correction"])
    return (
        f"demo data seeded: agencies {', '.join(AGENCIES)}; {SUBJECTS} subjects in {len(UNITS)} units, "
        f"{len(rows['referral'])} referrals, {notes} notes ({len(rows['correction'])} corrections), "
        f"{len(rows['assessment'])} assessments, {len(rows['version'])} history rows"
    )
