"""one file per child: national numbers as ASCII digits; finding a file by name

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

National numbers typed in other Unicode digits (Arabic-Indic, full-width, ...) were stored as
typed, so the same child could hold several files and a lookup in ASCII digits missed them.
Every stored number becomes its 11 ASCII digits; when that would make two files share a
number, the migration stops and names the files' ids (nothing personal), for an operator to
merge them, and changes nothing.

Search (`searchSubjects`): the `unaccent` and `pg_trgm` extensions, an immutable wrapper of
`unaccent` (the extension's function is only STABLE, so it cannot appear in an index or a
generated column), the search key of a subject's names as an immutable function and a stored
column computed from it (`search_name`), a GIN trigram index on that column, a pattern index
on the reference for prefix searches and an index on the date of birth.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

ASCII_NUMBER = "^[0-9]{11}$"


def _ascii(number: str) -> str | None:
    """The number in ASCII digits, separators dropped; None when it holds anything else."""
    out = []
    for ch in number:
        digit = unicodedata.decimal(ch, None)
        if digit is not None:
            out.append(str(digit))
        elif not (ch in ".\uff0e" or unicodedata.category(ch) in ("Zs", "Pd")):
            return None
    return "".join(out) if len(out) == 11 else None


def _normalise_national_numbers() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, national_number FROM subject WHERE national_number IS NOT NULL"
                " AND national_number !~ :ascii ORDER BY id").bindparams(ascii=ASCII_NUMBER)
    ).all()
    if not rows:
        return
    fixed = {row.id: _ascii(row.national_number) for row in rows}
    unreadable = sorted(str(i) for i, number in fixed.items() if number is None)
    owners: dict[str, list[str]] = defaultdict(list)
    for subject_id, number in fixed.items():
        if number is not None:
            owners[number].append(str(subject_id))
    taken = bind.execute(
        sa.text("SELECT id, national_number FROM subject WHERE national_number = ANY(:numbers)")
        .bindparams(numbers=list(owners))
    ).all()
    for row in taken:
        owners[row.national_number].append(str(row.id))
    collisions = sorted(sorted(ids) for ids in owners.values() if len(ids) > 1)
    if unreadable or collisions:
        report = ["migration 0005 stopped: national numbers cannot all be stored as 11 ASCII digits;"
                  " nothing was changed."]
        report += [f"  same child, several files (merge them, then migrate again): {', '.join(ids)}"
                   for ids in collisions]
        report += [f"  not a national number (correct it, then migrate again): {i}" for i in unreadable]
        raise RuntimeError("\n".join(report))
    bind.execute(
        sa.text("UPDATE subject SET national_number = :number WHERE id = :id"),
        [{"id": subject_id, "number": number} for subject_id, number in fixed.items()],
    )


def upgrade() -> None:
    _normalise_national_numbers()
    op.create_check_constraint(op.f("ck_subject_national_number_ascii"), "subject", f"national_number ~ '{ASCII_NUMBER}'")

    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # unaccent(text) depends on the search_path, hence STABLE; naming the dictionary and its
    # schema makes the result depend on the argument only.
    op.execute(
        """
        CREATE FUNCTION registry_unaccent(value text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, value) $$
        """
    )
    # The names as one lower-case, unaccented text, then the family name once more without its
    # spaces and hyphens, so "vandenberghe" finds "Van den Berghe" and the reverse.
    op.execute(
        """
        CREATE FUNCTION registry_subject_name(given_name text, family_name text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT lower(public.registry_unaccent(
                 coalesce(given_name, '') || ' ' || coalesce(family_name, '') || ' '
                 || regexp_replace(coalesce(family_name, ''), '[[:space:]''-]+', '', 'g'))) $$
        """
    )
    # Stored, so that ranking the candidates reads the key instead of computing it again for
    # each of them (unaccent and a regular expression per row cost more than the ranking).
    op.execute(
        "ALTER TABLE subject ADD COLUMN search_name text"
        " GENERATED ALWAYS AS (public.registry_subject_name(given_name, family_name)) STORED"
    )
    op.execute("CREATE INDEX ix_subject_search_name ON subject USING gin (search_name gin_trgm_ops)")
    op.execute("CREATE INDEX ix_subject_reference_prefix ON subject (reference text_pattern_ops)")
    # A date of birth narrows a search to a few candidates before any name is compared.
    op.create_index(op.f("ix_subject_date_of_birth"), "subject", ["date_of_birth"])


def downgrade() -> None:
    op.drop_index(op.f("ix_subject_date_of_birth"), "subject")
    op.execute("DROP INDEX ix_subject_reference_prefix")
    op.execute("DROP INDEX ix_subject_search_name")
    op.execute("ALTER TABLE subject DROP COLUMN search_name")
    op.execute("DROP FUNCTION registry_subject_name(text, text)")
    op.execute("DROP FUNCTION registry_unaccent(text)")
    op.drop_constraint("ck_subject_national_number_ascii", "subject")
