"""Leak attempts that must all fail: a forbidden field stays null by every route a client can try —
linked records, aliases, fragments, history, mutation payloads, filters, error messages,
suggestions — and a record outside the row scope stays absent however its id is guessed."""

from __future__ import annotations

import uuid

import pytest

from cases import build_case, forbidden_fields
from helpers import UPDATE_SUBJECT, actor, codes, create_subject, ensure_agency, subject_input


@pytest.fixture
async def case(world):
    return await build_case(world)


def walk_strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in walk_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in walk_strings(v)]
    return [value] if isinstance(value, str) else []


def assert_absent(body: dict, secret: str) -> None:
    """`secret` appears nowhere in the response: not in data, not in any error."""
    assert not any(secret in s for s in walk_strings(body)), body


# --------------------------------------------------------------------------- linked records


async def test_national_number_through_a_referral_stays_hidden_from_a_caseworker(world, case):
    # When a caseworker reaches the subject through its referral
    body = await actor(world, "caseworker").gql(
        "query($id: UUID!) { referral(id: $id) { subject { givenName nationalNumber } } }", {"id": case.referral_id}
    )
    # Then the national number is null with one FORBIDDEN, and the allowed field still arrives
    assert body["data"]["referral"]["subject"] == {"givenName": "Robin", "nationalNumber": None}
    assert forbidden_fields(body) == ["Subject.nationalNumber"]
    assert_absent(body, case.national_number)


async def test_every_route_to_a_subject_hides_the_national_number(world, case):
    # When a caseworker asks for it through notes, assessments and the subject's own links
    body = await actor(world, "caseworker").gql(
        """query($id: UUID!) { subject(id: $id) {
             notes(first: 10) { subject { nationalNumber } }
             assessments { subject { nationalNumber } }
             latestAssessment { subject { nationalNumber } }
             referrals { subject { nationalNumber } notes { subject { nationalNumber } } }
        } }""",
        {"id": case.subject["id"]},
    )
    # Then it is null everywhere, with a single error for the field
    assert forbidden_fields(body) == ["Subject.nationalNumber"]
    assert_absent(body, case.national_number)


async def test_dpo_reads_no_narrative_or_assessment_content_through_links(world, case):
    body = await actor(world, "dpo").gql(
        """query($id: UUID!) { subject(id: $id) {
             givenName
             referrals { id narrative }
             latestAssessment { id status level summary rationale }
             notes(first: 10) { id body author }
        } }""",
        {"id": case.subject["id"]},
    )
    subject = body["data"]["subject"]
    assert subject["givenName"] is None and subject["referrals"][0]["narrative"] is None
    assert subject["latestAssessment"] == {
        "id": case.assessment_id, "status": "VALIDATED", "level": None, "summary": None, "rationale": None,
    }
    assert {n["body"] for n in subject["notes"]} == {None}
    assert sorted(forbidden_fields(body)) == sorted([
        "Subject.givenName", "Referral.narrative", "ThreatAssessment.level", "ThreatAssessment.summary",
        "ThreatAssessment.rationale", "FollowUpNote.body", "FollowUpNote.author",
    ])


# --------------------------------------------------------------------------- aliases and fragments


async def test_aliases_do_not_multiply_or_bypass_the_rule(world, case):
    body = await actor(world, "caseworker").gql(
        "query($id: UUID!) { subject(id: $id) { a: nationalNumber b: nationalNumber givenName } "
        "again: subject(id: $id) { c: nationalNumber } }",
        {"id": case.subject["id"]},
    )
    assert body["data"]["subject"] == {"a": None, "b": None, "givenName": "Robin"}
    assert body["data"]["again"] == {"c": None}
    assert forbidden_fields(body) == ["Subject.nationalNumber"]  # one error per field per response


