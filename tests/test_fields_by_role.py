"""Every role reads exactly the fields DESIGN.md section 5 gives it, field by field, through HTTP.

The expectation below is written by hand from DESIGN.md (and, for fields its table does not
list, from the decisions recorded in auth/policy.toml's header), never derived from the policy:
a wrong policy fails here. The queries are generated from the schema, so a new field cannot
slip through untested.
"""

from __future__ import annotations

import uuid

import pytest
from graphql import GraphQLObjectType, get_named_type

from cases import ROLES, build_case, forbidden_fields
from helpers import actor, codes
from registry.access.policy import Policy

AGENCY = {"caseworker", "referral_officer"}
ANALYSTS = {"analyst", "senior_analyst"}
CASE = AGENCY | ANALYSTS  # the roles that work on cases
META = CASE | {"dpo"}  # record metadata: the dpo too
NONE: set[str] = set()


def rows(roles: set[str], *fields: str) -> dict[str, set[str]]:
    return {f: roles for f in fields}


# DESIGN.md section 5, "Field rules", one line per row of the table.
DESIGN_TABLE: dict[str, dict[str, set[str]]] = {
    "Subject": {
        **rows(META, "id", "reference", "reviewDueAt", "version"),
        **rows(CASE, "givenName", "familyName", "dateOfBirth", "institution", "legalStatus"),
        **rows({"referral_officer"} | ANALYSTS, "nationalNumber"),
    },
    "Referral": {
        **rows(META, "id", "status", "reason", "legalBasis", "createdAt", "submittedAt"),
        **rows(CASE, "narrative"),
        **rows({"referral_officer", "dpo"} | ANALYSTS, "referredBy"),
    },
    "FollowUpNote": {
        **rows(META, "id", "visibility", "createdAt"),
        **rows(CASE, "body", "author"),
    },
    "ThreatAssessment": {
        **rows(META, "id", "status"),
        **rows(CASE, "level", "validUntil", "summary"),
        **rows(ANALYSTS, "rationale", "sources", "author", "validatedBy"),
    },
}
AUDIT_EVENT_READERS = {"dpo"}  # "AuditEvent (all fields)": checked once the type is in the schema

# Fields the DESIGN table does not list: the decisions recorded in auth/policy.toml.
DECISIONS: dict[str, dict[str, set[str]]] = {
    "Subject": {
        **rows(META, "agency", "retainUntil", "createdAt", "updatedAt"),  # metadata
        **rows(META, "referrals", "notes", "assessments", "latestAssessment", "history"),  # links
    },
    "Referral": {
        **rows(META, "agency", "acknowledgedAt", "closedAt", "version"),
        **rows(META, "subject", "notes", "assessments", "history"),
    },
    "FollowUpNote": {
        **rows(META, "agency", "referralId", "correctsId", "correctedById", "subject"),
    },
    "ThreatAssessment": {
        **rows(META, "referralId", "validatedAt", "createdAt", "version", "subject", "history"),
    },
    # Who wrote a version follows the author rule of the record type.
    "SubjectRevisionInfo": rows(META, "version", "changedAt", "changedBy", "changedFields"),
    "ReferralRevisionInfo": {
        **rows(META, "version", "changedAt", "changedFields"),
        "changedBy": {"referral_officer", "dpo"} | ANALYSTS,  # like Referral.referredBy
    },
    "AssessmentRevisionInfo": {
        **rows(META, "version", "changedAt", "changedFields"),
        "changedBy": ANALYSTS,  # like ThreatAssessment.author
    },
}


def expected() -> dict[str, dict[str, set[str]]]:
    out: dict[str, dict[str, set[str]]] = {}
    for table in (DESIGN_TABLE, DECISIONS):
        for type_name, fields in table.items():
            for field, roles in fields.items():
                assert field not in out.get(type_name, {}), f"{type_name}.{field} decided twice"
                out.setdefault(type_name, {})[field] = set(roles)
    return out


EXPECTED = expected()

# DESIGN section 5 "Writes" and section 7 "Queries" (partner: hit/no-hit only; admin: nothing personal).
READS = {"me", "subject", "subjects", "referral", "referrals"}
SEARCH = {"searchSubjects"}  # section 8: the roles that read names search them; the dpo reads none
QUERIES = {
    "caseworker": READS | SEARCH,
    "referral_officer": READS | SEARCH,
    "analyst": READS | SEARCH,
    "senior_analyst": READS | SEARCH,
    "dpo": READS | {"auditEvents"},  # section 6: the DPO queries the audit trail
    "partner": {"me", "lookupSubject"},
    "admin": {"me"},
}
NOTES = {"addNote", "correctNote"}
MUTATIONS = {
    "caseworker": {"createSubject", "updateSubject", "draftReferral"} | NOTES,
    "referral_officer": {"createSubject", "updateSubject", "draftReferral", "submitReferral", "closeReferral"} | NOTES,
    "analyst": {"acknowledgeReferral", "draftAssessment", "updateAssessment"} | NOTES,
    "senior_analyst": {"acknowledgeReferral", "draftAssessment", "updateAssessment", "validateAssessment"} | NOTES,
    "dpo": {"reviewBreakGlass"},  # section 6: reviews break-glass access
    "partner": set(),
    "admin": set(),
}


