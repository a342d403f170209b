"""Four-eyes: an assessment is validated only by a senior analyst other than its author; the new
validated assessment supersedes the previous one, whose history is kept; validated ones never change."""

from __future__ import annotations

from helpers import (
    VALIDATE_ASSESSMENT,
    Actor,
    actor,
    draft_assessment,
    only_code,
    submitted_subject,
    validate_assessment,
)

ASSESSMENTS = """
query($id: UUID!) {
  subject(id: $id) {
    latestAssessment { id status }
    assessments { id status version validatedBy }
  }
}"""

ASSESSMENT_HISTORY = """
query($id: UUID!) {
  subject(id: $id) {
    assessments {
      id
      history { revision { version changedBy } record { status level version } }
    }
  }
}"""

UPDATE_ASSESSMENT = """
mutation($input: UpdateAssessmentInput!) {
  updateAssessment(input: $input) { assessment { id status level version } }
}"""


async def assessments_of(world, subject_id: str) -> dict:
    return (await actor(world, "analyst").ok(ASSESSMENTS, {"id": subject_id}))["subject"]


async def try_validate(by, assessment: dict) -> dict:
    return await by.gql(VALIDATE_ASSESSMENT, {"input": {"id": assessment["id"], "expectedVersion": assessment["version"]}})


async def test_the_author_cannot_validate_their_own_assessment(world):
    # Given a senior analyst who drafted an assessment
    subject, _ = await submitted_subject(world)
    sam = actor(world, "senior_analyst", name="Sam")
    draft = await draft_assessment(world, subject["id"], by=sam)

    # When the same person validates it
    body = await try_validate(sam, draft)

    # Then four-eyes refuses it and the assessment stays a draft
    assert only_code(body) == "FORBIDDEN"
    assert "four-eyes" in body["errors"][0]["message"]
    after = await assessments_of(world, subject["id"])
    assert after["assessments"] == [{"id": draft["id"], "status": "DRAFT", "version": 1, "validatedBy": None}]
    assert after["latestAssessment"] is None


def person(world, role: str, subject: str, name: str) -> Actor:
    """A caller identified by `subject` (the token's `sub`), whatever role or name the token carries."""
    return Actor(world, role, world.services.dev_issuer.issue(role=role, agency="CUTA", name=name, subject=subject))


async def test_the_author_cannot_validate_with_another_token_or_name(world):
    # Given an assessment drafted by one person as analyst
    subject, _ = await submitted_subject(world)
    draft = await draft_assessment(world, subject["id"], by=person(world, "analyst", "user-ann-1", "Ann"))

    # When the same person (same `sub`), now senior and showing another name, validates it
    body = await try_validate(person(world, "senior_analyst", "user-ann-1", "Dr. Ann Example"), draft)

    # Then four-eyes still refuses it: the rule is about the person, not the token or the name
    assert only_code(body) == "FORBIDDEN"
    assert (await assessments_of(world, subject["id"]))["assessments"][0]["status"] == "DRAFT"


async def test_a_namesake_of_the_author_may_validate(world):
    # Given an assessment drafted by one "Sam"
    subject, _ = await submitted_subject(world)
    draft = await draft_assessment(world, subject["id"], by=person(world, "senior_analyst", "user-sam-1", "Sam"))

    # When another person who is also called "Sam" validates it
    validated = await validate_assessment(draft, person(world, "senior_analyst", "user-sam-2", "Sam"))

    # Then it is validated: two different people looked at it
    assert validated["status"] == "VALIDATED"


async def test_a_non_senior_analyst_cannot_validate(world):
    # Given an assessment drafted by one analyst
    subject, _ = await submitted_subject(world)
    draft = await draft_assessment(world, subject["id"], by=actor(world, "analyst", name="Ann"))

    # When another, non-senior analyst validates it
    body = await try_validate(actor(world, "analyst", name="Bob"), draft)

    # Then it is forbidden and nothing changed
    assert only_code(body) == "FORBIDDEN"
    assert (await assessments_of(world, subject["id"]))["assessments"][0]["status"] == "DRAFT"


async def test_a_different_senior_analyst_validates(world):
    # Given an analyst's draft
    subject, _ = await submitted_subject(world)
    draft = await draft_assessment(world, subject["id"], by=actor(world, "analyst", name="Ann"))
    assert (draft["status"], draft["author"], draft["validatedBy"]) == ("DRAFT", "Ann", None)

    # When a senior analyst who is not the author validates it
    validated = await validate_assessment(draft, actor(world, "senior_analyst", name="Sam"))

    # Then it is VALIDATED by that senior analyst, and in force for the subject
    assert (validated["status"], validated["version"], validated["validatedBy"]) == ("VALIDATED", 2, "Sam")
    assert (await assessments_of(world, subject["id"]))["latestAssessment"] == {"id": draft["id"], "status": "VALIDATED"}


