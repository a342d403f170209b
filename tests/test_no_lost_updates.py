"""No lost updates: concurrent changes quoting the same expectedVersion cannot both win; the loser
gets CONFLICT, and the history holds every version that was really written."""

from __future__ import annotations

import asyncio

from helpers import (
    CREATE_SUBJECT,
    UPDATE_SUBJECT,
    VALIDATE_ASSESSMENT,
    actor,
    codes,
    create_subject,
    draft_assessment,
    draft_referral,
    subject_input,
    submitted_subject,
    transition,
)

SUBJECT_HISTORY = """
query($id: UUID!) {
  subject(id: $id) {
    givenName version
    history { revision { version changedBy } record { givenName version } }
  }
}"""

CONCURRENT = 4


def outcomes(bodies: list[dict]) -> tuple[list[dict], list[str]]:
    """The successful responses, and the error codes of the others."""
    won = [b for b in bodies if not b.get("errors")]
    lost = [code for b in bodies for code in codes(b)]
    return won, lost


async def test_concurrent_subject_updates_with_the_same_version_one_wins(world):
    # Given a subject at version 1
    subject = await create_subject(world, givenName="Original")
    assert subject["version"] == 1

    # When several caseworkers rename it at once, each quoting version 1
    writers = [actor(world, "caseworker", name=f"Writer {i}") for i in range(CONCURRENT)]
    bodies = await asyncio.gather(
        *(
            w.gql(UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "givenName": f"Name {i}"}})
            for i, w in enumerate(writers)
        )
    )

    # Then exactly one succeeds, every other gets CONFLICT
    won, lost = outcomes(bodies)
    assert len(won) == 1, bodies
    assert lost == ["CONFLICT"] * (CONCURRENT - 1)
    winner = won[0]["data"]["updateSubject"]["subject"]
    assert winner["version"] == 2

    # And the file is at version 2 with the winner's name, its history holding both versions
    data = await actor(world, "referral_officer").ok(SUBJECT_HISTORY, {"id": subject["id"]})
    assert (data["subject"]["givenName"], data["subject"]["version"]) == (winner["givenName"], 2)
    history = data["subject"]["history"]
    assert [(h["revision"]["version"], h["record"]["givenName"]) for h in history] == [
        (1, "Original"),
        (2, winner["givenName"]),
    ]
    assert history[1]["revision"]["changedBy"] == f"Writer {winner['givenName'].split()[-1]}"


async def test_a_stale_update_after_another_is_a_conflict_and_changes_nothing(world):
    # Given a subject someone already updated to version 2
    subject = await create_subject(world, givenName="Original")
    casey = actor(world, "caseworker")
    await casey.ok(UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "givenName": "First"}})

    # When another caller, who loaded version 1, updates it
    body = await casey.gql(
        UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "familyName": "Overwritten"}}
    )

    # Then it is a conflict telling the current version, and nothing was overwritten
    assert codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"].get("currentVersion") == 2
    data = await casey.ok(SUBJECT_HISTORY, {"id": subject["id"]})
    assert (data["subject"]["givenName"], data["subject"]["version"]) == ("First", 2)
    assert len(data["subject"]["history"]) == 2


async def test_concurrent_submissions_of_one_referral_one_wins(world):
    # Given a draft referral at version 1
    subject = await create_subject(world)
    referral = await draft_referral(world, subject["id"])

    # When several referral officers submit it at once
    officer = actor(world, "referral_officer")
    bodies = await asyncio.gather(
        *(
            officer.gql(transition("submit"), {"input": {"id": referral["id"], "expectedVersion": 1}})
            for _ in range(CONCURRENT)
        )
    )

    # Then exactly one succeeds, the others get CONFLICT, and the history has two versions
    won, lost = outcomes(bodies)
    assert len(won) == 1, bodies
    assert lost == ["CONFLICT"] * (CONCURRENT - 1)
    data = await officer.ok(
        "query($id: UUID!) { referral(id: $id) { status version history { record { status } } } }",
        {"id": referral["id"]},
    )
    assert (data["referral"]["status"], data["referral"]["version"]) == ("SUBMITTED", 2)
    assert [h["record"]["status"] for h in data["referral"]["history"]] == ["DRAFT", "SUBMITTED"]


