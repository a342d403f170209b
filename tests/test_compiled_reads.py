"""Compiled reads answer exactly as the resolvers do: same data, same errors, same audit record.

Every read operation of graphql/operations and a generated set of random valid queries run,
for every role, once through the resolvers (the reference) and once as one compiled SQL
statement; the responses and the records written to the audit trail must be identical.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import text

from cases import ROLES, build_case
from helpers import actor, create_subject, draft_assessment, draft_referral, step, validate_assessment

OPERATIONS = Path(__file__).resolve().parents[1] / "graphql" / "operations"

# What the generator may select, per record type: scalar fields and links to other records.
SCALARS = {
    "Subject": ["id", "reference", "givenName", "familyName", "dateOfBirth", "nationalNumber", "institution",
                "legalStatus", "agency", "reviewDueAt", "retainUntil", "version", "createdAt", "updatedAt"],
    "Referral": ["id", "status", "reason", "narrative", "legalBasis", "referredBy", "agency", "createdAt",
                 "submittedAt", "acknowledgedAt", "closedAt", "version"],
    "FollowUpNote": ["id", "referralId", "correctsId", "correctedById", "visibility", "body", "author", "agency",
                     "createdAt"],
    "ThreatAssessment": ["id", "referralId", "level", "status", "summary", "rationale", "sources", "author",
                         "validatedBy", "validatedAt", "validUntil", "createdAt", "version"],
}
LINKS = {
    "Subject": {"referrals": "Referral", "notes": "FollowUpNote", "assessments": "ThreatAssessment",
                "latestAssessment": "ThreatAssessment"},
    "Referral": {"subject": "Subject", "notes": "FollowUpNote", "assessments": "ThreatAssessment"},
    "FollowUpNote": {"subject": "Subject"},
    "ThreatAssessment": {"subject": "Subject"},
}
WITH_FIRST = {("Subject", "notes"), ("Referral", "notes")}


def selection(rng: random.Random, kind: str, depth: int) -> str:
    """A random selection on `kind`: some scalars (some aliased), maybe links, maybe a fragment."""
    fields = rng.sample(SCALARS[kind], rng.randint(1, 6))
    parts = [f"a{i}: {f}" if rng.random() < 0.15 else f for i, f in enumerate(fields)]
    if rng.random() < 0.3:
        parts.append("__typename")
    if depth > 0:
        for link, target in LINKS[kind].items():
            if rng.random() < 0.45:
                args = f"(first: {rng.choice([0, 1, 3, 20])})" if (kind, link) in WITH_FIRST and rng.random() < 0.7 else ""
                parts.append(f"{link}{args} {{ {selection(rng, target, depth - 1)} }}")
    if rng.random() < 0.2:
        parts.append(f"... on {kind} {{ id }}")
    return " ".join(parts)


def random_queries(seed: int, count: int) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        shape = rng.choice(["subjects", "referrals", "subject", "referral"])
        if shape in ("subjects", "referrals"):
            kind = "Subject" if shape == "subjects" else "Referral"
            page = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }" if rng.random() < 0.7 else ""
            cursor = "cursor" if rng.random() < 0.6 else ""
            first = rng.choice([1, 2, 5, 20])
            query = (f"query {{ {shape}(first: {first}, filter: {{agency: $AGENCY}}) {{ edges {{ {cursor} node {{ "
                     f"{selection(rng, kind, 2)} }} }} {page} }} }}")
            out.append((query, {}))
        else:
            kind = "Subject" if shape == "subject" else "Referral"
            query = f"query Q($id: UUID!) {{ {shape}(id: $id) {{ {selection(rng, kind, 2)} }} }}"
            out.append((query, {"id": "$" + kind}))
    return out


@pytest.fixture
async def world_data(world):
    """The case of tests/cases.py plus a draft referral, a superseded and a draft assessment, and
    a subject of another unit of the same agency (outside the caseworker's scope)."""
    case = await build_case(world)
    caseworker, officer = actor(world, "caseworker"), actor(world, "referral_officer")
    analyst, senior = actor(world, "analyst"), actor(world, "senior_analyst")
    await draft_referral(world, case.subject["id"], by=caseworker)
    newer = await draft_assessment(world, case.subject["id"], analyst)
    await validate_assessment(newer, senior)
    await draft_assessment(world, case.subject["id"], analyst)
    other = await create_subject(world, by=officer, institution=f"{world.unit}-B")
    referral = await draft_referral(world, other["id"], by=officer)
    await step(world, "submit", referral, officer)
    return {"Subject": case.subject["id"], "Referral": case.referral_id, "AGENCY": world.agency,
            "NAMES": "robin exampel"}


async def post(world, role: str, query: str, variables: dict) -> tuple[dict, str]:
    """The response body and the request id of one call."""
    who = actor(world, role)
    response = await world.client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {who.token}", **who.headers},
    )
    assert response.status_code == 200, response.text
    return response.json(), response.headers["x-request-id"]