@pytest.fixture
def policy(services) -> Policy:
    """The policy the running service enforces."""
    return services.policy


def object_types(services) -> dict[str, GraphQLObjectType]:
    return {n: t for n, t in services.schema._schema.type_map.items() if isinstance(t, GraphQLObjectType)}


# --------------------------------------------------------------------------- the policy, cell by cell


def test_the_policy_grants_exactly_the_hand_written_table(services, policy):
    # Given every field of the record types as the schema has them
    types = object_types(services)
    for type_name, decided in EXPECTED.items():
        # Then each field has a hand-written decision, and the policy grants exactly it
        assert set(types[type_name].fields) == set(decided), f"{type_name}: fields without a hand decision"
        for field, roles in decided.items():
            assert set(policy.readers(type_name, field)) == roles, f"{type_name}.{field}"
    if "AuditEvent" in types:
        for field in types["AuditEvent"].fields:
            assert set(policy.readers("AuditEvent", field)) == AUDIT_EVENT_READERS, f"AuditEvent.{field}"


def test_every_role_calls_exactly_the_queries_and_mutations_of_the_design(policy):
    for role in ROLES:
        grants = policy.grants([role])
        assert grants.queries == QUERIES[role], role
        assert grants.mutations == MUTATIONS[role], role


def test_partner_and_admin_read_no_record_type(services, policy):
    for role in ("partner", "admin"):
        for type_name in EXPECTED:
            readable = [f for f in object_types(services)[type_name].fields if policy.grants([role]).may_read(type_name, f)]
            assert readable == [], (role, type_name)


# --------------------------------------------------------------------------- through HTTP, every role


def selection(type_: GraphQLObjectType) -> str:
    """Every field of the type: leaves by name, linked records by `__typename` (their own rules apply)."""
    parts = []
    for name, field in type_.fields.items():
        parts.append(f"{name} {{ __typename }}" if isinstance(get_named_type(field.type), GraphQLObjectType) else name)
    return " ".join(parts)


def matrix_query(types: dict[str, GraphQLObjectType]) -> str:
    revision = lambda t: f"history {{ revision {{ {selection(types[t])} }} }}"  # noqa: E731
    return f"""
query($subject: UUID!, $referral: UUID!) {{
  subject(id: $subject) {{
    {selection(types["Subject"])}
    s: history {{ revision {{ {selection(types["SubjectRevisionInfo"])} }} }}
    n: notes(first: 100) {{ {selection(types["FollowUpNote"])} }}
    a: assessments {{ {selection(types["ThreatAssessment"])} {revision("AssessmentRevisionInfo")} }}
  }}
  referral(id: $referral) {{
    {selection(types["Referral"])}
    r: history {{ revision {{ {selection(types["ReferralRevisionInfo"])} }} }}
  }}
}}"""


def values(data: dict, type_name: str) -> list[dict]:
    """The objects of `type_name` in the matrix response."""
    subject, referral = data.get("subject"), data.get("referral")
    if subject is None:
        return []
    return {
        "Subject": [subject],
        "Referral": [referral] if referral else [],
        "FollowUpNote": subject["n"],
        "ThreatAssessment": subject["a"],
        "SubjectRevisionInfo": [h["revision"] for h in subject["s"]],
        "ReferralRevisionInfo": [h["revision"] for h in referral["r"]] if referral else [],
        "AssessmentRevisionInfo": [h["revision"] for a in subject["a"] for h in a["history"]],
    }[type_name]


