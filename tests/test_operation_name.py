"""The operation name recorded in audit events is the one executed, also when the client does not
send `operationName` (curl, scripts): the DPO finds requests by operation either way."""

from __future__ import annotations

from audit_support import call, events_of
from helpers import create_subject

NAMED = "query UnitSubjects($unit: String!) { subjects(first: 5, filter: {institution: $unit}) { edges { node { id givenName } } } }"
ANONYMOUS = "query($unit: String!) { subjects(first: 5, filter: {institution: $unit}) { edges { node { id givenName } } } }"
TWO = NAMED + "\nquery Other { me { id } }"
CHANGE = "mutation Rename($input: UpdateSubjectInput!) { updateSubject(input: $input) { subject { id version } } }"


async def operations(services, rid: str) -> set:
    return {event.operation for event in await events_of(services, rid)}


async def test_the_name_comes_from_the_document_when_the_request_sends_none(world, services):
    await create_subject(world)
    caseworker = world.token("caseworker")
    for _ in range(2):  # the second time the compiled read answers: the same name
        body, rid = await call(world, caseworker, NAMED, {"unit": world.unit})
        assert "errors" not in body
        assert await operations(services, rid) == {"UnitSubjects"}


async def test_the_name_sent_is_recorded_and_selects_among_several(world, services):
    await create_subject(world)
    body, rid = await call(world, world.token("caseworker"), TWO, {"unit": world.unit}, operation="UnitSubjects")
    assert "errors" not in body
    assert await operations(services, rid) == {"UnitSubjects"}


async def test_an_anonymous_operation_records_no_name(world, services):
    await create_subject(world)
    body, rid = await call(world, world.token("caseworker"), ANONYMOUS, {"unit": world.unit})
    assert "errors" not in body
    assert await operations(services, rid) == {None}


async def test_a_change_without_operation_name_records_the_mutation_name(world, services):
    subject = await create_subject(world)
    officer = world.token("referral_officer")
    variables = {"input": {"id": subject["id"], "expectedVersion": 1, "givenName": "Sam"}}
    body, rid = await call(world, officer, CHANGE, variables)
    assert "errors" not in body
    assert await operations(services, rid) == {"Rename"}
