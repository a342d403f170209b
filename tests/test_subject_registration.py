"""Registering a subject (and writing records on it) validates every input; a refusal has a code,
reveals nothing about other files, and leaves nothing behind."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from conftest import World
from helpers import (
    ADD_NOTE,
    CREATE_SUBJECT,
    DRAFT_REFERRAL,
    UPDATE_SUBJECT,
    Actor,
    actor,
    codes,
    create_subject,
    ensure_agency,
    national_number,
    only_code,
    refusals,
    subject_input,
    submitted_subject,
)

SUBJECTS = """
query($agency: String) {
  subjects(first: 100, filter: {agency: $agency}) { edges { node { id reference } } }
}"""

RECORDS = """
query($id: UUID!) { subject(id: $id) { version givenName referrals { id } notes(first: 100) { id } } }"""


async def registered(world) -> list[str]:
    """References of the subjects the world's agency holds, as its referral officer sees them."""
    data = await actor(world, "referral_officer").ok(SUBJECTS, {"agency": world.agency})
    return [e["node"]["reference"] for e in data["subjects"]["edges"]]


def with_bad_check_digits(number: str) -> str:
    return number[:9] + f"{(int(number[9:]) + 1) % 100:02d}"


# --------------------------------------------------------------------------- accepted


async def test_caseworker_registers_a_subject_of_their_unit(world):
    # Given a caseworker, and a valid national number written with the usual separators
    number = national_number()
    dotted = f"{number[:2]}.{number[2:4]}.{number[4:6]}-{number[6:9]}.{number[9:]}"

    # When they register a child placed in their unit
    subject = await create_subject(world, by=actor(world, "caseworker"), nationalNumber=dotted, givenName="  Sam ")

    # Then the file exists at version 1, with a pseudonymous reference, trimmed name and normalised number
    assert subject["version"] == 1 and subject["givenName"] == "Sam"
    assert subject["reference"].startswith(f"S-{date.today().year}-")
    data = await actor(world, "referral_officer").ok(
        "query($id: UUID!) { subject(id: $id) { nationalNumber institution } }", {"id": subject["id"]}
    )
    assert data["subject"] == {"nationalNumber": number, "institution": world.unit}
    assert await registered(world) == [subject["reference"]]


# --------------------------------------------------------------------------- refused inputs


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"nationalNumber": with_bad_check_digits(national_number())}, "nationalNumber"),
        ({"nationalNumber": national_number()[:10]}, "nationalNumber"),
        ({"nationalNumber": national_number() + "1"}, "nationalNumber"),
        ({"nationalNumber": "ABCDEFGHIJK"}, "nationalNumber"),
        ({"nationalNumber": ""}, "nationalNumber"),
        ({"givenName": "x" * 300}, "givenName"),
        ({"familyName": "x" * 300}, "familyName"),
        ({"givenName": "   "}, "givenName"),
        ({"givenName": "Al\x00ex"}, "givenName"),
        ({"familyName": "\x00"}, "familyName"),
        ({"institution": "U" * 100}, "institution"),
        ({"dateOfBirth": (date.today() + timedelta(days=1)).isoformat()}, "dateOfBirth"),
        ({"dateOfBirth": "1950-01-01"}, "dateOfBirth"),
    ],
)
async def test_invalid_registration_is_bad_input_and_writes_nothing(world, overrides, field):
    # Given a referral officer (who may register subjects of any unit of the agency)
    officer = actor(world, "referral_officer")

    # When they register a subject with one invalid field
    body = await officer.gql(CREATE_SUBJECT, {"input": subject_input(world, **overrides)})

    # Then it is refused as bad input naming the field, and no file exists
    assert only_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"].get("field") == field
    assert body["data"] is None
    assert await registered(world) == []


async def test_caseworker_cannot_register_a_subject_of_another_unit(world):
    # Given a caseworker of one unit
    casey = actor(world, "caseworker")

    # When they register a child placed in another unit
    body = await casey.gql(CREATE_SUBJECT, {"input": subject_input(world, institution=f"{world.unit}-OTHER")})

    # Then it is refused and nothing was registered
    assert only_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"].get("field") == "institution"
    assert await registered(world) == []


async def test_caller_of_an_unregistered_agency_cannot_register(world):
    # Given a referral officer whose agency the registry does not know
    stranger = Actor(world, "referral_officer", world.token("referral_officer", agency=f"NOPE-{uuid.uuid4().hex[:6]}"))

    # When they register a subject
    response = await world.client.post(
        "/graphql",
        json={"query": CREATE_SUBJECT, "variables": {"input": subject_input(world)}},
        headers={"Authorization": f"Bearer {stranger.token}", **stranger.headers},
    )

    # Then their token is refused (the role needs a registered youth agency) and nothing was written
    assert response.status_code == 401
    assert "the agency is not registered" in response.json()["errors"][0]["message"]
    assert await registered(world) == []