async def test_named_and_inline_fragments_do_not_bypass_the_rule(world, case):
    body = await actor(world, "caseworker").gql(
        """query($id: UUID!) {
             subject(id: $id) { ...Identity ... on Subject { inline: nationalNumber } }
             referral(id: "%s") { subject { ...Identity } }
           }
           fragment Identity on Subject { givenName nationalNumber }""" % case.referral_id,
        {"id": case.subject["id"]},
    )
    assert body["data"]["subject"] == {"givenName": "Robin", "nationalNumber": None, "inline": None}
    assert body["data"]["referral"]["subject"] == {"givenName": "Robin", "nationalNumber": None}
    assert forbidden_fields(body) == ["Subject.nationalNumber"]
    assert_absent(body, case.national_number)


async def test_fragments_on_the_query_root_are_refused_like_root_fields(world, case):
    body = await actor(world, "partner").gql(
        "query { ...Everything } fragment Everything on Query { subjects(first: 5) { edges { node { id } } } }"
    )
    assert body["data"] == {"subjects": None}
    assert forbidden_fields(body) == ["Query.subjects"]


# --------------------------------------------------------------------------- history


async def test_old_versions_obey_the_same_field_rules(world, case):
    # Given a subject whose file changed (version 1 and 2 in its history)
    body = await actor(world, "caseworker").gql(
        "query($id: UUID!) { subject(id: $id) { history { record { version givenName nationalNumber } } } }",
        {"id": case.subject["id"]},
    )
    history = body["data"]["subject"]["history"]
    assert [h["record"]["version"] for h in history] == [1, 2]
    assert {h["record"]["nationalNumber"] for h in history} == {None}
    assert forbidden_fields(body) == ["Subject.nationalNumber"]
    assert_absent(body, case.national_number)


async def test_history_does_not_reveal_who_wrote_a_referral_or_an_assessment(world, case):
    # Caseworkers may not read Referral.referredBy; agency roles may not read ThreatAssessment.author
    query = """query($id: UUID!) { subject(id: $id) {
        referrals { referredBy history { revision { version changedBy } record { referredBy } } }
        assessments { author validatedBy history { revision { changedBy } record { author rationale sources } } }
    } }"""
    body = await actor(world, "caseworker").gql(query, {"id": case.subject["id"]})
    assert sorted(set(forbidden_fields(body))) == sorted([
        "Referral.referredBy", "ReferralRevisionInfo.changedBy", "ThreatAssessment.author",
        "ThreatAssessment.validatedBy", "AssessmentRevisionInfo.changedBy", "ThreatAssessment.rationale",
        "ThreatAssessment.sources",
    ])
    for name in ("caseworker of", "referral_officer of", "analyst of"):
        assert_absent(body, name)

    # The referral officer reads who moved the referral, but still not who assessed
    body = await actor(world, "referral_officer").gql(query, {"id": case.subject["id"]})
    subject = body["data"]["subject"]
    revisions = subject["referrals"][0]["history"]
    assert {r["revision"]["changedBy"] for r in revisions} >= {f"referral_officer of {world.agency}"}
    assessment = subject["assessments"][0]
    assert (assessment["author"], assessment["validatedBy"]) == (None, None)
    assert {h["revision"]["changedBy"] for h in assessment["history"]} == {None}
    assert "AssessmentRevisionInfo.changedBy" in forbidden_fields(body)
    assert_absent(body, "senior_analyst of")


async def test_dpo_history_shows_metadata_not_content(world, case):
    body = await actor(world, "dpo").gql(
        "query($id: UUID!) { referral(id: $id) { history { revision { version changedBy } record { status narrative } } } }",
        {"id": case.referral_id},
    )
    history = body["data"]["referral"]["history"]
    assert [h["record"]["status"] for h in history] == ["DRAFT", "SUBMITTED", "ACKNOWLEDGED", "CLOSED"]
    assert {h["record"]["narrative"] for h in history} == {None}
    assert forbidden_fields(body) == ["Referral.narrative"]


# --------------------------------------------------------------------------- mutation payloads and inputs


