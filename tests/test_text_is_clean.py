"""Text is stored NFC-normalised, and nothing invisible or reordering is stored: each refused
class of character is BAD_USER_INPUT naming the field; long text keeps line breaks and tabs."""

from __future__ import annotations

import pytest

from helpers import (
    ADD_NOTE,
    CREATE_SUBJECT,
    DRAFT_REFERRAL,
    UPDATE_SUBJECT,
    actor,
    codes,
    create_subject,
    draft_referral,
    subject_input,
)

# One example of each class of character a name may not hold.
REFUSED_IN_NAMES = {
    "C0 control (BEL)": "\x07",
    "escape": "\x1b",
    "C1 control (NEL)": "\x85",
    "C1 control (CSI)": "\x9b",
    "delete": "\x7f",
    "line feed": "\n",
    "carriage return": "\r",
    "tab": "\t",
    "line separator": "\u2028",
    "right-to-left override": "\u202e",
    "left-to-right embedding": "\u202a",
    "first-strong isolate": "\u2068",
    "right-to-left isolate": "\u2067",
    "right-to-left mark": "\u200f",
    "arabic letter mark": "\u061c",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "zero-width no-break space (BOM)": "\ufeff",
    "word joiner": "\u2060",
    "soft hyphen": "\u00ad",
    "noncharacter U+FDD0": "\ufdd0",
    "noncharacter U+FFFE": "\ufffe",
    "noncharacter U+1FFFF": "\U0001ffff",
    "private use (BMP)": "\ue000",
    "private use (plane 15)": "\U000f0000",
}


@pytest.mark.parametrize("case", sorted(REFUSED_IN_NAMES))
@pytest.mark.parametrize("field", ["givenName", "familyName"])
async def test_a_name_with_a_refused_character_is_bad_user_input_naming_the_field(world, case, field):
    officer = actor(world, "referral_officer")
    body = await officer.gql(CREATE_SUBJECT, {"input": subject_input(world, **{field: f"Cé{REFUSED_IN_NAMES[case]}line"})})
    assert body["data"] is None and codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["field"] == field


async def test_an_update_with_a_refused_character_changes_nothing(world):
    subject = await create_subject(world, familyName="Vandenberghe")
    officer = actor(world, "referral_officer")
    change = {"id": subject["id"], "expectedVersion": subject["version"], "familyName": "Vanden\u202eberghe"}
    body = await officer.gql(UPDATE_SUBJECT, {"input": change})
    assert codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "familyName"
    data = await officer.ok("query($id: UUID!) { subject(id: $id) { familyName version } }", {"id": subject["id"]})
    assert data["subject"] == {"familyName": "Vandenberghe", "version": subject["version"]}


async def test_names_are_stored_nfc_normalised(world):
    # given a name typed with combining accents (NFD), as some keyboards and systems send it
    subject = await create_subject(world, givenName="Ce\u0301line", familyName="Mu\u0308ller")
    # then it is stored precomposed (NFC): the same string as the name typed with é and ü
    assert (subject["givenName"], subject["familyName"]) == ("C\u00e9line", "M\u00fcller")


async def test_letters_of_every_script_are_kept(world):
    names = {"givenName": "Zoë-Aïcha", "familyName": "Ben Saïd العمراني 王"}
    subject = await create_subject(world, **names)
    assert {k: subject[k] for k in names} == names


async def test_long_text_keeps_line_breaks_and_tabs(world):
    subject = await create_subject(world)
    narrative = "First observation:\n\t- online statements\r\n\t- contacts\n\nSecond paragraph."
    referral = await draft_referral(world, subject["id"], narrative=narrative)
    assert referral["narrative"] == narrative


@pytest.mark.parametrize("case", ["escape", "C1 control (NEL)", "right-to-left override", "zero-width space",
                                  "noncharacter U+FFFE", "private use (BMP)", "first-strong isolate"])
async def test_long_text_refuses_the_rest(world, case):
    subject = await create_subject(world)
    casey = actor(world, "caseworker")
    bad = f"Seen on Monday.\n{REFUSED_IN_NAMES[case]}Left on Tuesday."
    values = {"subjectId": subject["id"], "reason": "RADICALISATION_CONCERN", "narrative": bad, "legalBasis": "art. 7"}
    body = await casey.gql(DRAFT_REFERRAL, {"input": values})
    assert codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "narrative"
    body = await casey.gql(ADD_NOTE, {"input": {"subjectId": subject["id"], "body": bad, "visibility": "SHARED"}})
    assert codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "body"


async def test_short_text_other_than_names_is_checked_too(world):
    subject = await create_subject(world)
    casey = actor(world, "caseworker")
    values = {"subjectId": subject["id"], "reason": "RADICALISATION_CONCERN", "narrative": "ok", "legalBasis": "art.\n7"}
    body = await casey.gql(DRAFT_REFERRAL, {"input": values})
    assert codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "legalBasis"