@pytest.mark.parametrize("role", ["analyst", "senior_analyst", "dpo", "partner", "admin"])
async def test_roles_outside_the_agency_cannot_register(world, role):
    # When a role that does not register subjects tries to
    body = await actor(world, role).gql(CREATE_SUBJECT, {"input": subject_input(world)})

    # Then it is forbidden and nothing was written
    assert only_code(body) in refusals(role)
    assert await registered(world) == []


# --------------------------------------------------------------------------- duplicates


async def test_a_known_national_number_is_a_conflict_that_reveals_nothing(world, client, services):
    # Given a child already registered by this agency
    number = national_number()
    existing = await create_subject(world, nationalNumber=number, givenName="Robin", familyName="Hidden")

    # When the same agency, and another agency, register the same number (written differently)
    other = World(client, services)
    await ensure_agency(other, other.agency)
    spaced = f"{number[:6]} {number[6:9]} {number[9:]}"
    bodies = [
        await actor(world, "referral_officer").gql(CREATE_SUBJECT, {"input": subject_input(world, nationalNumber=number)}),
        await actor(other, "referral_officer").gql(CREATE_SUBJECT, {"input": subject_input(other, nationalNumber=spaced)}),
    ]

    for body in bodies:
        # Then each is a CONFLICT
        assert only_code(body) == "CONFLICT"
        assert body["data"] is None
        # And nothing in the error points at the existing file
        text = repr(body["errors"])
        for secret in (existing["id"], existing["reference"], world.agency, "Robin", "Hidden", number):
            assert secret not in text, (secret, body)
        assert set(body["errors"][0]["extensions"]) == {"code"}

    # And neither agency holds a second file
    assert await registered(world) == [existing["reference"]]
    assert await registered(other) == []


async def test_changing_a_number_to_a_known_one_is_a_conflict(world):
    # Given two files
    first_number = national_number()
    await create_subject(world, nationalNumber=first_number)
    second = await create_subject(world)

    # When the second file's number is changed to the first's
    officer = actor(world, "referral_officer")
    body = await officer.gql(
        UPDATE_SUBJECT, {"input": {"id": second["id"], "expectedVersion": 1, "nationalNumber": first_number}}
    )

    # Then it is a conflict and the second file is unchanged
    assert only_code(body) == "CONFLICT"
    assert (await officer.ok(RECORDS, {"id": second["id"]}))["subject"]["version"] == 1


# --------------------------------------------------------------------------- records on a subject


async def test_oversized_narrative_is_bad_input_and_writes_nothing(world):
    # Given a subject
    subject = await create_subject(world)
    officer = actor(world, "referral_officer")

    # When a referral with a 25,000-character narrative is drafted
    body = await officer.gql(
        DRAFT_REFERRAL,
        {
            "input": {
                "subjectId": subject["id"],
                "reason": "RADICALISATION_CONCERN",
                "narrative": "n" * 25_000,
                "legalBasis": "Decree, art. 7",
            }
        },
    )

    # Then it is refused and the subject has no referral
    assert only_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"].get("field") == "narrative"
    assert (await officer.ok(RECORDS, {"id": subject["id"]}))["subject"]["referrals"] == []


async def test_oversized_empty_or_nul_note_is_bad_input_and_writes_nothing(world):
    # Given a subject
    subject = await create_subject(world)
    casey = actor(world, "caseworker")

    # When notes of 25,000 characters, of only blanks and with a NUL character are added
    bodies = [
        await casey.gql(ADD_NOTE, {"input": {"subjectId": subject["id"], "body": text}})
        for text in ("b" * 25_000, "   ", "before\x00after")
    ]

    # Then all are refused and the subject has no note
    assert [codes(b) for b in bodies] == [["BAD_USER_INPUT"]] * 3
    assert (await casey.ok(RECORDS, {"id": subject["id"]}))["subject"]["notes"] == []


async def test_oversized_update_is_bad_input_and_changes_nothing(world):
    # Given a subject
    subject = await create_subject(world, givenName="Alex")
    officer = actor(world, "referral_officer")

    # When its given name is changed to 300 characters
    body = await officer.gql(
        UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "givenName": "x" * 300}}
    )

    # Then it is refused and the file is unchanged
    assert only_code(body) == "BAD_USER_INPUT"
    assert (await officer.ok(RECORDS, {"id": subject["id"]}))["subject"]["givenName"] == "Alex"
    assert (await officer.ok(RECORDS, {"id": subject["id"]}))["subject"]["version"] == 1


