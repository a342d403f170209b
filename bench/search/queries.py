"""The benchmark's 200 search requests, as front-end users type them, from the seeded subjects.

  python bench/search/queries.py DSN OUT.jsonl

One JSON line per request: {"body": <POST body>, "expect": <subject id>}. 200 subjects evenly
spaced by reference; per subject one of: the names without accents, with a typo, in swapped
order, the family name alone with the date of birth, given name and the start of the family
name, particles glued, the names with the date of birth, or a reference prefix. Deterministic.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import unicodedata

import asyncpg

N = 200
QUERY = (
    "query SearchSubjects($text: String!, $dateOfBirth: Date, $first: Int = 20, $after: String) {"
    " searchSubjects(text: $text, dateOfBirth: $dateOfBirth, first: $first, after: $after) {"
    " edges { cursor score node { id reference givenName familyName dateOfBirth institution legalStatus } }"
    " pageInfo { hasNextPage endCursor } } }"
)


def plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)).lower()


def typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(1, max(2, len(word) - 1))
    return word[:i] + word[i + 1:] if rng.random() < 0.5 else word[:i] + rng.choice("aeiouyn") + word[i + 1:]


def request(rng: random.Random, kind: int, given: str, family: str, born, reference: str) -> tuple[str, str | None]:
    born_text = born.isoformat()
    if kind == 0:
        return f"{plain(given)} {plain(family)}", None
    if kind == 1:
        return f"{given} {typo(rng, family)}", None
    if kind == 2:
        return f"{family} {given}", None
    if kind == 3:
        return plain(family), born_text
    if kind == 4:
        return f"{given} {family[:max(4, len(family) // 2)]}", None
    if kind == 5:
        return f"{plain(given)} {plain(family).replace(' ', '').replace('-', ' ')}", None
    if kind == 6:
        return f"{typo(rng, plain(given))} {plain(family)}", born_text
    return reference, None


async def main(dsn: str, out: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT id::text, reference, given_name, family_name, date_of_birth FROM subject ORDER BY reference")
    finally:
        await conn.close()
    rng = random.Random(200)
    step = len(rows) // N
    with open(out, "w") as f:
        for index, row in enumerate(rows[::step][:N]):
            text, born = request(rng, index % 8, row["given_name"], row["family_name"], row["date_of_birth"], row["reference"])
            variables = {"text": text, "dateOfBirth": born, "first": 20}
            body = {"query": QUERY, "operationName": "SearchSubjects", "variables": variables}
            f.write(json.dumps({"body": body, "expect": row["id"]}, ensure_ascii=False) + "\n")
    print(f"queries: {N} requests written to {out}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