async def test_validating_a_second_assessment_supersedes_the_first(world):
    # Given a subject with a validated assessment and a new draft
    subject, _ = await submitted_subject(world)
    ann, sam = actor(world, "analyst", name="Ann"), actor(world, "senior_analyst", name="Sam")
    first = await validate_assessment(await draft_assessment(world, subject["id"], by=ann, level="LOW"), sam)
    second = await draft_assessment(world, subject["id"], by=ann, level="SERIOUS")

    # When the new one is validated
    await validate_assessment(second, sam)

    # Then the first is SUPERSEDED, the second in force
    after = await assessments_of(world, subject["id"])
    statuses = {a["id"]: (a["status"], a["version"]) for a in after["assessments"]}
    assert statuses == {first["id"]: ("SUPERSEDED", 3), second["id"]: ("VALIDATED", 2)}
    assert after["latestAssessment"] == {"id": second["id"], "status": "VALIDATED"}

    # And the first's history keeps every version: drafted, validated, superseded
    data = await ann.ok(ASSESSMENT_HISTORY, {"id": subject["id"]})
    history = {a["id"]: a["history"] for a in data["subject"]["assessments"]}[first["id"]]
    assert [(h["revision"]["version"], h["record"]["status"], h["record"]["level"]) for h in history] == [
        (1, "DRAFT", "LOW"),
        (2, "VALIDATED", "LOW"),
        (3, "SUPERSEDED", "LOW"),
    ]
    assert [h["revision"]["changedBy"] for h in history] == ["Ann", "Sam", "Sam"]


async def test_the_agency_sees_only_the_validated_assessment_in_force(world):
    # Given a superseded, a validated and a draft assessment
    subject, _ = await submitted_subject(world)
    ann, sam = actor(world, "analyst", name="Ann"), actor(world, "senior_analyst", name="Sam")
    first = await validate_assessment(await draft_assessment(world, subject["id"], by=ann), sam)
    second = await validate_assessment(await draft_assessment(world, subject["id"], by=ann), sam)
    await draft_assessment(world, subject["id"], by=ann)

    # When the referral officer reads them
    data = await actor(world, "referral_officer").ok(
        "query($id: UUID!) { subject(id: $id) { latestAssessment { id } assessments { id status } } }",
        {"id": subject["id"]},
    )

    # Then latestAssessment is the second; the draft is not shown
    assert data["subject"]["latestAssessment"] == {"id": second["id"]}
    assert sorted((a["id"], a["status"]) for a in data["subject"]["assessments"]) == sorted(
        [(first["id"], "SUPERSEDED"), (second["id"], "VALIDATED")]
    )


async def test_a_validated_assessment_cannot_be_validated_again(world):
    # Given a validated assessment
    subject, _ = await submitted_subject(world)
    validated = await validate_assessment(
        await draft_assessment(world, subject["id"], by=actor(world, "analyst", name="Ann")),
        actor(world, "senior_analyst", name="Sam"),
    )

    # When another senior analyst validates it again
    body = await try_validate(actor(world, "senior_analyst", name="Sue"), validated)

    # Then it is refused and it keeps its first validator
    assert only_code(body) == "BAD_USER_INPUT"
    after = await assessments_of(world, subject["id"])
    assert after["assessments"][0]["validatedBy"] == "Sam"
    assert after["assessments"][0]["version"] == 2


async def test_a_validated_assessment_cannot_be_updated(world):
    # Given a validated assessment
    subject, _ = await submitted_subject(world)
    ann = actor(world, "analyst", name="Ann")
    validated = await validate_assessment(
        await draft_assessment(world, subject["id"], by=ann, level="MEDIUM"),
        actor(world, "senior_analyst", name="Sam"),
    )

    # When its author tries to change its level at its current version
    body = await ann.gql(
        UPDATE_ASSESSMENT, {"input": {"id": validated["id"], "expectedVersion": validated["version"], "level": "LOW"}}
    )

    # Then it is refused and the assessment is unchanged
    assert only_code(body) == "BAD_USER_INPUT"
    data = await ann.ok(ASSESSMENT_HISTORY, {"id": subject["id"]})
    (only,) = data["subject"]["assessments"]
    assert [(h["record"]["status"], h["record"]["level"]) for h in only["history"]] == [
        ("DRAFT", "MEDIUM"),
        ("VALIDATED", "MEDIUM"),
    ]


async def test_a_draft_can_be_updated_before_validation(world):
    # Given a draft (the contrast to the validated case)
    subject, _ = await submitted_subject(world)
    ann = actor(world, "analyst", name="Ann")
    draft = await draft_assessment(world, subject["id"], by=ann, level="MEDIUM")

    # When its level is changed
    data = await ann.ok(
        UPDATE_ASSESSMENT, {"input": {"id": draft["id"], "expectedVersion": 1, "level": "SERIOUS"}}
    )

    # Then the draft is at version 2 with the new level
    assert data["updateAssessment"]["assessment"] == {
        "id": draft["id"],
        "status": "DRAFT",
        "level": "SERIOUS",
        "version": 2,
    }