@pytest.mark.parametrize(
    "role, mutation, make_input",
    [
        ("referral_officer", UPDATE_SUBJECT, lambda i: {"id": i, "expectedVersion": 1, "givenName": "X"}),
        ("caseworker", ADD_NOTE, lambda i: {"subjectId": i, "body": "x"}),
        (
            "caseworker",
            DRAFT_REFERRAL,
            lambda i: {"subjectId": i, "reason": "RADICALISATION_CONCERN", "narrative": "n", "legalBasis": "b"},
        ),
        (
            "referral_officer",
            "mutation($input: ReferralTransitionInput!) { submitReferral(input: $input) { referral { id } } }",
            lambda i: {"id": i, "expectedVersion": 1},
        ),
        (
            "caseworker",
            "mutation($input: CorrectNoteInput!) { correctNote(input: $input) { note { id } } }",
            lambda i: {"noteId": i, "body": "x"},
        ),
        (
            "analyst",
            "mutation($input: DraftAssessmentInput!) { draftAssessment(input: $input) { assessment { id } } }",
            lambda i: {"subjectId": i, "level": "LOW", "summary": "s", "rationale": "r"},
        ),
        (
            "senior_analyst",
            "mutation($input: ValidateAssessmentInput!) { validateAssessment(input: $input) { assessment { id } } }",
            lambda i: {"id": i, "expectedVersion": 1},
        ),
    ],
)
async def test_unknown_ids_are_not_found(world, role, mutation, make_input):
    # When a mutation names an id that exists nowhere
    body = await actor(world, role).gql(mutation, {"input": make_input(str(uuid.uuid4()))})

    # Then it is NOT_FOUND
    assert only_code(body) == "NOT_FOUND"
    assert body["data"] is None


async def test_unknown_referral_on_a_note_is_not_found_and_writes_nothing(world):
    # Given a subject the caseworker can see
    subject = await create_subject(world)
    casey = actor(world, "caseworker")

    # When a note names a referral that does not exist
    body = await casey.gql(
        ADD_NOTE, {"input": {"subjectId": subject["id"], "body": "x", "referralId": str(uuid.uuid4())}}
    )

    # Then it is NOT_FOUND and no note was written
    assert only_code(body) == "NOT_FOUND"
    assert (await casey.ok(RECORDS, {"id": subject["id"]}))["subject"]["notes"] == []


async def test_a_referral_of_another_subject_is_bad_input(world):
    # Given two subjects, the first with a submitted referral
    first, referral = await submitted_subject(world)
    second = await create_subject(world)
    casey = actor(world, "caseworker")

    # When a note on the second subject names the first subject's referral
    body = await casey.gql(
        ADD_NOTE, {"input": {"subjectId": second["id"], "body": "x", "referralId": referral["id"]}}
    )

    # Then it is refused and no note was written on either
    assert only_code(body) == "BAD_USER_INPUT"
    for subject in (first, second):
        assert (await casey.ok(RECORDS, {"id": subject["id"]}))["subject"]["notes"] == []


# --------------------------------------------------------------------------- malformed ids


@pytest.mark.parametrize(
    "query, variables",
    [
        ("query($id: UUID!) { subject(id: $id) { id } }", {"id": "not-a-uuid"}),
        ('query { subject(id: "not-a-uuid") { id } }', {}),
        ("query($id: UUID!) { referral(id: $id) { id } }", {"id": "1234"}),
        (UPDATE_SUBJECT, {"input": {"id": "zzz", "expectedVersion": 1, "givenName": "X"}}),
        (ADD_NOTE, {"input": {"subjectId": "'; DROP TABLE subject; --", "body": "x"}}),
    ],
)
async def test_a_malformed_uuid_is_an_error_with_a_code_never_a_500(world, query, variables):
    # When a request carries an id that is not a UUID
    caller = actor(world, "referral_officer")
    response = await world.client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {caller.token}", **caller.headers},
    )

    # Then the answer is a GraphQL error with a client-side code, not a server failure
    assert response.status_code < 500, response.text
    body = response.json()
    assert body.get("errors"), body
    assert all(c == "BAD_USER_INPUT" for c in codes(body)), body
    assert not body.get("data")


async def test_caseworker_cannot_move_a_file_out_of_their_unit(world):
    # Given a subject of the caseworker's unit
    casey = actor(world, "caseworker")
    subject = await create_subject(world, by=casey)

    # When the caseworker moves it to another unit
    body = await casey.gql(
        UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "institution": f"{world.unit}-OTHER"}}
    )

    # Then it is refused and the file stays where it was, at its version
    assert only_code(body) == "BAD_USER_INPUT"
    data = await casey.ok("query($id: UUID!) { subject(id: $id) { institution version } }", {"id": subject["id"]})
    assert data["subject"] == {"institution": world.unit, "version": 1}
