"""Deterministic subjects for the search benchmark, loaded with COPY into a migrated database.

  python bench/search/seed.py DSN SUBJECTS

Names from bench/search/names.py (a fifth of the family names hyphenated doubles, some given
names hyphenated), births over the minors' range, valid national numbers (ASCII digits, as the
service stores them), five units of one agency (YOUTH). Idempotent: skipped when the database
already holds exactly SUBJECTS subjects.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).parent))
from names import FAMILY, GIVEN  # noqa: E402

from registry.domain.national_number import check_digits, normalize  # noqa: E402

SEED = 20261129
UNITS = ["IPPJ-BRAINE", "IPPJ-FRAIPONT", "IPPJ-SAINT-SERVAIS", "IPPJ-WAUTHIER-BRAINE", "IPPJ-SAINT-HUBERT"]
FIRST_BORN, DAYS = date(2008, 11, 2), (date(2014, 11, 1) - date(2008, 11, 2)).days
NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)
COLUMNS = ["id", "reference", "given_name", "family_name", "date_of_birth", "national_number", "institution",
           "legal_status", "agency_code", "review_due_at", "version", "created_by", "created_at", "updated_by", "updated_at"]


def family(rng: random.Random) -> str:
    name = rng.choice(FAMILY)
    return f"{name}-{rng.choice(FAMILY)}" if rng.random() < 0.2 else name


def subjects(count: int) -> list[tuple]:
    rng = random.Random(SEED)
    rows, serials = [], defaultdict(int)
    for i in range(count):
        born = FIRST_BORN + timedelta(days=rng.randrange(DAYS + 1))
        serials[born] += 1  # ~90 per day at 200k: within the 997 the format allows
        body = f"{born:%y%m%d}{serials[born]:03d}"
        created = NOW - timedelta(minutes=rng.randrange(3 * 365 * 24 * 60))
        rows.append((
            uuid.UUID(int=rng.getrandbits(128), version=4), f"S-2026-{i + 1:06d}", rng.choice(GIVEN), family(rng),
            born, normalize(body + check_digits(body, born_2000_or_later=True)), rng.choice(UNITS),
            rng.choice(("CONCERN", "SUSPECTED", "CONVICTED")), "YOUTH", born.replace(year=born.year + 18)
            if not (born.month == 2 and born.day == 29) else date(born.year + 18, 3, 1),
            1, "bench", created, "bench", created,
        ))
    return rows


async def main(dsn: str, count: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SELECT count(*) FROM subject") == count:
            print(f"seed: {count} subjects already present, skipped")
            return
        t0 = time.perf_counter()
        rows = subjects(count)
        async with conn.transaction():
            await conn.execute("TRUNCATE subject CASCADE")
            await conn.execute("INSERT INTO agency (code, name) VALUES ('YOUTH', 'Youth welfare agency') ON CONFLICT DO NOTHING")
            await conn.copy_records_to_table("subject", records=rows, columns=COLUMNS)
        await conn.execute("VACUUM ANALYZE subject")
        print(f"seed: {count} subjects in {time.perf_counter() - t0:.1f}s")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