# Empty in this case although readable (no retention date is set before erasure is planned).
EMPTY_IN_CASE = {"Subject.retainUntil"}


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_gets_exactly_its_fields(world, services, role):
    # Given a demo-like case: every kind of record, every field filled
    case = await build_case(world)

    # When the role asks for every field of every record type
    types = object_types(services)
    body = await actor(world, role).gql(matrix_query(types), {"subject": case.subject["id"], "referral": case.referral_id})

    # Then every error is a FORBIDDEN naming a field, once per field
    assert set(codes(body)) <= {"FORBIDDEN"}, body.get("errors")
    refused = forbidden_fields(body)
    assert len(refused) == len(set(refused)), "one FORBIDDEN error per field per response"
    data = body["data"]

    if role in ("partner", "admin"):
        # Partner and admin get no record at all: the root fields themselves are refused
        assert data == {"subject": None, "referral": None}
        assert set(refused) == {"Query.subject", "Query.referral"}
        return

    # And each field is readable exactly as the hand-written table says
    for type_name, decided in EXPECTED.items():
        objects = values(data, type_name)
        assert objects, f"{role} should see some {type_name} in the case"
        for field, readers in decided.items():
            name = f"{type_name}.{field}"
            got = [o[field] for o in objects]
            if role in readers:
                assert name not in refused, f"{role} may read {name}"
                if name not in EMPTY_IN_CASE:
                    assert any(v not in (None, []) for v in got), f"{role} should get a value for {name}"
            else:
                assert all(v is None for v in got), f"{role} must not read {name}: {got}"
                assert name in refused, f"{role}: {name} is null without a FORBIDDEN error"
    # And nothing else is refused
    assert set(refused) <= {f"{t}.{f}" for t, fs in EXPECTED.items() for f, r in fs.items() if role not in r}


MUTATION_INPUTS = {
    "createSubject": ("CreateSubjectInput", {
        "givenName": "A", "familyName": "B", "dateOfBirth": "2011-01-01", "nationalNumber": "00000000000",
        "institution": "X", "legalStatus": "CONCERN",
    }),
    "updateSubject": ("UpdateSubjectInput", {"id": None, "expectedVersion": 1}),
    "draftReferral": ("DraftReferralInput", {
        "subjectId": None, "reason": "RADICALISATION_CONCERN", "narrative": "n", "legalBasis": "b",
    }),
    "submitReferral": ("ReferralTransitionInput", {"id": None, "expectedVersion": 1}),
    "acknowledgeReferral": ("ReferralTransitionInput", {"id": None, "expectedVersion": 1}),
    "closeReferral": ("ReferralTransitionInput", {"id": None, "expectedVersion": 1}),
    "addNote": ("AddNoteInput", {"subjectId": None, "body": "b"}),
    "correctNote": ("CorrectNoteInput", {"noteId": None, "body": "b"}),
    "draftAssessment": ("DraftAssessmentInput", {"subjectId": None, "level": "LOW", "summary": "s", "rationale": "r"}),
    "updateAssessment": ("UpdateAssessmentInput", {"id": None, "expectedVersion": 1}),
    "validateAssessment": ("ValidateAssessmentInput", {"id": None, "expectedVersion": 1}),
    "reviewBreakGlass": ("ReviewBreakGlassInput", {"eventId": None, "note": "Reviewed with the unit head."}),
}


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_calls_exactly_its_mutations(world, services, role):
    assert set(MUTATION_INPUTS) == set(object_types(services)["Mutation"].fields)
    who = actor(world, role)
    for name, (input_type, template) in MUTATION_INPUTS.items():
        # When the role calls the mutation on records that do not exist
        variables = {k: (str(uuid.uuid4()) if v is None else v) for k, v in template.items()}
        body = await who.gql(
            f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ __typename }} }}", {"input": variables}
        )
        # Then a mutation the role may not call is FORBIDDEN before anything runs (admin, with
        # no purpose to declare, is stopped even earlier); an allowed one gets to the domain
        if name in MUTATIONS[role]:
            assert f"Mutation.{name}" not in forbidden_fields(body), (role, name, body)
            assert codes(body) and set(codes(body)) <= {"NOT_FOUND", "BAD_USER_INPUT"}, (role, name, body)
        else:
            assert body["data"] is None
            assert forbidden_fields(body) == [f"Mutation.{name}"], (role, name, body)


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_calls_exactly_its_queries(world, role):
    calls = {
        "me": "me { id }",
        "subject": f'subject(id: "{uuid.uuid4()}") {{ id }}',
        "subjects": "subjects(first: 1) { pageInfo { hasNextPage } }",
        "referral": f'referral(id: "{uuid.uuid4()}") {{ id }}',
        "referrals": "referrals(first: 1) { pageInfo { hasNextPage } }",
        "lookupSubject": 'lookupSubject(nationalNumber: "00000000097") { outcome }',
        "auditEvents": "auditEvents(first: 1) { pageInfo { hasNextPage } }",
    }
    who = actor(world, role)
    for name, call in calls.items():
        body = await who.gql(f"query {{ {call} }}")
        if name in QUERIES[role]:
            assert "errors" not in body, (role, name, body)
        else:
            assert body["data"] == {name: None}
            assert forbidden_fields(body) == [f"Query.{name}"], (role, name, body)
