"""Follow-up notes are append-only: a correction is a new note pointing at the one it corrects,
which stays, marked corrected; only its author corrects it; AGENCY_INTERNAL notes stay in the agency."""

from __future__ import annotations

from helpers import ADD_NOTE, Actor, actor, create_subject, only_code, submitted_subject

CORRECT_NOTE = """
mutation($input: CorrectNoteInput!) {
  correctNote(input: $input) { note { id visibility body author correctsId correctedById } }
}"""

NOTES = """
query($id: UUID!) {
  subject(id: $id) { notes(first: 100) { id visibility body author correctsId correctedById } }
}"""


async def add_note(by, subject_id: str, body: str, visibility: str = "SHARED") -> dict:
    data = await by.ok(ADD_NOTE, {"input": {"subjectId": subject_id, "body": body, "visibility": visibility}})
    return data["addNote"]["note"]


async def notes_seen_by(by, subject_id: str) -> dict[str, dict]:
    subject = (await by.ok(NOTES, {"id": subject_id}))["subject"]
    assert subject is not None
    return {n["id"]: n for n in subject["notes"]}


async def test_notes_are_added_and_listed(world):
    # Given a subject
    subject = await create_subject(world)
    casey = actor(world, "caseworker", name="Casey")

    # When a caseworker adds two notes
    first = await add_note(casey, subject["id"], "Settled in well.")
    second = await add_note(casey, subject["id"], "Visited by family.", "AGENCY_INTERNAL")

    # Then both are listed with their author and visibility, uncorrected
    seen = await notes_seen_by(casey, subject["id"])
    assert {k: (v["body"], v["visibility"], v["author"], v["correctedById"]) for k, v in seen.items()} == {
        first["id"]: ("Settled in well.", "SHARED", "Casey", None),
        second["id"]: ("Visited by family.", "AGENCY_INTERNAL", "Casey", None),
    }


async def test_a_correction_is_a_new_note_and_the_original_stays(world):
    # Given a note
    subject = await create_subject(world)
    casey = actor(world, "caseworker", name="Casey")
    original = await add_note(casey, subject["id"], "Met with J. on Monday.")

    # When its author corrects it
    data = await casey.ok(CORRECT_NOTE, {"input": {"noteId": original["id"], "body": "Met with J. on Tuesday."}})
    correction = data["correctNote"]["note"]

    # Then the correction is a new note pointing at the original, with the same visibility
    assert correction["id"] != original["id"]
    assert (correction["correctsId"], correction["body"], correction["visibility"]) == (
        original["id"],
        "Met with J. on Tuesday.",
        "SHARED",
    )

    # And the original is still there with its text, marked corrected by the new one
    seen = await notes_seen_by(casey, subject["id"])
    assert set(seen) == {original["id"], correction["id"]}
    assert seen[original["id"]]["body"] == "Met with J. on Monday."
    assert seen[original["id"]]["correctedById"] == correction["id"]
    assert seen[correction["id"]]["correctedById"] is None


async def test_a_note_is_corrected_once_then_the_correction_is_corrected(world):
    # Given a corrected note
    subject = await create_subject(world)
    casey = actor(world, "caseworker", name="Casey")
    original = await add_note(casey, subject["id"], "v1")
    await casey.ok(CORRECT_NOTE, {"input": {"noteId": original["id"], "body": "v2"}})

    # When the original is corrected a second time
    body = await casey.gql(CORRECT_NOTE, {"input": {"noteId": original["id"], "body": "v3"}})

    # Then it is refused and no third note exists
    assert only_code(body) == "CONFLICT"
    assert sorted(n["body"] for n in (await notes_seen_by(casey, subject["id"])).values()) == ["v1", "v2"]


