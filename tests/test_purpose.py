"""Purpose of use: an operation that reads personal data declares an allowed purpose, or is refused
with PURPOSE_REQUIRED before anything is read; `me` and the schema itself need none."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from cases import build_case
from helpers import CREATE_SUBJECT, codes, subject_input

SUBJECT = "query($id: UUID!) { subject(id: $id) { id givenName } }"


@contextmanager
def statements(engine):
    """The SQL statements sent while the block runs, but for the audit event of the refusal."""
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith("INSERT INTO audit_event"):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


@pytest.fixture
async def case(world):
    return await build_case(world)


async def test_reading_without_a_purpose_is_refused_before_any_database_read(world, services, case):
    # When a caseworker reads a subject without declaring why
    with statements(services.engine) as sql:
        body = await world.gql(world.token("caseworker"), SUBJECT, {"id": case.subject["id"]}, purpose=None)
    # Then the operation is refused as a whole, and not one statement reached the database
    assert body["data"] is None
    assert codes(body) == ["PURPOSE_REQUIRED"]
    assert set(body["errors"][0]["extensions"]["allowed"]) == {"CASE_SUPERVISION", "REFERRAL"}
    assert sql == []


@pytest.mark.parametrize(
    "role, purpose",
    [
        ("caseworker", "THREAT_ASSESSMENT"),  # another role's purpose
        ("analyst", "CASE_SUPERVISION"),
        ("dpo", "LOOKUP"),
        ("referral_officer", "CURIOSITY"),  # no such purpose
        ("referral_officer", "   "),
    ],
)
async def test_a_disallowed_purpose_is_refused(world, services, case, role, purpose):
    with statements(services.engine) as sql:
        body = await world.gql(world.token(role), SUBJECT, {"id": case.subject["id"]}, purpose=purpose)
    assert body["data"] is None and codes(body) == ["PURPOSE_REQUIRED"]
    assert sql == []


@pytest.mark.parametrize("role, purpose", [("caseworker", "REFERRAL"), ("referral_officer", "CASE_SUPERVISION")])
async def test_an_allowed_purpose_reads(world, case, role, purpose):
    data = await world.ok(world.token(role), SUBJECT, {"id": case.subject["id"]}, purpose=purpose)
    assert data["subject"]["givenName"] == "Robin"


async def test_a_change_without_a_purpose_writes_nothing(world, services):
    token = world.token("caseworker")
    with statements(services.engine) as sql:
        body = await world.gql(token, CREATE_SUBJECT, {"input": subject_input(world)}, purpose=None)
    assert body["data"] is None and codes(body) == ["PURPOSE_REQUIRED"] and sql == []


async def test_a_root_fragment_does_not_hide_the_need_for_a_purpose(world, case):
    body = await world.gql(
        world.token("dpo"),
        "query { ...Q } fragment Q on Query { ... on Query { subjects(first: 1) { pageInfo { hasNextPage } } } }",
        purpose=None,
    )
    assert body["data"] is None and codes(body) == ["PURPOSE_REQUIRED"]


@pytest.mark.parametrize(
    "query",
    [
        "query { me { id roles } }",
        "query { __typename }",
        "query { __schema { queryType { name } } }",
        'query { __type(name: "Subject") { fields { name } } }',
    ],
)
@pytest.mark.parametrize("role", ["caseworker", "partner", "admin"])
async def test_me_and_the_schema_need_no_purpose(world, role, query):
    assert await world.ok(world.token(role), query, purpose=None)


async def test_asking_for_me_with_data_still_needs_the_purpose(world, case):
    body = await world.gql(
        world.token("analyst"), "query($id: UUID!) { me { id } subject(id: $id) { id } }", {"id": case.subject["id"]},
        purpose=None,
    )
    assert body["data"] is None and codes(body) == ["PURPOSE_REQUIRED"]


async def test_fields_the_role_may_not_call_are_forbidden_rather_than_asking_for_a_purpose(world):
    # Admin may declare no purpose at all: what it may not call is simply FORBIDDEN
    body = await world.gql(world.token("admin"), "query { subjects { pageInfo { hasNextPage } } me { roles } }")
    assert body["data"] == {"subjects": None, "me": {"roles": ["admin"]}}
    assert codes(body) == ["FORBIDDEN"]


async def test_purpose_and_justification_reach_the_request_context(world, services, monkeypatch, case):
    # Given a way to see the context the endpoint builds for the operation
    seen = []
    execute = services.schema.execute

    async def spy(*args, **kwargs):
        seen.append(kwargs["context_value"])
        return await execute(*args, **kwargs)

    monkeypatch.setattr(services.schema, "execute", spy)

    # When an analyst reads with a purpose and a justification
    await world.ok(
        world.token("analyst"), "query { me { id } }", purpose="THREAT_ASSESSMENT",
        **{"Registry-Justification": "Quarterly review of the file."},
    )
    # Then both are on the context, for the audit trail
    (ctx,) = seen
    assert (ctx.purpose, ctx.justification) == ("THREAT_ASSESSMENT", "Quarterly review of the file.")
    assert ctx.break_glass is False


async def test_me_tells_which_purposes_a_role_may_declare(world):
    data = await world.ok(world.token("analyst"), "query { me { purposes permissions { purposes } } }", purpose=None)
    assert data["me"]["purposes"] == data["me"]["permissions"]["purposes"] == ["BREAK_GLASS", "THREAT_ASSESSMENT"]