async def test_a_mutation_payload_obeys_the_field_rules(world):
    # When a caseworker registers a subject and asks for the number back in the payload
    values = subject_input(world)
    body = await actor(world, "caseworker").gql(
        "mutation($input: CreateSubjectInput!) { createSubject(input: $input) { subject { id givenName nationalNumber } } }",
        {"input": values},
    )
    # Then the subject is created, but the number they may not read is not echoed
    subject = body["data"]["createSubject"]["subject"]
    assert subject["id"] and subject["givenName"] == values["givenName"] and subject["nationalNumber"] is None
    assert forbidden_fields(body) == ["Subject.nationalNumber"]
    assert_absent(body, values["nationalNumber"])


async def test_an_analyst_payload_hides_nothing_the_analyst_may_read_and_a_dpo_cannot_mutate(world, case):
    body = await actor(world, "dpo").gql(
        "mutation($input: AddNoteInput!) { addNote(input: $input) { note { body } } }",
        {"input": {"subjectId": case.subject["id"], "body": "dpo note"}},
    )
    assert body["data"] is None and forbidden_fields(body) == ["Mutation.addNote"]


async def test_a_caseworker_cannot_change_the_national_number_they_cannot_read(world, case):
    # When a caseworker tries to overwrite the number (e.g. to probe for duplicates)
    body = await actor(world, "caseworker").gql(
        UPDATE_SUBJECT,
        {"input": {"id": case.subject["id"], "expectedVersion": 2, "nationalNumber": "85073003328"}},
    )
    # Then the input field is refused before anything runs, and nothing changed
    assert forbidden_fields(body) == ["UpdateSubjectInput.nationalNumber"]
    data = await actor(world, "referral_officer").ok(
        "query($id: UUID!) { subject(id: $id) { version nationalNumber } }", {"id": case.subject["id"]}
    )
    assert data["subject"] == {"version": 2, "nationalNumber": case.national_number}


@pytest.mark.parametrize("as_variable", [False, True])
async def test_a_filter_cannot_reveal_a_field_the_role_cannot_read(world, case, as_variable):
    # When the dpo filters subjects on their legal status (which it may not read)
    if as_variable:
        query = "query($f: SubjectFilter) { subjects(filter: $f) { edges { node { id } } } }"
        variables = {"f": {"legalStatus": "SUSPECTED", "agency": world.agency}}
    else:
        query = 'query { subjects(filter: {legalStatus: SUSPECTED, agency: "%s"}) { edges { node { id } } } }' % world.agency
        variables = None
    body = await actor(world, "dpo").gql(query, variables)
    # Then the list is refused, naming the filter field
    assert body["data"] == {"subjects": None}
    assert forbidden_fields(body) == ["SubjectFilter.legalStatus"]

    # While filtering on what it may read works
    data = await actor(world, "dpo").ok(
        "query($a: String) { subjects(filter: {agency: $a}) { edges { node { id } } } }", {"a": world.agency}
    )
    assert case.subject["id"] in {e["node"]["id"] for e in data["subjects"]["edges"]}


async def test_a_variable_default_counts_as_setting_the_filter(world):
    body = await actor(world, "dpo").gql(
        "query($f: SubjectFilter = {institution: \"X\"}) { subjects(filter: $f) { edges { node { id } } } }"
    )
    assert forbidden_fields(body) == ["SubjectFilter.institution"]


# --------------------------------------------------------------------------- errors and suggestions


@pytest.mark.parametrize(
    "query",
    [
        'query { subject(id: "%s") { nationalNumbr } }',  # a field typo
        'query { subject(idd: "%s") { id } }',  # an argument typo
        'query { subjects(filter: {legalStatu: CONVICTED}) { edges { node { id } } } } # %s',  # an input field typo
        'query { subjects(filter: {legalStatus: CONVICTE}) { edges { node { id } } } } # %s',  # an enum typo
        'query { subject(id: "%s") { referrals { narrativ } } }',
    ],
)
async def test_errors_suggest_no_field_names(world, query):
    body = await actor(world, "partner").gql(query % uuid.uuid4())
    assert codes(body) and set(codes(body)) == {"BAD_USER_INPUT"}
    for error in body["errors"]:
        assert "Did you mean" not in error["message"], error["message"]
        assert "nationalNumber" not in error["message"] and "narrative'" not in error["message"]


