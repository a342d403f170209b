"""Deterministic benchmark data at the anchor's sizes, loaded with COPY into the project's schema.

  python bench/seed.py DSN [--force]

The database must already be migrated (`registry migrate`). Skips when the data is present
(same row counts); --force loads anyway (run.sh recreates the database first for FORCE_SEED=1).

Sizes (as /work/shared/anchor-bench): 3 agencies, 20,000 subjects, 30,000 referrals,
200,000 notes (bodies of 350-450 characters), 40,000 assessments. Everything comes from one
fixed seed, so every run has the same ids, texts and timestamps.

The data obeys the schema's constraints and the domain's rules where a query can see them:
valid national numbers (check digits), workflow timestamps per referral status, at most one
VALIDATED assessment per subject (older ones SUPERSEDED), validated ones with a validator.
No record_version rows (no query of the benchmark reads history).

Shaped so that the analyst (our server, row scope applied) and PostGraphile (no scope) return
the same data for Q1 and Q2, which the correctness check relies on:
- the 300 newest referrals are never DRAFT, so Q1's 50 latest referrals are all visible;
- a subject the analyst can see (it has a non-DRAFT referral) has only SHARED notes among its
  20 newest; AGENCY_INTERNAL notes are older ones, or belong to subjects the analyst cannot see;
- the analyst sees every assessment status, so assessments need no shaping.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

import asyncpg

from registry.domain.national_number import check_digits, normalize

SEED = 20240601
N_SUBJECTS, N_REFERRALS, N_NOTES, N_ASSESSMENTS = 20_000, 30_000, 200_000, 40_000
NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
SPAN_US = 3 * 365 * 24 * 3600 * 10**6  # record timestamps spread over the 3 years before NOW
NEWEST_NOT_DRAFT = 300                  # Q1 reads the 50 newest referrals: keep them visible
SHARED_NEWEST_NOTES = 20                # Q1 reads 10, Q2 20 newest notes per subject

AGENCIES = [("YOUTH", "Youth welfare agency", "youth"), ("CUTA", "Threat analysis unit", "threat_analysis"),
            ("POLICE", "Partner police service", "partner")]
UNITS = ["IPPJ-BRAINE", "IPPJ-FRAIPONT", "IPPJ-SAINT-SERVAIS", "IPPJ-WAUTHIER-BRAINE", "IPPJ-SAINT-HUBERT"]
GIVEN = ["Adam", "Sara", "Yusuf", "Lena", "Tom", "Aya", "Jonas", "Mila", "Omar", "Nina",
         "Lucas", "Emma", "Bilal", "Julie", "Noah", "Ines", "Ali", "Lotte", "Elias", "Zoe"]
FAMILY = ["Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens",
          "Wouters", "De Smet", "El Amrani", "Dubois", "Lambert", "Dupont", "Martin", "Leroy"]
LEGAL_STATUS = ["CONCERN", "SUSPECTED", "CONVICTED"]
REASONS = ["TERRORISM_SUSPECTED", "TERRORISM_CONVICTED", "RADICALISATION_CONCERN"]
LEGAL_BASES = ["Youth code (decree of 18 January 2018), art. 3",
               "Law of 30 July 2018 on data protection, title 2",
               "Royal decree of 21 July 2016 on the common database"]
SOURCES = ["OSINT review", "Partner service report", "Institution incident log", "Caseworker interview"]
# (id, name) pairs; the ids only need to look like token subjects
OFFICERS = [(f"bench|referral_officer|{i}", f"Officer {i:02d}") for i in range(10)]
CASEWORKERS = [(f"bench|caseworker|{i}", f"Caseworker {i:02d}") for i in range(30)]
ANALYSTS = [(f"bench|analyst|{i}", f"Analyst {i:02d}") for i in range(12)]
SENIORS = [(f"bench|senior_analyst|{i}", f"Senior {i:02d}") for i in range(4)]
WORDS = ("the subject was observed contact with known network during visit report indicates "
         "change in behaviour further monitoring advised according to source information "
         "meeting scheduled risk factors assessment pending review by team leader "
         "no new elements since previous note escalation not required at this stage").split()


class Gen:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.used_ts: set[int] = set()
        # Texts are windows into one long random word stream: much faster than drawing
        # ~70 words per note, and just as incompressible at these lengths.
        self.pool = " ".join(self.rng.choice(WORDS) for _ in range(400_000))

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def ts(self) -> datetime:
        """A unique timestamp (unique across all tables: no ties in any created_at ordering)."""
        while True:
            us = self.rng.randrange(SPAN_US)
            if us not in self.used_ts:
                self.used_ts.add(us)
                return NOW - timedelta(microseconds=SPAN_US - us)

    def text(self, n: int) -> str:
        start = self.rng.randrange(len(self.pool) - n - 20)
        start = self.pool.index(" ", start) + 1  # start on a word
        return self.pool[start:start + n].rstrip()


def eighteenth_birthday(born: date) -> date:
    try:
        return born.replace(year=born.year + 18)
    except ValueError:  # 29 February
        return date(born.year + 18, 3, 1)


def subjects(g: Gen) -> list[tuple]:
    rows, serials = [], defaultdict(int)
    first_born, days = date(2008, 11, 2), (date(2014, 11, 1) - date(2008, 11, 2)).days
    for i in range(N_SUBJECTS):
        born = first_born + timedelta(days=g.rng.randrange(days + 1))
        serials[born] += 1  # ~9 per day of birth, well below the 997 the format allows
        body = f"{born:%y%m%d}{serials[born]:03d}"
        created = g.ts()
        by = g.rng.choice(CASEWORKERS)[1]
        rows.append((
            g.uid(), f"S-BENCH-{i:06d}", g.rng.choice(GIVEN), g.rng.choice(FAMILY), born,
            normalize(body + check_digits(body, born_2000_or_later=True)), g.rng.choice(UNITS),
            g.rng.choice(LEGAL_STATUS), "YOUTH", eighteenth_birthday(born), 1, by, created, by, created,
        ))
    return rows


def referrals(g: Gen, subs: list[tuple]) -> list[list]:
    rows = []
    for _ in range(N_REFERRALS):
        s = g.rng.choice(subs)
        created = g.ts()
        status = g.rng.choices(["DRAFT", "SUBMITTED", "ACKNOWLEDGED", "CLOSED"], [10, 30, 35, 25])[0]
        officer = g.rng.choice(OFFICERS)
        rows.append([g.uid(), s[0], "YOUTH", status, g.rng.choice(REASONS), g.text(300),
                     g.rng.choice(LEGAL_BASES), officer[1], officer[0], created,
                     g.rng.randrange(1, 240), g.rng.randrange(1, 480), g.rng.randrange(24, 2000)])
    rows.sort(key=lambda r: r[9])
    for r in rows[-NEWEST_NOT_DRAFT:]:
        if r[3] == "DRAFT":
            r[3] = "SUBMITTED"
    out = []
    for (rid, sid, agency, status, reason, narrative, basis, by, by_id, created, h_sub, h_ack, h_close) in rows:
        submitted = created + timedelta(hours=h_sub) if status != "DRAFT" else None
        acknowledged = submitted + timedelta(hours=h_ack) if status in ("ACKNOWLEDGED", "CLOSED") else None
        closed = acknowledged + timedelta(hours=h_close) if status == "CLOSED" else None
        version = 1 + sum(t is not None for t in (submitted, acknowledged, closed))
        updated = closed or acknowledged or submitted or created
        out.append((rid, sid, agency, status, reason, narrative, basis, by, by_id, created,
                    submitted, acknowledged, closed, version, by, updated))
    return out


def notes(g: Gen, subs: list[tuple], refs: list[tuple]) -> list[tuple]:
    refs_of = defaultdict(list)
    visible = set()  # subjects the analyst sees: at least one referral past DRAFT
    for r in refs:
        refs_of[r[1]].append(r[0])
        if r[3] != "DRAFT":
            visible.add(r[1])
    drafted = []
    for _ in range(N_NOTES):
        s = g.rng.choice(subs)
        sref = refs_of.get(s[0])
        referral = g.rng.choice(sref) if sref and g.rng.random() < 0.5 else None
        author = g.rng.choice(ANALYSTS) if g.rng.random() < 0.2 else g.rng.choice(CASEWORKERS)
        agency = "CUTA" if author in ANALYSTS else "YOUTH"
        drafted.append([g.uid(), s[0], referral, author[1], author[0], agency,
                        g.text(g.rng.randint(350, 450)), g.ts(), g.rng.random()])
    by_subject = defaultdict(list)
    for n in drafted:
        by_subject[n[1]].append(n)
    out = []
    for sid, ns in by_subject.items():
        ns.sort(key=lambda n: n[7], reverse=True)
        for rank, (nid, _, referral, author, author_id, agency, body, created, draw) in enumerate(ns):
            if agency == "CUTA":
                visibility = "SHARED"  # analysts only write SHARED notes
            elif sid in visible:
                visibility = "SHARED" if rank < SHARED_NEWEST_NOTES or draw < 0.5 else "AGENCY_INTERNAL"
            else:
                visibility = "SHARED" if draw < 0.6 else "AGENCY_INTERNAL"
            out.append((nid, sid, referral, author, author_id, agency, visibility, body, created))
    return out


def assessments(g: Gen, subs: list[tuple], refs: list[tuple]) -> list[tuple]:
    refs_of = defaultdict(list)
    for r in refs:
        refs_of[r[1]].append(r[0])
    by_subject = defaultdict(list)
    for _ in range(N_ASSESSMENTS):
        s = g.rng.choice(subs)
        sref = refs_of.get(s[0])
        by_subject[s[0]].append([
            g.uid(), s[0], g.rng.choice(sref) if sref and g.rng.random() < 0.5 else None,
            g.rng.randint(1, 4), g.rng.random() < 0.15, g.text(120), g.text(300),
            g.rng.sample(SOURCES, g.rng.randint(1, 3)), g.rng.choice(ANALYSTS), g.rng.choice(SENIORS),
            g.ts(), g.rng.randrange(1, 72), g.rng.randrange(30, 720),
        ])
    out = []
    for sid in sorted(by_subject):
        rows = sorted(by_subject[sid], key=lambda a: a[10])
        published = [a for a in rows if not a[4]]
        for a in rows:
            aid, _, referral, level, draft, summary, rationale, sources, author, senior, created, h_val, d_valid = a
            if draft:
                status, validator, validated_at, version = "DRAFT", (None, None), None, 1
            else:
                # the newest published one is in force; validating it superseded the older ones
                status = "VALIDATED" if a is published[-1] else "SUPERSEDED"
                validator, validated_at = senior, created + timedelta(hours=h_val)
                version = 2 if status == "VALIDATED" else 3
            out.append((aid, sid, referral, level, status, summary, rationale, sources,
                        author[1], author[0], validator[1], validator[0], validated_at,
                        (created + timedelta(days=d_valid)).date(), created, version,
                        author[1], validated_at or created))
    return out


COLUMNS = {
    "agency": ["code", "name", "kind"],
    "subject": ["id", "reference", "given_name", "family_name", "date_of_birth", "national_number",
                "institution", "legal_status", "agency_code", "review_due_at", "version",
                "created_by", "created_at", "updated_by", "updated_at"],
    "referral": ["id", "subject_id", "agency_code", "status", "reason", "narrative", "legal_basis",
                 "referred_by", "referred_by_id", "created_at", "submitted_at", "acknowledged_at",
                 "closed_at", "version", "updated_by", "updated_at"],
    "follow_up_note": ["id", "subject_id", "referral_id", "author", "author_id", "agency_code",
                       "visibility", "body", "created_at"],
    "threat_assessment": ["id", "subject_id", "referral_id", "level", "status", "summary", "rationale",
                          "sources", "author", "author_id", "validated_by", "validated_by_id",
                          "validated_at", "valid_until", "created_at", "version", "updated_by", "updated_at"],
}
EXPECTED = {"subject": N_SUBJECTS, "referral": N_REFERRALS, "follow_up_note": N_NOTES,
            "threat_assessment": N_ASSESSMENTS}


async def main(dsn: str, force: bool) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in EXPECTED}
        if counts == EXPECTED and not force:
            print(f"seed: already present ({counts}), skipped")
            return
        if any(counts.values()) and not force:
            sys.exit(f"seed: the database holds other data {counts}; rerun with FORCE_SEED=1")
        t0 = time.perf_counter()
        g = Gen()
        subs = subjects(g)
        refs = referrals(g, subs)
        data = {
            "agency": AGENCIES,
            "subject": subs,
            "referral": refs,
            "follow_up_note": notes(g, subs, refs),
            "threat_assessment": assessments(g, subs, refs),
        }
        t1 = time.perf_counter()
        async with conn.transaction():
            for table, rows in data.items():
                if table == "agency":  # the demo or a previous run may have created some
                    await conn.executemany(
                        "INSERT INTO agency (code, name, kind) VALUES ($1, $2, $3)"
                        " ON CONFLICT (code) DO UPDATE SET kind = excluded.kind WHERE agency.kind IS NULL", rows)
                else:
                    await conn.copy_records_to_table(table, records=rows, columns=COLUMNS[table])
        await conn.execute("VACUUM ANALYZE")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"seed: loaded in {time.perf_counter() - t0:.1f}s (generating {t1 - t0:.1f}s), "
              f"{ {t: len(r) for t, r in data.items()} }, database size {size}")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], "--force" in sys.argv[2:]))