async def test_only_the_author_may_correct_a_note(world):
    # Given a note by one caseworker
    subject = await create_subject(world)
    original = await add_note(actor(world, "caseworker", name="Casey"), subject["id"], "Original text.")

    # When a colleague of the same unit tries to correct it
    body = await actor(world, "caseworker", name="Chris").gql(
        CORRECT_NOTE, {"input": {"noteId": original["id"], "body": "Rewritten by someone else."}}
    )

    # Then it is refused and the note stays uncorrected, with no new note
    assert only_code(body) in {"FORBIDDEN", "BAD_USER_INPUT"}
    assert body["data"] is None
    seen = await notes_seen_by(actor(world, "referral_officer"), subject["id"])
    assert list(seen) == [original["id"]]
    assert seen[original["id"]]["correctedById"] is None


async def test_a_namesake_of_the_author_cannot_correct_a_note(world):
    # Given a note by "Casey"
    subject = await create_subject(world)
    issue = world.services.dev_issuer.issue
    casey = Actor(world, "caseworker", issue(role="caseworker", agency=world.agency, unit=world.unit, name="Casey", subject="user-casey-1"))
    namesake = Actor(world, "caseworker", issue(role="caseworker", agency=world.agency, unit=world.unit, name="Casey", subject="user-casey-2"))
    original = await add_note(casey, subject["id"], "Original text.")

    # When another person with the same display name corrects it
    body = await namesake.gql(CORRECT_NOTE, {"input": {"noteId": original["id"], "body": "Rewritten."}})

    # Then it is refused: authorship is the person, not the name
    assert only_code(body) in {"FORBIDDEN", "BAD_USER_INPUT"}
    assert list(await notes_seen_by(casey, subject["id"])) == [original["id"]]


async def test_analysts_cannot_add_agency_internal_notes(world):
    # Given a subject referred to the analysts
    subject, _ = await submitted_subject(world)

    # When an analyst adds an AGENCY_INTERNAL note
    body = await actor(world, "analyst").gql(
        ADD_NOTE, {"input": {"subjectId": subject["id"], "body": "internal?", "visibility": "AGENCY_INTERNAL"}}
    )

    # Then it is refused and no note was written
    assert only_code(body) in {"BAD_USER_INPUT", "FORBIDDEN"}
    assert await notes_seen_by(actor(world, "referral_officer"), subject["id"]) == {}


async def test_analysts_add_shared_notes(world):
    # Given a subject referred to the analysts
    subject, _ = await submitted_subject(world)

    # When an analyst adds a SHARED note
    note = await add_note(actor(world, "analyst", name="Ann"), subject["id"], "Assessment under way.")

    # Then the agency sees it
    seen = await notes_seen_by(actor(world, "referral_officer"), subject["id"])
    assert (seen[note["id"]]["body"], seen[note["id"]]["author"]) == ("Assessment under way.", "Ann")


async def test_analysts_do_not_see_agency_internal_notes(world):
    # Given a referred subject with one shared and one internal note
    subject, _ = await submitted_subject(world)
    casey = actor(world, "caseworker")
    shared = await add_note(casey, subject["id"], "For the analysts.")
    internal = await add_note(casey, subject["id"], "Agency only.", "AGENCY_INTERNAL")

    # When analysts read the subject's notes
    for role in ("analyst", "senior_analyst"):
        seen = await notes_seen_by(actor(world, role), subject["id"])

        # Then only the shared note is there
        assert list(seen) == [shared["id"]], role
        assert internal["id"] not in seen


async def test_a_correction_of_an_internal_note_stays_internal(world):
    # Given an internal note, corrected by its author
    subject, _ = await submitted_subject(world)
    casey = actor(world, "caseworker", name="Casey")
    internal = await add_note(casey, subject["id"], "Agency only.", "AGENCY_INTERNAL")
    await casey.ok(CORRECT_NOTE, {"input": {"noteId": internal["id"], "body": "Agency only, corrected."}})

    # When an analyst reads the notes
    seen = await notes_seen_by(actor(world, "analyst"), subject["id"])

    # Then neither the note nor its correction is visible
    assert seen == {}
