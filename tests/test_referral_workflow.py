"""A referral moves DRAFT -> SUBMITTED -> ACKNOWLEDGED -> CLOSED, one step at a time, each step
by the role that owns it; any other move is refused and changes nothing; every version is kept."""

from __future__ import annotations

import pytest

from helpers import (
    REFERRAL,
    Actor,
    actor,
    create_subject,
    draft_referral,
    only_code,
    refusals,
    step,
    transition,
)

HISTORY = """
query($id: UUID!) {
  referral(id: $id) {
    history {
      revision { version changedBy changedFields }
      record { status version }
    }
  }
}"""


def names(fields: list[str]) -> set[str]:
    """Field names compared regardless of spelling (submitted_at == submittedAt)."""
    return {f.replace("_", "").lower() for f in fields}


async def referral_as(world, referral_id: str, role: str = "referral_officer") -> dict | None:
    return (await actor(world, role).ok(REFERRAL, {"id": referral_id}))["referral"]


async def referral_at(world, status: str) -> dict:
    """A referral of the world's agency brought to `status` through the normal workflow."""
    subject = await create_subject(world)
    referral = await draft_referral(world, subject["id"])
    path = [("submit", "referral_officer"), ("acknowledge", "analyst"), ("close", "referral_officer")]
    order = ["DRAFT", "SUBMITTED", "ACKNOWLEDGED", "CLOSED"]
    for name, role in path[: order.index(status)]:
        referral = await step(world, name, referral, actor(world, role))
    assert referral["status"] == status
    return referral


async def attempt(by: Actor, name: str, referral: dict) -> dict:
    return await by.gql(transition(name), {"input": {"id": referral["id"], "expectedVersion": referral["version"]}})


# --------------------------------------------------------------------------- each step


async def test_caseworker_drafts_a_referral(world):
    # Given a subject placed in the caseworker's unit
    subject = await create_subject(world)
    caseworker = actor(world, "caseworker", name="Casey")

    # When the caseworker drafts a referral
    referral = await draft_referral(world, subject["id"], by=caseworker, reason="TERRORISM_SUSPECTED")

    # Then it is a first-version DRAFT, not yet submitted, readable by the agency
    assert (referral["status"], referral["version"], referral["reason"]) == ("DRAFT", 1, "TERRORISM_SUSPECTED")
    assert referral["submittedAt"] is None
    assert await referral_as(world, referral["id"]) == referral


async def test_referral_officer_submits_a_draft(world):
    # Given a draft
    referral = await referral_at(world, "DRAFT")

    # When the referral officer submits it
    submitted = await step(world, "submit", referral, actor(world, "referral_officer"))

    # Then it is SUBMITTED at version 2 with a submission time
    assert (submitted["status"], submitted["version"]) == ("SUBMITTED", 2)
    assert submitted["submittedAt"] is not None
    assert (await referral_as(world, referral["id"]))["status"] == "SUBMITTED"


async def test_analyst_acknowledges_a_submitted_referral(world):
    # Given a submitted referral
    referral = await referral_at(world, "SUBMITTED")

    # When a threat analyst acknowledges it
    acknowledged = await step(world, "acknowledge", referral, actor(world, "analyst"))

    # Then it is ACKNOWLEDGED at version 3, for the agency too
    assert (acknowledged["status"], acknowledged["version"]) == ("ACKNOWLEDGED", 3)
    assert (await referral_as(world, referral["id"]))["status"] == "ACKNOWLEDGED"


async def test_referral_officer_closes_an_acknowledged_referral(world):
    # Given an acknowledged referral
    referral = await referral_at(world, "ACKNOWLEDGED")

    # When the referral officer closes it
    closed = await step(world, "close", referral, actor(world, "referral_officer"))

    # Then it is CLOSED at version 4
    assert (closed["status"], closed["version"]) == ("CLOSED", 4)
    assert (await referral_as(world, referral["id"]))["status"] == "CLOSED"


# --------------------------------------------------------------------------- invalid transitions


@pytest.mark.parametrize(
    "status, name, role",
    [
        ("DRAFT", "close", "referral_officer"),
        ("SUBMITTED", "submit", "referral_officer"),  # submit twice
        ("SUBMITTED", "close", "referral_officer"),
        ("ACKNOWLEDGED", "submit", "referral_officer"),
        ("ACKNOWLEDGED", "acknowledge", "analyst"),
        ("CLOSED", "submit", "referral_officer"),
        ("CLOSED", "acknowledge", "analyst"),
        ("CLOSED", "close", "referral_officer"),
    ],
)
async def test_a_step_out_of_order_is_refused_and_changes_nothing(world, status, name, role):
    # Given a referral at `status`
    referral = await referral_at(world, status)

    # When a role that may take the step tries it at the referral's current version
    body = await attempt(actor(world, role), name, referral)

    # Then it is refused as bad input and the referral is unchanged
    assert only_code(body) == "BAD_USER_INPUT"
    assert body["data"] is None
    assert await referral_as(world, referral["id"]) == referral


async def test_acknowledging_a_draft_is_refused_and_changes_nothing(world):
    # Given a draft, and an analyst, who may acknowledge referrals but sees no draft
    referral = await referral_at(world, "DRAFT")

    # When the analyst acknowledges the draft
    body = await attempt(actor(world, "analyst"), "acknowledge", referral)

    # Then it is refused as if the draft did not exist, and nothing changed
    assert only_code(body) == "NOT_FOUND"
    assert await referral_as(world, referral["id"]) == referral


