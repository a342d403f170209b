"""Write the HTTP POST bodies (one JSON document per line) that wrk sends round-robin.

  python bench/bodies.py DSN OUTDIR
    -> OUTDIR/{q1,pg_q1}.jsonl   1 line each
       OUTDIR/{q2,pg_q2}.jsonl   200 lines each, the same 200 subject ids in the same order

Q2's subjects are 200 fixed, deterministic ones (evenly spaced by reference) among those the
analyst sees (a referral past DRAFT) and that have no DRAFT referral, so that the analyst's
row scope hides nothing of their file and both targets return the same data.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import asyncpg

HERE = Path(__file__).parent
N_Q2 = 200

Q2_SUBJECTS = """
SELECT s.id::text FROM subject s
WHERE EXISTS (SELECT 1 FROM referral r WHERE r.subject_id = s.id AND r.status <> 'DRAFT')
  AND NOT EXISTS (SELECT 1 FROM referral r WHERE r.subject_id = s.id AND r.status = 'DRAFT')
ORDER BY s.reference"""


async def main(dsn: str, out: Path) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        candidates = [r[0] for r in await conn.fetch(Q2_SUBJECTS)]
    finally:
        await conn.close()
    if len(candidates) < N_Q2:
        sys.exit(f"bodies: only {len(candidates)} subjects fit Q2; is the database seeded?")
    step = len(candidates) // N_Q2
    ids = candidates[::step][:N_Q2]
    out.mkdir(parents=True, exist_ok=True)
    for prefix in ("", "pg_"):
        q1 = (HERE / f"queries/{prefix}q1.graphql").read_text()
        q2 = (HERE / f"queries/{prefix}q2.graphql").read_text()
        (out / f"{prefix}q1.jsonl").write_text(json.dumps({"query": q1}) + "\n")
        (out / f"{prefix}q2.jsonl").write_text(
            "".join(json.dumps({"query": q2, "variables": {"id": i}}) + "\n" for i in ids))
    print(f"bodies: q1 x1, q2 x{len(ids)} (of {len(candidates)} eligible subjects) in {out}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
