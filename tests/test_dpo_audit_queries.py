"""The data-protection officer questions the audit trail: events by subject, actor, agency, purpose,
operation, action and time, page by page; reviews break-glass access (the review itself an event);
no other role may do either (DESIGN section 6)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from audit_support import call
from conftest import national_number
from helpers import CREATE_SUBJECT, UPDATE_SUBJECT, codes, create_subject, subject_input

AUDIT = """
query Audit($first: Int!, $after: String, $filter: AuditEventFilter) {
  auditEvents(first: $first, after: $after, filter: $filter) {
    edges { cursor node {
      id sequence occurredAt action outcome actorId actorName actorAgency actorRoles purpose justification
      operation requestId breakGlass subjectIds records { type id fields } detail reviewed
    } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""
REVIEW = """
mutation Review($input: ReviewBreakGlassInput!) { reviewBreakGlass(input: $input) { event { id breakGlass reviewed } } }"""
READ = "query {op}($id: UUID!) {{ subject(id: $id) {{ id givenName }} }}"
WHY = "Imminent threat reported by the partner service this morning; need the file now."


@dataclass
class Activity:
    subject: dict
    other: dict
    officer: str
    caseworker: str
    created: str  # request ids
    updated: str
    read: str
    other_created: str
    lookup: str
    referral_purpose: str
    operation: str


async def actor_id(world, token: str) -> str:
    return (await world.ok(token, "query { me { id } }"))["me"]["id"]


@pytest.fixture
async def activity(world) -> Activity:
    """Two subjects, created, read, changed and looked up by several callers."""
    officer, caseworker = world.token("referral_officer"), world.token("caseworker")
    number = national_number()
    body, created = await call(world, officer, CREATE_SUBJECT, {"input": subject_input(world, nationalNumber=number)})
    subject = body["data"]["createSubject"]["subject"]
    body, other_created = await call(world, officer, CREATE_SUBJECT, {"input": subject_input(world)})
    other = body["data"]["createSubject"]["subject"]
    operation = f"Read{uuid.uuid4().hex[:8]}"
    _, read = await call(world, caseworker, READ.format(op=operation), {"id": subject["id"]}, operation=operation)
    _, updated = await call(world, officer, UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "familyName": "Other"}})
    _, referral_purpose = await call(world, officer, READ.format(op="Q"), {"id": subject["id"]}, purpose="REFERRAL")
    partner = world.token("partner", agency="POLICE", name=f"partner {uuid.uuid4().hex[:8]}")
    _, lookup = await call(world, partner, "query($n: String!) { lookupSubject(nationalNumber: $n) { outcome } }", {"n": number})
    return Activity(subject, other, officer, caseworker, created, updated, read, other_created, lookup, referral_purpose, operation)


async def events(world, dpo: str, first: int = 100, after: str | None = None, **filter) -> list[dict]:
    data = await world.ok(dpo, AUDIT, {"first": first, "after": after, "filter": filter})
    return [edge["node"] for edge in data["auditEvents"]["edges"]]


def request_ids(found: list[dict]) -> set[str]:
    return {e["requestId"] for e in found}


async def test_events_by_subject(world, activity):
    found = await events(world, world.token("dpo"), subjectId=activity.subject["id"])
    assert all(activity.subject["id"] in e["subjectIds"] for e in found)
    assert {activity.created, activity.read, activity.updated, activity.lookup} <= request_ids(found)
    assert activity.other_created not in request_ids(found)


async def test_events_by_actor(world, activity):
    caseworker = await actor_id(world, activity.caseworker)
    found = await events(world, world.token("dpo"), actorId=caseworker)
    assert request_ids(found) == {activity.read}
    assert [(e["action"], e["actorId"], e["actorRoles"]) for e in found] == [("records.consulted", caseworker, ["caseworker"])]


async def test_events_by_agency(world, activity):
    dpo = world.token("dpo")
    own = await events(world, dpo, agency=world.agency)
    assert {e["actorAgency"] for e in own} == {world.agency}
    assert {activity.created, activity.read, activity.updated} <= request_ids(own) and activity.lookup not in request_ids(own)
    police = await events(world, dpo, agency="POLICE", subjectId=activity.subject["id"])
    assert [(e["requestId"], e["action"], e["detail"]) for e in police] == [(activity.lookup, "lookup.performed", {"outcome": "HIT"})]


async def test_events_by_purpose(world, activity):
    officer = await actor_id(world, activity.officer)
    found = await events(world, world.token("dpo"), actorId=officer, purpose="REFERRAL")
    assert request_ids(found) == {activity.referral_purpose}
    assert request_ids(await events(world, world.token("dpo"), actorId=officer, purpose="CASE_SUPERVISION")) == {
        activity.created, activity.other_created, activity.updated
    }


async def test_events_by_operation(world, activity):
    (event,) = await events(world, world.token("dpo"), operation=activity.operation)
    assert (event["requestId"], event["operation"]) == (activity.read, activity.operation)
    assert event["records"] == [{"type": "Subject", "id": activity.subject["id"], "fields": ["givenName", "id"]}]


async def test_events_by_action(world, activity):
    (event,) = await events(world, world.token("dpo"), action="subject.updated", subjectId=activity.subject["id"])
    assert event["requestId"] == activity.updated
    assert event["detail"] == {"versionBefore": 1, "versionAfter": 2}
    assert event["records"] == [{"type": "Subject", "id": activity.subject["id"], "fields": []}]


async def test_events_by_time_range(world, activity):
    dpo, subject = world.token("dpo"), activity.subject["id"]
    (created,) = await events(world, dpo, action="subject.created", subjectId=subject)
    (updated,) = await events(world, dpo, action="subject.updated", subjectId=subject)

    since = request_ids(await events(world, dpo, subjectId=subject, since=updated["occurredAt"]))
    until = request_ids(await events(world, dpo, subjectId=subject, until=updated["occurredAt"]))
    between = request_ids(await events(world, dpo, subjectId=subject, since=created["occurredAt"], until=updated["occurredAt"]))

    assert activity.updated in since and activity.created not in since
    assert activity.created in until and activity.updated not in until
    assert activity.created in between and activity.read in between and activity.updated not in between


async def test_events_come_newest_first_page_by_page(world):
    # Given five consultations by one caseworker
    subject = await create_subject(world)
    caseworker = world.token("caseworker", name=f"paged {uuid.uuid4().hex[:6]}")
    rids = [(await call(world, caseworker, READ.format(op="Q"), {"id": subject["id"]}))[1] for _ in range(5)]
    dpo, who = world.token("dpo"), await actor_id(world, caseworker)

    # When the DPO pages through them two at a time
    pages, after = [], None
    while True:
        data = await world.ok(dpo, AUDIT, {"first": 2, "after": after, "filter": {"actorId": who}})
        page = data["auditEvents"]
        pages.append(([e["node"] for e in page["edges"]], page["pageInfo"]))
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    # Then every event comes once, newest first, in pages of 2, 2 and 1
    assert [len(nodes) for nodes, _ in pages] == [2, 2, 1]
    seen = [e for nodes, _ in pages for e in nodes]
    assert [e["requestId"] for e in seen] == list(reversed(rids))
    assert [e["sequence"] for e in seen] == sorted((e["sequence"] for e in seen), reverse=True)
    assert [info["hasPreviousPage"] for _, info in pages] == [False, True, True]


async def test_an_invalid_cursor_is_bad_user_input(world):
    body = await world.gql(world.token("dpo"), AUDIT, {"first": 2, "after": "not-a-cursor", "filter": {}})
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_the_dpo_s_own_consultations_are_audited(world, activity):
    dpo = world.token("dpo")
    body, rid = await call(world, dpo, AUDIT, {"first": 5, "filter": {"operation": activity.operation}})
    (shown,) = [e["node"] for e in body["data"]["auditEvents"]["edges"]]
    (event,) = [e for e in await events(world, dpo, actorId=await actor_id(world, dpo)) if e["requestId"] == rid]
    assert event["action"] == "records.consulted" and event["purpose"] == "DATA_PROTECTION_AUDIT"
    assert [(r["type"], r["id"]) for r in event["records"]] == [("AuditEvent", shown["id"])]


async def test_break_glass_access_awaits_review_until_the_dpo_reviews_it(world):
    # Given a break-glass read of a subject the analyst cannot normally see
    subject = await create_subject(world)
    analyst = world.token("analyst")
    body, glass = await call(
        world, analyst, READ.format(op="Urgent"), {"id": subject["id"]}, purpose="BREAK_GLASS", **{"Registry-Justification": WHY}
    )
    assert body["data"]["subject"]["givenName"]
    dpo = world.token("dpo")

    # Then it awaits review
    (awaiting,) = await events(world, dpo, awaitingReview=True, subjectId=subject["id"])
    assert (awaiting["requestId"], awaiting["breakGlass"], awaiting["reviewed"]) == (glass, True, False)
    assert (awaiting["purpose"], awaiting["justification"]) == ("BREAK_GLASS", WHY)

    # When the DPO reviews it
    body, review = await call(world, dpo, REVIEW, {"input": {"eventId": awaiting["id"], "note": "Confirmed with the unit head."}})
    assert body["data"]["reviewBreakGlass"]["event"] == {"id": awaiting["id"], "breakGlass": True, "reviewed": True}

    # Then it no longer awaits review, and the review is an event of its own
    assert await events(world, dpo, awaitingReview=True, subjectId=subject["id"]) == []
    (flagged,) = await events(world, dpo, breakGlass=True, subjectId=subject["id"])
    assert flagged["reviewed"] is True
    (reviewed,) = await events(world, dpo, action="break_glass.reviewed", subjectId=subject["id"])
    assert reviewed["requestId"] == review and reviewed["actorRoles"] == ["dpo"]
    assert reviewed["detail"] == {"reviewedEvent": awaiting["id"], "note": "Confirmed with the unit head."}
    assert reviewed["breakGlass"] is False and reviewed["reviewed"] is None

    # And a second review is a conflict that writes nothing
    again = await world.gql(dpo, REVIEW, {"input": {"eventId": awaiting["id"], "note": "Again."}})
    assert again["data"] is None and codes(again) == ["CONFLICT"]
    assert len(await events(world, dpo, action="break_glass.reviewed", subjectId=subject["id"])) == 1


async def test_only_break_glass_events_can_be_reviewed(world, activity):
    dpo = world.token("dpo")
    (ordinary,) = await events(world, dpo, operation=activity.operation)
    body = await world.gql(dpo, REVIEW, {"input": {"eventId": ordinary["id"], "note": "Nothing to review."}})
    assert codes(body) == ["NOT_FOUND"]
    body = await world.gql(dpo, REVIEW, {"input": {"eventId": str(uuid.uuid4()), "note": "Nothing to review."}})
    assert codes(body) == ["NOT_FOUND"]


async def test_a_review_needs_a_note(world):
    subject = await create_subject(world)
    await call(world, world.token("analyst"), READ.format(op="Q"), {"id": subject["id"]}, purpose="BREAK_GLASS", **{"Registry-Justification": WHY})
    dpo = world.token("dpo")
    (awaiting,) = await events(world, dpo, awaitingReview=True, subjectId=subject["id"])
    body = await world.gql(dpo, REVIEW, {"input": {"eventId": awaiting["id"], "note": "  "}})
    assert codes(body) == ["BAD_USER_INPUT"]
    assert (await events(world, dpo, awaitingReview=True, subjectId=subject["id"]))[0]["id"] == awaiting["id"]


@pytest.mark.parametrize("role", ["caseworker", "referral_officer", "analyst", "senior_analyst", "partner", "admin"])
async def test_no_other_role_may_read_or_review_the_trail(world, role):
    token = world.token(role)
    body = await world.gql(token, AUDIT, {"first": 5, "filter": {}})
    assert body["data"] == {"auditEvents": None} and codes(body) == ["FORBIDDEN"]
    body = await world.gql(token, REVIEW, {"input": {"eventId": str(uuid.uuid4()), "note": "Looks fine."}})
    assert body["data"] is None or body["data"] == {"reviewBreakGlass": None}
    assert codes(body) == ["FORBIDDEN"]


async def test_the_dpo_declares_the_audit_purpose(world):
    body = await world.gql(world.token("dpo"), AUDIT, {"first": 5, "filter": {}}, purpose=None)
    assert body["data"] is None and codes(body) == ["PURPOSE_REQUIRED"]