async def test_analyst_cannot_acknowledge_a_draft_they_cannot_see(world):
    # Given a draft (outside the analysts' row scope)
    referral = await referral_at(world, "DRAFT")

    # When an analyst tries to acknowledge it
    body = await attempt(actor(world, "analyst"), "acknowledge", referral)

    # Then it does not exist for them, and it stays a draft
    assert only_code(body) == "NOT_FOUND"
    assert await referral_as(world, referral["id"]) == referral


async def test_a_step_with_a_stale_version_is_a_conflict(world):
    # Given a referral submitted since the caller loaded it at version 1
    draft = await referral_at(world, "DRAFT")
    submitted = await step(world, "submit", draft, actor(world, "referral_officer"))

    # When an analyst acknowledges it quoting version 1
    body = await attempt(actor(world, "analyst"), "acknowledge", draft)

    # Then it is a conflict and the referral stays SUBMITTED
    assert only_code(body) == "CONFLICT"
    assert await referral_as(world, draft["id"]) == submitted


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    "status, name, role",
    [
        ("DRAFT", "submit", "caseworker"),
        ("DRAFT", "submit", "analyst"),
        ("DRAFT", "submit", "dpo"),
        ("SUBMITTED", "acknowledge", "referral_officer"),
        ("SUBMITTED", "acknowledge", "caseworker"),
        ("SUBMITTED", "acknowledge", "dpo"),
        ("ACKNOWLEDGED", "close", "caseworker"),
        ("ACKNOWLEDGED", "close", "analyst"),
        ("ACKNOWLEDGED", "close", "senior_analyst"),
        ("ACKNOWLEDGED", "close", "partner"),
        ("ACKNOWLEDGED", "close", "admin"),
    ],
)
async def test_a_role_that_does_not_own_a_step_is_forbidden(world, status, name, role):
    # Given a referral where `name` would be the valid next step
    referral = await referral_at(world, status)

    # When a role that does not own that step tries it
    body = await attempt(actor(world, role), name, referral)

    # Then it is forbidden and the referral is unchanged
    assert only_code(body) in refusals(role)
    assert body["data"] is None
    assert await referral_as(world, referral["id"]) == referral


@pytest.mark.parametrize("role", ["analyst", "senior_analyst", "dpo", "partner", "admin"])
async def test_only_agency_roles_draft_referrals(world, role):
    # Given a subject of the agency
    subject = await create_subject(world)

    # When another role tries to draft a referral on it
    body = await actor(world, role).gql(
        """mutation($input: DraftReferralInput!) { draftReferral(input: $input) { referral { id } } }""",
        {
            "input": {
                "subjectId": subject["id"],
                "reason": "RADICALISATION_CONCERN",
                "narrative": "n",
                "legalBasis": "b",
            }
        },
    )

    # Then it is forbidden and the subject still has no referral
    assert only_code(body) in refusals(role)
    listed = await actor(world, "referral_officer").ok(
        "query($id: UUID!) { subject(id: $id) { referrals { id } } }", {"id": subject["id"]}
    )
    assert listed["subject"]["referrals"] == []


# --------------------------------------------------------------------------- history


async def test_history_lists_every_version_with_what_changed(world):
    # Given a referral taken through the whole workflow by named people
    subject = await create_subject(world)
    referral = await draft_referral(world, subject["id"], by=actor(world, "caseworker", name="Casey"))
    referral = await step(world, "submit", referral, actor(world, "referral_officer", name="Rita"))
    referral = await step(world, "acknowledge", referral, actor(world, "analyst", name="Ann"))
    referral = await step(world, "close", referral, actor(world, "referral_officer", name="Rita"))

    # When the agency reads its history
    data = await actor(world, "referral_officer").ok(HISTORY, {"id": referral["id"]})

    # Then every version is there, oldest first, with who and what changed
    history = data["referral"]["history"]
    assert [(h["revision"]["version"], h["record"]["version"], h["record"]["status"]) for h in history] == [
        (1, 1, "DRAFT"),
        (2, 2, "SUBMITTED"),
        (3, 3, "ACKNOWLEDGED"),
        (4, 4, "CLOSED"),
    ]
    assert [h["revision"]["changedBy"] for h in history] == ["Casey", "Rita", "Ann", "Rita"]
    assert [names(h["revision"]["changedFields"]) for h in history] == [
        {"status", "reason", "narrative", "legalbasis"},
        {"status", "submittedat"},
        {"status", "acknowledgedat"},
        {"status", "closedat"},
    ]


async def test_a_refused_step_adds_no_version(world):
    # Given a submitted referral
    referral = await referral_at(world, "SUBMITTED")

    # When a refused step is tried
    body = await attempt(actor(world, "referral_officer"), "close", referral)
    assert only_code(body) == "BAD_USER_INPUT"

    # Then its history still holds exactly the two real versions
    data = await actor(world, "referral_officer").ok(HISTORY, {"id": referral["id"]})
    assert [h["record"]["status"] for h in data["referral"]["history"]] == ["DRAFT", "SUBMITTED"]
