"""Every consultation of personal data is one audit event naming the records returned and the fields
disclosed, with who asked, why, in which operation and request; every change, partner lookup,
refusal and break-glass access is an event too (DESIGN section 6)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from audit_support import by_action, call, events_of
from conftest import national_number
from helpers import (
    ADD_NOTE,
    CREATE_SUBJECT,
    UPDATE_SUBJECT,
    actor,
    codes,
    create_subject,
    draft_referral,
    subject_input,
    transition,
)

WHY = "Monthly case review of the unit's placements, as agreed with the judge."
ME = "query { me { id name agency roles } }"
LIST = """
query ListUnit($unit: String!) {
  subjects(first: 20, filter: {institution: $unit}) { edges { node { id givenName familyName } } }
}"""


async def me(world, token: str) -> dict:
    return (await world.ok(token, ME))["me"]


async def test_a_consultation_of_n_records_is_one_event_naming_them_and_their_fields(world, services):
    # Given three subjects in the caseworker's unit
    subjects = [await create_subject(world, givenName=f"Kid{i}") for i in range(3)]
    caseworker = world.token("caseworker")
    who = await me(world, caseworker)

    # When the caseworker lists them, with a justification, in a named operation
    body, rid = await call(world, caseworker, LIST, {"unit": world.unit}, operation="ListUnit", **{"Registry-Justification": WHY})
    assert "errors" not in body and len(body["data"]["subjects"]["edges"]) == 3

    # Then the request wrote exactly one event: the consultation of those three records and fields
    (event,) = await events_of(services, rid)
    assert event.action == "records.consulted" and event.outcome == "ok"
    assert event.records == sorted(
        ({"type": "Subject", "id": s["id"], "fields": ["familyName", "givenName", "id"]} for s in subjects),
        key=lambda r: r["id"],
    )
    assert sorted(map(str, event.subject_ids)) == sorted(s["id"] for s in subjects)
    # And who asked, why, in which operation and request, and when
    assert (event.actor_id, event.actor_name, event.actor_agency, event.actor_roles) == (
        who["id"], who["name"], who["agency"], who["roles"]
    )
    assert (event.purpose, event.justification, event.operation, event.request_id) == ("CASE_SUPERVISION", WHY, "ListUnit", rid)
    assert event.break_glass is False
    assert abs(datetime.now(timezone.utc) - event.occurred_at) < timedelta(minutes=1)


async def test_a_forbidden_field_is_not_listed_as_disclosed(world, services):
    # Given a subject, and a caseworker (who may not read national numbers)
    subject = await create_subject(world)
    caseworker = world.token("caseworker")

    # When the caseworker asks for the name and the national number
    body, rid = await call(world, caseworker, "query($id: UUID!) { subject(id: $id) { id givenName nationalNumber } }", {"id": subject["id"]})
    assert body["data"]["subject"]["givenName"] == "Alex" and body["data"]["subject"]["nationalNumber"] is None
    assert codes(body) == ["FORBIDDEN"]

    # Then the consultation lists the fields returned, not the refused one
    events = by_action(await events_of(services, rid))
    (consulted,) = events.pop("records.consulted")
    assert consulted.records == [{"type": "Subject", "id": subject["id"], "fields": ["givenName", "id"]}]
    # And the refusal is an event of its own
    (refused,) = events.pop("access.refused")
    assert refused.outcome == "refused"
    assert refused.detail == {"refusals": [{"code": "FORBIDDEN", "field": "Subject.nationalNumber"}]}
    assert events == {}


async def test_nested_records_are_each_named_with_their_own_fields(world, services):
    # Given a subject with a referral and a shared note
    subject = await create_subject(world)
    referral = await draft_referral(world, subject["id"])
    note = await actor(world, "caseworker").ok(ADD_NOTE, {"input": {"subjectId": subject["id"], "body": "Seen today.", "visibility": "SHARED"}})

    # When the caseworker reads the subject with its referrals and notes
    body, rid = await call(
        world,
        world.token("caseworker"),
        "query($id: UUID!) { subject(id: $id) { reference referrals { id narrative } notes(first: 5) { body } } }",
        {"id": subject["id"]},
    )
    assert "errors" not in body

    # Then one event names the three records, each with the fields returned from it
    (event,) = await events_of(services, rid)
    assert {(r["type"], r["id"]): r["fields"] for r in event.records} == {
        ("Subject", subject["id"]): ["notes", "reference", "referrals"],
        ("Referral", referral["id"]): ["id", "narrative"],
        ("FollowUpNote", note["addNote"]["note"]["id"]): ["body"],
    }
    assert [str(s) for s in event.subject_ids] == [subject["id"]]


async def test_a_request_that_returns_no_personal_data_writes_no_consultation(world, services):
    _, rid = await call(world, world.token("caseworker"), ME, purpose=None)
    assert await events_of(services, rid) == []


async def test_a_change_is_an_event_with_the_versions_before_and_after(world, services):
    officer = world.token("referral_officer")

    # When a subject is created, then updated
    created, created_rid = await call(world, officer, CREATE_SUBJECT, {"input": subject_input(world)}, operation=None)
    subject = created["data"]["createSubject"]["subject"]
    updated, updated_rid = await call(
        world, officer, UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "givenName": "Sam"}}
    )
    assert updated["data"]["updateSubject"]["subject"]["version"] == 2

    # Then each request wrote one change event, naming the record and its versions,
    # and one consultation for the record the payload returned
    for rid, action, before, after in ((created_rid, "subject.created", None, 1), (updated_rid, "subject.updated", 1, 2)):
        events = by_action(await events_of(services, rid))
        (change,) = events.pop(action)
        assert change.records == [{"type": "Subject", "id": subject["id"]}]
        assert change.detail == {"versionBefore": before, "versionAfter": after}
        assert [str(s) for s in change.subject_ids] == [subject["id"]]
        assert change.purpose == "CASE_SUPERVISION" and change.request_id == rid
        (consulted,) = events.pop("records.consulted")
        assert [r["id"] for r in consulted.records] == [subject["id"]]
        assert events == {}


async def test_a_workflow_step_and_a_note_are_change_events(world, services):
    subject = await create_subject(world)
    referral = await draft_referral(world, subject["id"], by=actor(world, "referral_officer"))
    officer = world.token("referral_officer")

    submitted, rid = await call(world, officer, transition("submit"), {"input": {"id": referral["id"], "expectedVersion": 1}})
    assert submitted["data"]["submitReferral"]["referral"]["status"] == "SUBMITTED"
    (change,) = by_action(await events_of(services, rid))["referral.submitted"]
    assert change.records == [{"type": "Referral", "id": referral["id"]}]
    assert change.detail == {"versionBefore": 1, "versionAfter": 2}
    assert [str(s) for s in change.subject_ids] == [subject["id"]]

    added, rid = await call(world, world.token("caseworker"), ADD_NOTE, {"input": {"subjectId": subject["id"], "body": "Met."}})
    note = added["data"]["addNote"]["note"]
    (change,) = by_action(await events_of(services, rid))["note.added"]
    assert change.records == [{"type": "FollowUpNote", "id": note["id"]}]
    assert [str(s) for s in change.subject_ids] == [subject["id"]]


async def test_a_refused_change_writes_no_change_event(world, services):
    subject = await create_subject(world)
    body, rid = await call(
        world, world.token("referral_officer"), UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 7, "givenName": "X"}}
    )
    assert codes(body) == ["CONFLICT"]
    assert await events_of(services, rid) == []


LOOKUP = "query($n: String!) { lookupSubject(nationalNumber: $n) { outcome contactAgency } }"


@pytest.mark.parametrize("known", [True, False])
async def test_a_partner_lookup_is_an_event_with_its_outcome(world, services, known):
    number = national_number()
    subject = await create_subject(world, nationalNumber=number) if known else None
    partner = world.token("partner", agency="POLICE", name=f"partner {uuid.uuid4().hex[:8]}")

    body, rid = await call(world, partner, LOOKUP, {"n": number})
    assert body["data"]["lookupSubject"]["outcome"] == ("HIT" if known else "NO_HIT")

    (event,) = await events_of(services, rid)
    assert event.action == "lookup.performed" and event.purpose == "LOOKUP" and event.actor_agency == "POLICE"
    assert event.detail == {"outcome": "HIT" if known else "NO_HIT"}
    assert [str(s) for s in event.subject_ids] == ([subject["id"]] if known else [])
    assert event.records == []


async def test_a_request_without_purpose_is_a_refusal_event(world, services):
    subject = await create_subject(world)
    body, rid = await call(world, world.token("caseworker"), "query($id: UUID!) { subject(id: $id) { givenName } }", {"id": subject["id"]}, purpose=None)
    assert body["data"] is None and codes(body) == ["PURPOSE_REQUIRED"]

    (event,) = await events_of(services, rid)
    assert event.action == "access.refused" and event.outcome == "refused"
    assert event.detail == {"refusals": [{"code": "PURPOSE_REQUIRED", "field": None}]}
    assert event.purpose is None and event.records == []


async def test_a_forbidden_query_is_a_refusal_event(world, services):
    partner = world.token("partner", agency="POLICE", name=f"partner {uuid.uuid4().hex[:8]}")
    body, rid = await call(world, partner, "query Browse { subjects { edges { node { id } } } }", operation="Browse")
    assert codes(body) == ["FORBIDDEN"]

    (event,) = await events_of(services, rid)
    assert (event.action, event.outcome, event.operation) == ("access.refused", "refused", "Browse")
    assert event.detail == {"refusals": [{"code": "FORBIDDEN", "field": "Query.subjects"}]}


async def test_break_glass_access_is_flagged_in_its_event(world, services):
    # Given a subject the analysts cannot normally see (its only referral is a draft)
    subject = await create_subject(world)
    await draft_referral(world, subject["id"])
    why = "Imminent threat reported by the partner service this morning; need the file now."

    # When an analyst breaks the glass
    body, rid = await call(
        world, world.token("analyst"), "query($id: UUID!) { subject(id: $id) { id givenName } }", {"id": subject["id"]},
        purpose="BREAK_GLASS", **{"Registry-Justification": why},
    )
    assert body["data"]["subject"]["givenName"] == "Alex"

    # Then the consultation is flagged, with the purpose and the written reason
    (event,) = await events_of(services, rid)
    assert event.action == "records.consulted" and event.break_glass is True
    assert (event.purpose, event.justification) == ("BREAK_GLASS", why)
    assert event.records == [{"type": "Subject", "id": subject["id"], "fields": ["givenName", "id"]}]


async def test_a_batch_writes_the_events_of_each_operation(world, services):
    subject = await create_subject(world)
    token = world.token("caseworker")
    response = await world.client.post(
        "/graphql",
        json=[
            {"query": "query A($id: UUID!) { subject(id: $id) { givenName } }", "variables": {"id": subject["id"]}, "operationName": "A"},
            {"query": "query B($id: UUID!) { subject(id: $id) { familyName } }", "variables": {"id": subject["id"]}, "operationName": "B"},
        ],
        headers={"Authorization": f"Bearer {token}", "Registry-Purpose": "CASE_SUPERVISION"},
    )
    events = await events_of(services, response.headers["x-request-id"])
    assert [(e.action, e.operation, e.records[0]["fields"]) for e in events] == [
        ("records.consulted", "A", ["givenName"]),
        ("records.consulted", "B", ["familyName"]),
    ]
