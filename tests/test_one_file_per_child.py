"""One file per child: a national number is the same number whatever digits and separators it
is typed with, on every path that writes or looks one up; migration 0005 brings stored numbers
to that form, or stops naming the files that would collide."""

from __future__ import annotations

import os
import uuid

import asyncpg
import pytest

from audit_support import separate_database
from helpers import CREATE_SUBJECT, UPDATE_SUBJECT, actor, codes, create_subject, national_number, subject_input
from registry.config import Settings
from registry.db.engine import create_engine
from registry.db.migrate import upgrade

LOOKUP = "query($n: String!) { lookupSubject(nationalNumber: $n) { outcome contactAgency } }"
NUMBER = "query($id: UUID!) { subject(id: $id) { nationalNumber } }"

# The zero of each digit script; the other digits follow it in Unicode.
SCRIPTS = {
    "arabic-indic": 0x0660,
    "extended arabic-indic": 0x06F0,
    "devanagari": 0x0966,
    "bengali": 0x09E6,
    "thai": 0x0E50,
    "full-width": 0xFF10,
    "mathematical bold": 0x1D7CE,
}


def spelled(number: str, zero: int) -> str:
    return "".join(chr(zero + int(d)) for d in number)


def dotted(number: str) -> str:
    return f"{number[:2]}.{number[2:4]}.{number[4:6]}-{number[6:9]}.{number[9:]}"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
async def test_a_number_in_other_digits_is_stored_as_ascii_and_found_by_a_partner(world, script):
    # given a subject registered with its number typed in another digit script, with separators
    number = national_number()
    subject = await create_subject(world, nationalNumber=dotted(spelled(number, SCRIPTS[script])))
    # then the file holds the 11 ASCII digits
    officer = actor(world, "referral_officer")
    assert (await officer.ok(NUMBER, {"id": subject["id"]}))["subject"]["nationalNumber"] == number
    # and a partner asking in ASCII digits, or in that script, gets a HIT
    partner = actor(world, "partner", agency="POLICE", name=f"partner {uuid.uuid4().hex[:8]}")
    for asked in (number, spelled(number, SCRIPTS[script]), f"{number[:6]} {number[6:]}"):
        data = await partner.ok(LOOKUP, {"n": asked})
        assert data["lookupSubject"] == {"outcome": "HIT", "contactAgency": world.agency}


@pytest.mark.parametrize("script", ["arabic-indic", "full-width", "devanagari"])
async def test_a_second_file_in_other_digits_is_refused_as_a_duplicate(world, script):
    # given a child registered with ASCII digits
    number = national_number()
    await create_subject(world, nationalNumber=number)
    officer = actor(world, "referral_officer")
    # when the same number is registered again in another script, with separators
    for typed in (spelled(number, SCRIPTS[script]), dotted(spelled(number, SCRIPTS[script])), dotted(number)):
        body = await officer.gql(CREATE_SUBJECT, {"input": subject_input(world, nationalNumber=typed)})
        # then it is refused: one file per child
        assert body["data"] is None and codes(body) == ["CONFLICT"], body


async def test_an_update_to_a_registered_number_in_other_digits_is_refused(world):
    # given two children
    first, second = national_number(), national_number()
    await create_subject(world, nationalNumber=spelled(first, SCRIPTS["full-width"]))
    other = await create_subject(world, nationalNumber=second)
    officer = actor(world, "referral_officer")
    # when the second's number is changed to the first's, typed in Arabic-Indic digits
    change = {"id": other["id"], "expectedVersion": other["version"], "nationalNumber": spelled(first, SCRIPTS["arabic-indic"])}
    body = await officer.gql(UPDATE_SUBJECT, {"input": change})
    # then it is refused, and the file keeps its own number
    assert codes(body) == ["CONFLICT"], body
    assert (await officer.ok(NUMBER, {"id": other["id"]}))["subject"]["nationalNumber"] == second
    # and a correction typed in other digits is stored in ASCII
    third = national_number()
    change["nationalNumber"] = spelled(third, SCRIPTS["thai"])
    await officer.ok(UPDATE_SUBJECT, {"input": change})
    assert (await officer.ok(NUMBER, {"id": other["id"]}))["subject"]["nationalNumber"] == third


# Each builds a number from the 11 ASCII digits `n`, with something that is not allowed.
NOT_ALLOWED = {
    "a letter": lambda n: n + "x",
    "a slash": lambda n: n[:6] + "/" + n[6:],
    "a superscript digit": lambda n: n[:10] + "\u00b2",
    "a zero-width space": lambda n: n[:6] + "\u200b" + n[6:],
    "a bidirectional override": lambda n: "\u202e" + n,
    "a roman numeral": lambda n: n[:10] + "\u2167",
}