async def test_a_variable_typo_suggests_nothing_either(world):
    body = await actor(world, "dpo").gql(
        "query($f: SubjectFilter) { subjects(filter: $f) { edges { node { id } } } }", {"f": {"legalStatu": "X"}}
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "Did you mean" not in body["errors"][0]["message"]


async def test_forbidden_errors_name_the_field_not_its_value(world, case):
    body = await actor(world, "dpo").gql(
        "query($id: UUID!) { subject(id: $id) { givenName familyName nationalNumber dateOfBirth } }",
        {"id": case.subject["id"]},
    )
    assert len(body["errors"]) == 4
    for error in body["errors"]:
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["message"] == f"your role may not read {error['extensions']['field']}"
    assert_absent(body, case.national_number)
    assert_absent(body, "Robin")


# --------------------------------------------------------------------------- guessing ids


async def test_ids_guessed_outside_the_row_scope_look_like_unknown_ids(world, case):
    # Given a caseworker of another unit, a referral officer of another agency, and an unknown id
    other_unit = actor(world, "caseworker", unit="ANOTHER-UNIT", name="other caseworker")
    await ensure_agency(world, "OTHER-AGENCY")
    other_agency = actor(world, "referral_officer", agency="OTHER-AGENCY", name="other officer")
    unknown = str(uuid.uuid4())
    for who in (other_unit, other_agency):
        # When they query the case's records by id, directly and through filters
        for id_, query in [
            (case.subject["id"], "query($id: UUID!) { subject(id: $id) { id givenName } }"),
            (case.referral_id, "query($id: UUID!) { referral(id: $id) { id narrative } }"),
        ]:
            known = await who.gql(query, {"id": id_})
            missing = await who.gql(query, {"id": unknown})
            # Then the answer is the same as for an id that does not exist: null, no error
            assert known == missing == {"data": {query.split("{")[1].split("(")[0].strip(): None}}
        body = await who.ok(
            "query($id: UUID!) { referrals(filter: {subjectId: $id}) { edges { node { id } } } }",
            {"id": case.subject["id"]},
        )
        assert body["referrals"]["edges"] == []


async def test_changes_to_a_guessed_id_fail_exactly_like_an_unknown_id(world, case):
    other_unit = actor(world, "caseworker", unit="ANOTHER-UNIT", name="other caseworker")
    query = "mutation($input: AddNoteInput!) { addNote(input: $input) { note { id } } }"
    known = await other_unit.gql(query, {"input": {"subjectId": case.subject["id"], "body": "x"}})
    unknown_id = str(uuid.uuid4())
    missing = await other_unit.gql(query, {"input": {"subjectId": unknown_id, "body": "x"}})
    assert codes(known) == codes(missing) == ["NOT_FOUND"]
    assert known["errors"][0]["message"].replace(case.subject["id"], "ID") == missing["errors"][0]["message"].replace(
        unknown_id, "ID"
    )


async def test_analysts_cannot_guess_a_subject_only_referred_in_draft(world):
    # Given a subject whose only referral is a DRAFT (not shared with the analysts yet)
    subject = await create_subject(world)
    await actor(world, "caseworker").ok(
        "mutation($i: DraftReferralInput!) { draftReferral(input: $i) { referral { id } } }",
        {"i": {"subjectId": subject["id"], "reason": "RADICALISATION_CONCERN", "narrative": "n", "legalBasis": "b"}},
    )
    body = await actor(world, "analyst").gql("query($id: UUID!) { subject(id: $id) { id } }", {"id": subject["id"]})
    assert body == {"data": {"subject": None}}
