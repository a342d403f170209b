"""The name search and the reference prefix are served by their indexes (migration 0005), not by
reading every subject: EXPLAIN of the statement the service runs, on a migrated database holding
tens of thousands of subjects built with generate_series."""

from __future__ import annotations

import os

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from audit_support import separate_database
from registry.access.principal import Principal
from registry.api.compiler import _compile, _parameters
from registry.api.context import Context
from registry.config import Settings
from registry.db.engine import WORD_SIMILARITY_THRESHOLD, create_engine
from registry.db.migrate import upgrade
from registry.domain import search

SUBJECTS = 30_000
GIVEN = "{Céline,Marie,Youssef,Lotte,Anne-Sophie,Jean,Zoë,Noah,Nora,Mohamed,Léa,Arthur,Ayoub,Chloé,Manon,Rayan,Hugo,Inès,Elif,Milan}"
FAMILY = "{Vandenberghe,El Amrani,Van den Broeck,De Smet,Dupont,Janssens,Maes,Ben Saïd,Lefèvre,Van Damme,Peeters,Claes,Goossens,Dewaele,Ouali,Lambert,Willems,Mertens,Wouters,Jacobs,Martin,Dubois,Leroy,Lemaire,Hermans,Michiels,Aerts,Stevens,Pauwels,Smets,Desmet,Verbruggen,Bouzid,Haddad,Yilmaz,Ait Taleb,Lemaître,Van der Linden,O''Neill,Vermeulen}"


@pytest.fixture(scope="module")
async def large(server_url, tmp_path_factory):
    """A migrated database of its own with SUBJECTS subjects of one agency, analysed: a tenth of
    them with the family names above, the others with family names as varied as real ones."""
    async with separate_database(server_url, f"registry_search_{os.getpid()}") as url:
        owner = create_engine(url, Settings(database_url=url, data_dir=tmp_path_factory.mktemp("search")), as_owner=True)
        await upgrade(owner)
        await owner.dispose()
        conn = await asyncpg.connect(url, server_settings={"pg_trgm.word_similarity_threshold": WORD_SIMILARITY_THRESHOLD})
        await conn.execute("INSERT INTO agency (code, name) VALUES ('YOUTH', 'Youth')")
        await conn.execute(
            f"""
            INSERT INTO subject (id, reference, given_name, family_name, date_of_birth, legal_status, agency_code,
                                 institution, version, created_by, updated_by)
            SELECT gen_random_uuid(), 'S-2026-' || lpad(i::text, 6, '0'),
                   (('{GIVEN}'::text[])[1 + (i * 7) % 20]) || CASE WHEN i % 13 = 0 THEN '-Marie' ELSE '' END,
                   CASE WHEN i % 10 = 0 THEN ('{FAMILY}'::text[])[1 + (i * 11) % 40]
                        ELSE initcap(translate(substr(md5(i::text), 1, 4 + i % 5), '0123456789', 'ghijklmnop')) END,
                   date '2008-01-01' + (i % 2500), 'CONCERN', 'YOUTH', 'UNIT-' || (i % 5), 1, 't', 't'
            FROM generate_series(1, {SUBJECTS}) AS i
            """
        )
        await conn.execute("ANALYZE subject")
        yield conn
        await conn.close()


async def plan(conn: asyncpg.Connection, text: str) -> str:
    officer = Principal(id="officer", name="Officer", agency="YOUTH", roles=frozenset({"referral_officer"}),
                        scopes=frozenset({"own_agency"}))
    statement = search.statement(officer, search.SearchSubjects(text=text), 20, None)
    sql = str(statement.compile(dialect=asyncpg_dialect(), compile_kwargs={"literal_binds": True}))
    return await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}")


async def test_a_name_search_reads_the_trigram_index(large):
    for text in ("celine vandenberge", "el amrani youssef", "dewaele"):
        explained = await plan(large, text)
        assert "ix_subject_search_name" in explained, explained
        assert '"Seq Scan"' not in explained, explained


async def test_a_reference_prefix_reads_the_reference_index(large):
    explained = await plan(large, "S-2026-0123")
    assert "ix_subject_reference_prefix" in explained, explained
    assert '"Seq Scan"' not in explained, explained


COMPILED = """
query($text: String!, $dateOfBirth: Date, $first: Int = 20, $after: String) {
  searchSubjects(text: $text, dateOfBirth: $dateOfBirth, first: $first, after: $after) {
    edges { cursor score node { id reference givenName familyName } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def test_the_compiled_search_reads_the_indexes_too(large, services):
    # given the statement the read compiler makes of a search, for a referral officer of YOUTH
    officer = Principal(id="officer", name="Officer", agency="YOUTH", roles=frozenset({"referral_officer"}))
    ctx = Context(principal=officer, policy=services.policy, session=None, request_id="explain")
    plan = _compile(services.compiler.schema, COMPILED, None, ctx)
    for variables, index in (({"text": "celine vandenberge"}, "ix_subject_search_name"),
                             ({"text": "S-2026-0123"}, "ix_subject_reference_prefix")):
        arguments = plan.prepared.arguments(ctx.principal, _parameters(plan, variables))
        # when PostgreSQL plans it with this request's values
        explained = await large.fetchval(f"EXPLAIN (FORMAT JSON) {plan.prepared.sql}", *arguments)
        # then the index serves it
        assert index in explained, explained
        assert '"Seq Scan"' not in explained, explained