async def test_concurrent_validations_of_one_assessment_one_wins(world):
    # Given a draft assessment
    subject, _ = await submitted_subject(world)
    draft = await draft_assessment(world, subject["id"], by=actor(world, "analyst", name="Ann"))

    # When several senior analysts validate it at once
    seniors = [actor(world, "senior_analyst", name=f"Senior {i}") for i in range(CONCURRENT)]
    bodies = await asyncio.gather(
        *(s.gql(VALIDATE_ASSESSMENT, {"input": {"id": draft["id"], "expectedVersion": 1}}) for s in seniors)
    )

    # Then exactly one validation is recorded
    won, lost = outcomes(bodies)
    assert len(won) == 1, bodies
    assert lost == ["CONFLICT"] * (CONCURRENT - 1)
    validator = won[0]["data"]["validateAssessment"]["assessment"]["validatedBy"]
    data = await actor(world, "analyst").ok(
        "query($id: UUID!) { subject(id: $id) { assessments { status version validatedBy history { record { status } } } } }",
        {"id": subject["id"]},
    )
    (assessment,) = data["subject"]["assessments"]
    assert (assessment["status"], assessment["version"], assessment["validatedBy"]) == ("VALIDATED", 2, validator)
    assert [h["record"]["status"] for h in assessment["history"]] == ["DRAFT", "VALIDATED"]


async def test_concurrent_validations_of_two_drafts_leave_one_in_force(world):
    # Given two draft assessments of the same subject
    subject, _ = await submitted_subject(world)
    ann = actor(world, "analyst", name="Ann")
    drafts = [await draft_assessment(world, subject["id"], by=ann) for _ in range(2)]

    # When two senior analysts validate one each, at the same time
    bodies = await asyncio.gather(
        *(
            actor(world, "senior_analyst", name=f"Senior {i}").gql(
                VALIDATE_ASSESSMENT, {"input": {"id": d["id"], "expectedVersion": 1}}
            )
            for i, d in enumerate(drafts)
        )
    )

    # Then both validations happened, but exactly one assessment is in force, the other superseded
    assert [codes(b) for b in bodies] == [[], []], bodies
    data = await ann.ok(
        "query($id: UUID!) { subject(id: $id) { latestAssessment { id } assessments { id status } } }",
        {"id": subject["id"]},
    )
    statuses = sorted(a["status"] for a in data["subject"]["assessments"])
    assert statuses == ["SUPERSEDED", "VALIDATED"]
    in_force = next(a["id"] for a in data["subject"]["assessments"] if a["status"] == "VALIDATED")
    assert data["subject"]["latestAssessment"] == {"id": in_force}


async def test_concurrent_registrations_of_one_child_create_one_file(world):
    # Given one child's details
    values = subject_input(world)

    # When several callers register the child at once
    officer = actor(world, "referral_officer")
    bodies = await asyncio.gather(*(officer.gql(CREATE_SUBJECT, {"input": values}) for _ in range(CONCURRENT)))

    # Then exactly one file is created and the others get CONFLICT
    won, lost = outcomes(bodies)
    assert len(won) == 1, bodies
    assert lost == ["CONFLICT"] * (CONCURRENT - 1)
    data = await officer.ok(
        "query($f: SubjectFilter) { subjects(first: 100, filter: $f) { edges { node { id } } } }",
        {"f": {"agency": world.agency}},
    )
    assert [e["node"]["id"] for e in data["subjects"]["edges"]] == [won[0]["data"]["createSubject"]["subject"]["id"]]