@pytest.mark.parametrize("case", sorted(NOT_ALLOWED))
async def test_anything_but_digits_and_the_usual_separators_is_bad_user_input(world, case):
    typed = NOT_ALLOWED[case](national_number())
    officer = actor(world, "referral_officer")
    body = await officer.gql(CREATE_SUBJECT, {"input": subject_input(world, nationalNumber=typed)})
    assert body["data"] is None and codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "nationalNumber"
    partner = actor(world, "partner", agency="POLICE", name=f"partner {uuid.uuid4().hex[:8]}")
    assert codes(await partner.gql(LOOKUP, {"n": typed})) == ["BAD_USER_INPUT"]


async def test_wrong_check_digits_in_other_digits_are_refused(world):
    number = national_number()
    wrong = number[:9] + f"{(int(number[9:]) + 1) % 100:02d}"
    officer = actor(world, "referral_officer")
    body = await officer.gql(CREATE_SUBJECT, {"input": subject_input(world, nationalNumber=spelled(wrong, SCRIPTS["full-width"]))})
    assert codes(body) == ["BAD_USER_INPUT"]


# --------------------------------------------------------------------------- migration 0005

async def _database_at_0004(url: str, tmp_path) -> None:
    owner = create_engine(url, Settings(database_url=url, data_dir=tmp_path), as_owner=True)
    await upgrade(owner, "0004")
    await owner.dispose()


async def _subject(conn: asyncpg.Connection, number: str) -> uuid.UUID:
    subject_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO subject (id, reference, given_name, family_name, national_number, legal_status, agency_code,"
        " version, created_by, updated_by) VALUES ($1, $2, 'Céline', 'Vandenberghe', $3, 'CONCERN', 'YOUTH', 1, 't', 't')",
        subject_id, f"S-T-{subject_id.hex[:8]}", number,
    )
    return subject_id


async def _migrate(url: str, tmp_path) -> None:
    owner = create_engine(url, Settings(database_url=url, data_dir=tmp_path), as_owner=True)
    try:
        await upgrade(owner)
    finally:
        await owner.dispose()


async def test_the_migration_stores_every_number_in_ascii_digits(server_url, tmp_path):
    async with separate_database(server_url, f"registry_nn_ok_{os.getpid()}") as url:
        # given files registered before, in other digits
        await _database_at_0004(url, tmp_path)
        numbers = [national_number() for _ in range(3)]
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("INSERT INTO agency (code, name) VALUES ('YOUTH', 'Youth')")
            ids = [
                await _subject(conn, numbers[0]),
                await _subject(conn, spelled(numbers[1], SCRIPTS["arabic-indic"])),
                await _subject(conn, spelled(numbers[2], SCRIPTS["full-width"])),
            ]
            # when the database is migrated
            await _migrate(url, tmp_path)
            # then each file holds its number in ASCII digits
            stored = {r["id"]: r["national_number"] for r in await conn.fetch("SELECT id, national_number FROM subject")}
            assert stored == dict(zip(ids, numbers))
            # and the database refuses any other spelling from now on
            with pytest.raises(asyncpg.CheckViolationError):
                await _subject(conn, spelled(national_number(), SCRIPTS["devanagari"]))
        finally:
            await conn.close()


async def test_the_migration_stops_naming_the_files_that_would_collide(server_url, tmp_path):
    async with separate_database(server_url, f"registry_nn_clash_{os.getpid()}") as url:
        # given one child with three files: ASCII, Arabic-Indic and full-width digits
        await _database_at_0004(url, tmp_path)
        number, alone = national_number(), national_number()
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("INSERT INTO agency (code, name) VALUES ('YOUTH', 'Youth')")
            same = sorted(
                [
                    str(await _subject(conn, number)),
                    str(await _subject(conn, spelled(number, SCRIPTS["arabic-indic"]))),
                    str(await _subject(conn, spelled(number, SCRIPTS["full-width"]))),
                ]
            )
            other = await _subject(conn, spelled(alone, SCRIPTS["thai"]))
            # when the database is migrated
            with pytest.raises(Exception) as stopped:
                await _migrate(url, tmp_path)
            # then the migration stops, naming the three files by id and nothing personal
            report = str(stopped.value)
            assert "same child, several files" in report and ", ".join(same) in report
            assert number not in report and "Vandenberghe" not in report and "Céline" not in report
            # and it changed nothing: still at 0004, numbers as they were
            assert await conn.fetchval("SELECT version_num FROM alembic_version") == "0004"
            assert await conn.fetchval("SELECT national_number FROM subject WHERE id = $1", other) == spelled(alone, SCRIPTS["thai"])
        finally:
            await conn.close()