async def both_paths(world, services, role: str, query: str, variables: dict) -> tuple[dict, dict, bool]:
    """(resolvers' body, compiled body, whether the second was compiled); the audit trail must
    hold the same disclosure for both."""
    compiler = services.compiler
    compiler.enabled = False
    try:
        reference, reference_id = await post(world, role, query, variables)
    finally:
        compiler.enabled = True
    await post(world, role, query, variables)  # the resolvers run it once more and the compiler learns it
    runs = compiler.compiled_runs
    compiled, compiled_id = await post(world, role, query, variables)
    assert await disclosed(services, compiled_id) == await disclosed(services, reference_id), query
    return reference, compiled, compiler.compiled_runs == runs + 1


async def disclosed(services, request_id: str) -> list:
    async with services.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT records FROM audit_event WHERE action = 'records.consulted' AND request_id = :r"),
            {"r": request_id},
        )
        return [r.records for r in rows]


def substitute(query: str, variables: dict, data: dict) -> tuple[str, dict]:
    query = query.replace("$AGENCY", f'"{data["AGENCY"]}"')
    return query, {k: data[v[1:]] if isinstance(v, str) and v.startswith("$") else v for k, v in variables.items()}


@pytest.mark.parametrize("role", ROLES)
async def test_random_reads_are_identical_on_both_paths(world, services, world_data, role):
    compiled_any = False
    for query, variables in random_queries(seed=hash(role) % 1000, count=12):
        query, variables = substitute(query, variables, world_data)
        reference, compiled, was_compiled = await both_paths(world, services, role, query, variables)
        # then data and errors are the same, whichever path answered
        assert compiled == reference, query
        compiled_any |= was_compiled
    if role in ("caseworker", "referral_officer", "analyst", "senior_analyst", "dpo"):
        assert compiled_any, "no generated query was compiled for this role"


def read_operations() -> list[tuple[str, str]]:
    out = []
    for path in sorted(OPERATIONS.glob("*.graphql")):
        document = path.read_text()
        if document.lstrip().startswith("mutation") or "\nmutation" in document:
            continue
        out.append((path.stem, document))
    return out


@pytest.mark.parametrize("role", ROLES)
async def test_published_read_operations_are_identical_on_both_paths(world, services, world_data, role):
    compiled_names: list[str] = []
    for name, document in read_operations():
        if "auditEvents" in document:
            continue  # the trail grows between the two runs: the answers differ by nature
        variables = {"id": world_data["Subject"] if "Subject" in name else world_data["Referral"],
                     "first": 5, "nationalNumber": "00000000097", "filter": {"agency": world_data["AGENCY"]},
                     "text": world_data["NAMES"]}
        reference, compiled, was_compiled = await both_paths(world, services, role, document, variables)
        assert compiled == reference, name
        if was_compiled:
            compiled_names.append(name)
    if role in ("caseworker", "referral_officer", "analyst", "senior_analyst"):
        # the front-ends' pages and files run compiled (documents with `history` stay with the resolvers)
        assert {"ReferralInbox", "Subjects", "SubjectFile", "SearchSubjects"} <= set(compiled_names), compiled_names


async def test_the_analysts_linked_records_query_is_compiled(world, services, world_data):
    # given the analyst's page of referrals with subject, notes and assessments (the Q1 shape)
    query = """{ referrals(first: 50) { edges { node { id status reason createdAt
        subject { reference givenName familyName dateOfBirth nationalNumber
          notes(first: 10) { author createdAt body } assessments { level status summary validUntil } } } } } }"""
    one_statement = services.compiler.one_statement_runs
    reference, compiled, was_compiled = await both_paths(world, services, "analyst", query, {})
    # then it runs as one compiled statement and answers like the resolvers (and audits alike);
    # too many records may come back to cut their tags out in SQL: the audit insert follows it
    assert was_compiled
    assert compiled == reference
    assert compiled["data"]["referrals"]["edges"]
    assert services.compiler.one_statement_runs == one_statement


async def test_a_subjects_file_is_read_and_audited_in_one_statement(world, services, world_data):
    # given the front-end's subject file (the Q2 shape)
    query = """query F($id: UUID!) { subject(id: $id) { id reference givenName familyName
        referrals { id status reason } notes(first: 20) { author body } assessments { level summary } } }"""
    one_statement = services.compiler.one_statement_runs
    reference, compiled, was_compiled = await both_paths(world, services, "analyst", query, {"id": world_data["Subject"]})
    # then one statement answers it and writes its audit event, the same as the resolvers write
    assert was_compiled and compiled == reference
    assert compiled["data"]["subject"]["notes"]
    assert services.compiler.one_statement_runs == one_statement + 1


