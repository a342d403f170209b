"""A demo-like case for access tests: one subject with every kind of linked record, each field filled.

Built through POST /graphql like the front-ends would: a subject in the world's unit, changed
once; a referral drafted, submitted, acknowledged and closed; a SHARED note on the referral and
its correction; an AGENCY_INTERNAL note; a validated threat assessment on the referral.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from conftest import World
from helpers import (
    ADD_NOTE,
    UPDATE_SUBJECT,
    actor,
    create_subject,
    draft_assessment,
    draft_referral,
    step,
    validate_assessment,
)

CORRECT_NOTE = """
mutation($input: CorrectNoteInput!) { correctNote(input: $input) { note { id } } }"""

ROLES = ("caseworker", "referral_officer", "analyst", "senior_analyst", "dpo", "partner", "admin")


@dataclass
class Case:
    subject: dict
    referral_id: str
    shared_note_id: str
    correction_id: str
    internal_note_id: str
    assessment_id: str
    national_number: str


async def build_case(world: World) -> Case:
    caseworker = actor(world, "caseworker")
    officer = actor(world, "referral_officer")
    analyst, senior = actor(world, "analyst"), actor(world, "senior_analyst")

    subject = await create_subject(world, by=caseworker, givenName="Robin")
    data = await officer.ok(
        UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "legalStatus": "SUSPECTED"}}
    )
    subject = data["updateSubject"]["subject"]
    number = (await officer.ok("query($id: UUID!) { subject(id: $id) { nationalNumber } }", {"id": subject["id"]}))[
        "subject"
    ]["nationalNumber"]

    referral = await draft_referral(world, subject["id"], by=caseworker)
    referral = await step(world, "submit", referral, officer)
    referral = await step(world, "acknowledge", referral, analyst)
    referral = await step(world, "close", referral, officer)

    shared = await caseworker.ok(
        ADD_NOTE,
        {"input": {"subjectId": subject["id"], "referralId": referral["id"], "body": "Calm week.", "visibility": "SHARED"}},
    )
    shared_id = shared["addNote"]["note"]["id"]
    correction = await caseworker.ok(CORRECT_NOTE, {"input": {"noteId": shared_id, "body": "Calm week, one incident."}})
    internal = await caseworker.ok(
        ADD_NOTE, {"input": {"subjectId": subject["id"], "body": "Internal only.", "visibility": "AGENCY_INTERNAL"}}
    )

    assessment = await draft_assessment(
        world,
        subject["id"],
        analyst,
        referralId=referral["id"],
        validUntil=(date.today() + timedelta(days=180)).isoformat(),
    )
    assessment = await validate_assessment(assessment, senior)
    return Case(
        subject=subject,
        referral_id=referral["id"],
        shared_note_id=shared_id,
        correction_id=correction["correctNote"]["note"]["id"],
        internal_note_id=internal["addNote"]["note"]["id"],
        assessment_id=assessment["id"],
        national_number=number,
    )


def forbidden_fields(body: dict) -> list[str]:
    """`extensions.field` of every FORBIDDEN error, in order (duplicates kept, to count them)."""
    return [
        e["extensions"].get("field")
        for e in body.get("errors") or []
        if e.get("extensions", {}).get("code") == "FORBIDDEN"
    ]
