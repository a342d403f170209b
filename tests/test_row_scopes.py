"""Row scopes (DESIGN section 5): a record outside the caller's scope is simply absent — null by
id, missing from lists and linked fields, NOT_FOUND to mutations — with nothing that tells it exists.

The database is shared between tests, so every assertion is about this test's own records:
ids looked up one by one, or lists filtered by the test's own agencies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from conftest import World
from helpers import (
    ADD_NOTE,
    UPDATE_SUBJECT,
    Actor,
    actor,
    codes,
    create_subject,
    draft_assessment,
    draft_referral,
    ensure_agency,
    step,
    transition,
    validate_assessment,
)

ROLES = ["caseworker", "referral_officer", "analyst", "senior_analyst", "dpo", "partner", "admin"]

SUBJECT = """
query($id: UUID!) {
  subject(id: $id) {
    id
    referrals { id }
    notes(first: 100) { id }
    assessments { id }
    latestAssessment { id }
  }
}"""

REFERRAL = """
query($id: UUID!) {
  referral(id: $id) {
    id
    subject { id }
    notes(first: 100) { id }
    assessments { id }
  }
}"""

SUBJECTS = """
query($agency: String) {
  subjects(first: 100, filter: {agency: $agency}) { edges { node { id } } pageInfo { hasNextPage } }
}"""

REFERRALS = """
query($agency: String) {
  referrals(first: 100, filter: {agency: $agency}) { edges { node { id subject { id } } } pageInfo { hasNextPage } }
}"""


@dataclass
class Scene:
    """Records of two agencies, named so expectations read like the spec.

    home       agency A, the caseworker's unit; a DRAFT and a SUBMITTED referral (r_sub),
               shared and internal notes (some on r_sub), a VALIDATED and a DRAFT assessment
    elsewhere  agency A, another unit; only a DRAFT referral (never shown to analysts)
    foreign    agency B; a SUBMITTED referral
    """

    world: World
    other: World
    ids: dict[str, str] = field(default_factory=dict)

    def name(self, record_id: str) -> str:
        return {v: k for k, v in self.ids.items()}.get(record_id, f"unknown:{record_id}")

    def names(self, items: list[dict] | None) -> set[str]:
        return {self.name(i["id"]) for i in items or []}


@pytest.fixture
async def scene(world, client, services) -> Scene:
    other = World(client, services)
    await ensure_agency(other, other.agency)
    s = Scene(world, other)
    officer = actor(world, "referral_officer")
    casey = actor(world, "caseworker", name="Casey")
    ann, sam = actor(world, "analyst", name="Ann"), actor(world, "senior_analyst", name="Sam")

    home = await create_subject(world, by=casey)
    s.ids["home"] = home["id"]
    s.ids["r_draft"] = (await draft_referral(world, home["id"], by=casey))["id"]
    r_sub = await step(world, "submit", await draft_referral(world, home["id"], by=officer), officer)
    s.ids["r_sub"] = r_sub["id"]
    for name, visibility, referral in [
        ("n_shared", "SHARED", None),
        ("n_internal", "AGENCY_INTERNAL", None),
        ("n_ref_shared", "SHARED", r_sub["id"]),
        ("n_ref_internal", "AGENCY_INTERNAL", r_sub["id"]),
    ]:
        data = await casey.ok(
            ADD_NOTE,
            {"input": {"subjectId": home["id"], "body": name, "visibility": visibility, "referralId": referral}},
        )
        s.ids[name] = data["addNote"]["note"]["id"]
    validated = await validate_assessment(await draft_assessment(world, home["id"], by=ann, referralId=r_sub["id"]), sam)
    s.ids["a_validated"] = validated["id"]
    s.ids["a_draft"] = (await draft_assessment(world, home["id"], by=ann, referralId=r_sub["id"]))["id"]

    elsewhere = await create_subject(world, by=officer, institution=f"{world.unit}-OTHER")
    s.ids["elsewhere"] = elsewhere["id"]
    s.ids["r_else"] = (await draft_referral(world, elsewhere["id"], by=officer))["id"]

    other_officer = actor(other, "referral_officer")
    foreign = await create_subject(other, by=other_officer)
    s.ids["foreign"] = foreign["id"]
    r_foreign = await step(other, "submit", await draft_referral(other, foreign["id"], by=other_officer), other_officer)
    s.ids["r_foreign"] = r_foreign["id"]
    return s


# What each role sees of the scene, written by hand from DESIGN section 5.
ALL_NOTES = {"n_shared", "n_internal", "n_ref_shared", "n_ref_internal"}
SEES = {
    "caseworker": {
        "subjects": {"home"},
        "referrals": {"r_draft", "r_sub"},
        "home_notes": ALL_NOTES,
        "r_sub_notes": {"n_ref_shared", "n_ref_internal"},
        "assessments": {"a_validated"},
    },
    "referral_officer": {
        "subjects": {"home", "elsewhere"},
        "referrals": {"r_draft", "r_sub", "r_else"},
        "home_notes": ALL_NOTES,
        "r_sub_notes": {"n_ref_shared", "n_ref_internal"},
        "assessments": {"a_validated"},
    },
    "analyst": {
        "subjects": {"home", "foreign"},
        "referrals": {"r_sub", "r_foreign"},
        "home_notes": {"n_shared", "n_ref_shared"},
        "r_sub_notes": {"n_ref_shared"},
        "assessments": {"a_validated", "a_draft"},
    },
    "dpo": {
        "subjects": {"home", "elsewhere", "foreign"},
        "referrals": {"r_draft", "r_sub", "r_else", "r_foreign"},
        "home_notes": ALL_NOTES,
        "r_sub_notes": {"n_ref_shared", "n_ref_internal"},
        "assessments": {"a_validated", "a_draft"},
    },
}
SEES["senior_analyst"] = SEES["analyst"]
NOTHING = {"subjects": set(), "referrals": set(), "home_notes": set(), "r_sub_notes": set(), "assessments": set()}
SEES["partner"] = SEES["admin"] = NOTHING

SUBJECT_REFERRALS = {"home": {"r_draft", "r_sub"}, "elsewhere": {"r_else"}, "foreign": {"r_foreign"}}


def data_or_refused(body: dict) -> dict:
    """The data of a read; a caller with no scope at all may instead be refused outright."""
    if body.get("errors"):
        assert set(codes(body)) <= {"FORBIDDEN", "PURPOSE_REQUIRED"}, body
    return body.get("data") or {}


@pytest.mark.parametrize("role", ROLES)
async def test_subject_by_id_is_null_outside_the_scope(scene, role):
    # Given the scene, and a caller with `role`
    caller = actor(scene.world, role)
    expected = SEES[role]["subjects"]

    for name in ("home", "elsewhere", "foreign"):
        # When the caller asks for the subject by id
        body = await caller.gql(SUBJECT, {"id": scene.ids[name]})

        # Then it is there exactly when it is in scope; outside, null without any error
        subject = data_or_refused(body).get("subject")
        if name in expected:
            assert "errors" not in body, body
            assert subject["id"] == scene.ids[name]
        else:
            assert subject is None, (role, name)
            if role not in ("partner", "admin"):
                assert "errors" not in body, body


@pytest.mark.parametrize("role", ROLES)
async def test_referral_by_id_is_null_outside_the_scope(scene, role):
    # Given the scene, and a caller with `role`
    caller = actor(scene.world, role)
    expected = SEES[role]["referrals"]

    for name in ("r_draft", "r_sub", "r_else", "r_foreign"):
        # When the caller asks for the referral by id
        body = await caller.gql(REFERRAL, {"id": scene.ids[name]})

        # Then it is there exactly when in scope, linked to its subject; outside, null without any error
        referral = data_or_refused(body).get("referral")
        if name in expected:
            assert "errors" not in body, body
            owner = next(s for s, refs in SUBJECT_REFERRALS.items() if name in refs)
            assert referral["subject"] == {"id": scene.ids[owner]}
        else:
            assert referral is None, (role, name)
            if role not in ("partner", "admin"):
                assert "errors" not in body, body


@pytest.mark.parametrize("role", ROLES)
async def test_lists_hold_exactly_the_records_in_scope(scene, role):
    # Given the scene, and a caller with `role`
    caller = actor(scene.world, role)
    expected = SEES[role]

    # When the caller lists the subjects and referrals of both agencies
    subjects, referrals = set(), set()
    for agency in (scene.world.agency, scene.other.agency):
        page = data_or_refused(await caller.gql(SUBJECTS, {"agency": agency})).get("subjects")
        subjects |= scene.names([e["node"] for e in page["edges"]]) if page else set()
        page = data_or_refused(await caller.gql(REFERRALS, {"agency": agency})).get("referrals")
        referrals |= scene.names([e["node"] for e in page["edges"]]) if page else set()

    # Then they hold exactly what the scope allows
    assert subjects == expected["subjects"]
    assert referrals == expected["referrals"]


@pytest.mark.parametrize("role", ["caseworker", "referral_officer", "analyst", "senior_analyst", "dpo"])
async def test_linked_records_are_filtered_by_the_scope(scene, role):
    # Given the scene, and a caller who can see `home` and its submitted referral
    caller = actor(scene.world, role)
    expected = SEES[role]

    # When the caller reads `home` and `r_sub` with their linked records
    home = (await caller.ok(SUBJECT, {"id": scene.ids["home"]}))["subject"]
    r_sub = (await caller.ok(REFERRAL, {"id": scene.ids["r_sub"]}))["referral"]

    # Then only in-scope referrals, notes and assessments are linked
    assert scene.names(home["referrals"]) == expected["referrals"] & SUBJECT_REFERRALS["home"]
    assert scene.names(home["notes"]) == expected["home_notes"]
    assert scene.names(r_sub["notes"]) == expected["r_sub_notes"]
    assert scene.names(home["assessments"]) == expected["assessments"]
    assert scene.names(r_sub["assessments"]) == expected["assessments"]
    assert scene.name(home["latestAssessment"]["id"]) == "a_validated"


@pytest.mark.parametrize("role", ["partner", "admin"])
async def test_partner_and_admin_see_no_records_at_all(scene, role):
    # Given records exist (the scene, and whatever other tests wrote)
    caller = actor(scene.world, role)

    # When the caller lists everything without a filter
    subjects = data_or_refused(await caller.gql(SUBJECTS, {"agency": None})).get("subjects")
    referrals = data_or_refused(await caller.gql(REFERRALS, {"agency": None})).get("referrals")

    # Then there is nothing at all
    assert (subjects or {"edges": []})["edges"] == []
    assert (referrals or {"edges": []})["edges"] == []


async def test_caseworker_sees_subjects_of_their_unit_in_any_list(scene):
    # Given a second caseworker in another unit of the same agency
    elsewhere_worker = actor(scene.world, "caseworker", unit=f"{scene.world.unit}-OTHER")

    # When they list the agency's subjects
    data = await elsewhere_worker.ok(SUBJECTS, {"agency": scene.world.agency})

    # Then they see the subject of their unit, not the first caseworker's
    assert scene.names([e["node"] for e in data["subjects"]["edges"]]) == {"elsewhere"}


async def test_caseworker_without_a_unit_sees_no_subjects(scene):
    # Given a caseworker token that carries no unit
    no_unit = Actor(scene.world, "caseworker", scene.world.token("caseworker", unit=""))

    # When they list and fetch
    data = await no_unit.ok(SUBJECTS, {"agency": scene.world.agency})
    one = await no_unit.ok(SUBJECT, {"id": scene.ids["home"]})

    # Then nothing is visible
    assert data["subjects"]["edges"] == []
    assert one["subject"] is None


# --------------------------------------------------------------------------- mutations


def _not_found_message(body: dict, record_id: str) -> str:
    assert codes(body) == ["NOT_FOUND"], body
    assert body["data"] is None
    return body["errors"][0]["message"].replace(record_id, "<id>")


OUT_OF_SCOPE_CHANGES = [
    # role, target, mutation, input builder
    ("caseworker", "elsewhere", UPDATE_SUBJECT, lambda i: {"id": i, "expectedVersion": 1, "givenName": "X"}),
    ("caseworker", "elsewhere", ADD_NOTE, lambda i: {"subjectId": i, "body": "x"}),
    (
        "caseworker",
        "elsewhere",
        "mutation($input: DraftReferralInput!) { draftReferral(input: $input) { referral { id } } }",
        lambda i: {"subjectId": i, "reason": "RADICALISATION_CONCERN", "narrative": "n", "legalBasis": "b"},
    ),
    ("referral_officer", "foreign", UPDATE_SUBJECT, lambda i: {"id": i, "expectedVersion": 1, "givenName": "X"}),
    ("referral_officer", "foreign", ADD_NOTE, lambda i: {"subjectId": i, "body": "x"}),
    ("referral_officer", "r_foreign", transition("close"), lambda i: {"id": i, "expectedVersion": 2}),
    ("analyst", "elsewhere", ADD_NOTE, lambda i: {"subjectId": i, "body": "x"}),
    ("analyst", "r_else", transition("acknowledge"), lambda i: {"id": i, "expectedVersion": 1}),
    (
        "analyst",
        "elsewhere",
        "mutation($input: DraftAssessmentInput!) { draftAssessment(input: $input) { assessment { id } } }",
        lambda i: {"subjectId": i, "level": "LOW", "summary": "s", "rationale": "r"},
    ),
    (
        "analyst",
        "n_internal",
        "mutation($input: CorrectNoteInput!) { correctNote(input: $input) { note { id } } }",
        lambda i: {"noteId": i, "body": "x"},
    ),
]


@pytest.mark.parametrize("role, target, mutation, make_input", OUT_OF_SCOPE_CHANGES)
async def test_changes_to_out_of_scope_records_are_not_found_like_missing_ones(scene, role, target, mutation, make_input):
    # Given a record outside the caller's scope, and an id that exists nowhere
    caller = actor(scene.world, role)
    hidden, missing = scene.ids[target], str(uuid.uuid4())
    before = await actor(scene.world, "dpo").ok(SUBJECT, {"id": scene.ids["elsewhere"]})

    # When the caller changes the hidden record, and the missing one
    on_hidden = await caller.gql(mutation, {"input": make_input(hidden)})
    on_missing = await caller.gql(mutation, {"input": make_input(missing)})

    # Then both are NOT_FOUND, worded the same: nothing tells the hidden record exists
    assert _not_found_message(on_hidden, hidden) == _not_found_message(on_missing, missing)
    assert on_hidden["errors"][0].get("extensions") == on_missing["errors"][0].get("extensions")
    # And nothing changed on the hidden side
    assert await actor(scene.world, "dpo").ok(SUBJECT, {"id": scene.ids["elsewhere"]}) == before


async def test_hidden_records_are_unchanged_after_refused_changes(scene):
    # Given a caseworker who cannot see `elsewhere`
    casey = actor(scene.world, "caseworker")

    # When they try to rename it and to note on it
    await casey.gql(UPDATE_SUBJECT, {"input": {"id": scene.ids["elsewhere"], "expectedVersion": 1, "givenName": "X"}})
    await casey.gql(ADD_NOTE, {"input": {"subjectId": scene.ids["elsewhere"], "body": "x"}})

    # Then its owner sees it as it was: version 1, original name, no notes
    data = await actor(scene.world, "referral_officer").ok(
        "query($id: UUID!) { subject(id: $id) { givenName version notes { id } } }", {"id": scene.ids["elsewhere"]}
    )
    assert data["subject"] == {"givenName": "Alex", "version": 1, "notes": []}