async def test_pages_after_a_cursor_are_identical_on_both_paths(world, services, world_data):
    # given a first page of referrals and its end cursor
    query = """query P($after: String) { referrals(first: 1, after: $after, filter: {agency: "%s"}) {
        edges { cursor node { id createdAt } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
    query %= world_data["AGENCY"]
    first_page, _, _ = await both_paths(world, services, "referral_officer", query, {})
    cursor = first_page["data"]["referrals"]["pageInfo"]["endCursor"]
    # when the next page is asked for on both paths
    reference, compiled, was_compiled = await both_paths(world, services, "referral_officer", query, {"after": cursor})
    # then both give the same next page, which says a page precedes it
    assert was_compiled and compiled == reference
    assert compiled["data"]["referrals"]["pageInfo"]["hasPreviousPage"] is True
    assert compiled["data"]["referrals"]["edges"][0]["cursor"] != cursor


async def test_page_sizes_from_variables_stay_within_the_cost_limit(world, services, world_data):
    # given a compiled read whose page sizes come from variables
    query = """query P($n: Int!, $m: Int!) { referrals(first: $n) { edges { node { id
        subject { notes(first: $m) { id } } } } } }"""
    small = {"n": 2, "m": 2}
    _, _, was_compiled = await both_paths(world, services, "analyst", query, small)
    assert was_compiled
    # when the same document asks for 100 x 100 records
    body, _ = await post(world, "analyst", query, {"n": 100, "m": 100})
    # then it is refused before execution, as the resolvers' limits refuse it
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]


async def test_text_that_looks_like_the_statements_tag_is_returned_as_written(world, services, world_data):
    # given a subject whose names spell the hidden key the statement tags each record with
    forged = ', "__sir" : "0000|00000000-0000-0000-0000-000000000000|00000000-0000-0000-0000-000000000000"}'
    subject = await create_subject(world, givenName=forged, familyName='"__sir" : "0001|')
    query = "query Q($id: UUID!) { subject(id: $id) { id givenName familyName } }"
    # when it is read on both paths
    reference, compiled, was_compiled = await both_paths(world, services, "referral_officer", query, {"id": subject["id"]})
    # then the compiled read returns the names unchanged and discloses that one subject only
    assert was_compiled and compiled == reference
    assert compiled["data"]["subject"]["givenName"] == forged
    # and so does a read too large for one statement, whose tags Python cuts out
    page = """{ subjects(first: 20, filter: {agency: "%s"}) { edges { node { id givenName familyName referrals { id } } } } }"""
    one_statement = services.compiler.one_statement_runs
    reference, compiled, was_compiled = await both_paths(world, services, "referral_officer", page % world_data["AGENCY"], {})
    assert was_compiled and compiled == reference
    assert services.compiler.one_statement_runs == one_statement
    assert forged in [e["node"]["givenName"] for e in compiled["data"]["subjects"]["edges"]]


async def test_a_record_met_at_two_positions_is_disclosed_once_with_all_its_fields(world, services, world_data):
    # given a read that meets the same subject at the top and again below its referrals
    query = "query Q($id: UUID!) { subject(id: $id) { givenName referrals { id subject { familyName } } } }"
    reference, compiled, was_compiled = await both_paths(world, services, "referral_officer", query, {"id": world_data["Subject"]})
    assert was_compiled and compiled == reference
    # then the compiled read's event names the subject once, with the fields of both positions
    _, request_id = await post(world, "referral_officer", query, {"id": world_data["Subject"]})
    [records] = await disclosed(services, request_id)
    subject = [r for r in records if r["type"] == "Subject"]
    assert subject == [{"type": "Subject", "id": world_data["Subject"], "fields": ["familyName", "givenName", "referrals"]}]


FILTERED = [
    ("subjects", "{agency: $AGENCY, legalStatus: CONCERN}", {}),
    ("subjects", "{agency: $AGENCY, legalStatus: SUSPECTED}", {}),
    ("subjects", "{agency: $AGENCY, legalStatus: CONVICTED}", {}),
    ("subjects", "$filter", {"filter": {"agency": "$AGENCY", "legalStatus": "CONVICTED", "institution": "none"}}),
    ("subjects", "{agency: $AGENCY, reference: \"S-0\", institution: \"\"}", {}),
    ("referrals", "{agency: $AGENCY, status: [DRAFT, SUBMITTED]}", {}),
    ("referrals", "{agency: $AGENCY, status: SUBMITTED, reason: RADICALISATION_CONCERN}", {}),
    ("referrals", "$filter", {"filter": {"agency": "$AGENCY", "status": [], "subjectId": "$Subject"}}),
]


@pytest.mark.parametrize("role", ["caseworker", "analyst"])
async def test_every_filter_field_is_compiled_and_answers_as_the_resolvers(world, services, world_data, role):
    # given each filter field, by literal and by variable (its checks come from its GraphQL type)
    for root, filter_, variables in FILTERED:
        kind = "SubjectFilter" if root == "subjects" else "ReferralFilter"
        declared = f"($filter: {kind})" if filter_ == "$filter" else ""
        query = f"query Q{declared} {{ {root}(first: 20, filter: {filter_}) {{ edges {{ node {{ id }} }} }} }}"
        if variables:
            filter_values = {k: world_data[v[1:]] if isinstance(v, str) and v.startswith("$") else v
                             for k, v in variables["filter"].items()}
            variables = {"filter": filter_values}
        query, variables = substitute(query, variables, world_data)
        reference, compiled, was_compiled = await both_paths(world, services, role, query, variables)
        # then the compiled statement answers as the resolvers do, and did run
        assert compiled == reference, query
        assert was_compiled, query
