"""No document outside the limits reaches a resolver: abuse documents are refused before execution,
each with its code, and cost nothing (no field resolved, no SQL statement sent)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from helpers import actor, codes, create_subject
from registry.api.field_guard import FieldGuard

ZERO = "00000000-0000-0000-0000-000000000000"


@contextmanager
def nothing_runs(services, monkeypatch):
    """Counts SQL statements sent by the service and fields resolved (every field passes the FieldGuard)."""
    seen = {"sql": 0, "fields": 0}
    resolve = FieldGuard.resolve

    def counting(self, _next, root, info, *args, **kwargs):
        seen["fields"] += 1
        return resolve(self, _next, root, info, *args, **kwargs)

    def statement(*_args):
        seen["sql"] += 1

    monkeypatch.setattr(FieldGuard, "resolve", counting)
    event.listen(services.engine.sync_engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", statement)


def nested(levels: int) -> str:
    """subject -> referrals -> subject -> ... `levels` fields deep."""
    inner, opened = "id", 1
    selection = f'subject(id: "{ZERO}") {{ '
    while opened < levels:
        selection += "referrals { " if opened % 2 else "subject { "
        opened += 1
    return "{ " + selection + inner + " }" * levels + " }"


CYCLE = """
query { ...A }
fragment A on Query { ...B me { id } }
fragment B on Query { ...A }
"""

BOMB = (
    "query { ...F0 } "
    + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(30))
    + " fragment F30 on Query { subjects(first: 100) { edges { node { id } } } }"
)

ABUSE = {
    # name: (document, variables, code)
    "20-level nesting": (nested(20), None, "QUERY_TOO_COMPLEX"),
    "1,000 aliases of one field": ("{ " + " ".join(f"a{i}: me {{ id }}" for i in range(1000)) + " }", None, "QUERY_TOO_COMPLEX"),
    "31 aliases": ("{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }", None, "QUERY_TOO_COMPLEX"),
    "first: 100000": ("{ subjects(first: 100000) { edges { node { id } } } }", None, "QUERY_TOO_COMPLEX"),
    "first: 100000 in a variable": (
        "query($n: Int!) { referrals(first: $n) { edges { node { id } } } }", {"n": 100000}, "QUERY_TOO_COMPLEX"
    ),
    "first: 100000 in a variable's default": (
        "query($n: Int = 100000) { subjects(first: $n) { edges { node { id } } } }", None, "QUERY_TOO_COMPLEX"
    ),
    "first: 1e5 as a float variable": (
        "query($n: Int!) { subjects(first: $n) { edges { node { id } } } }", {"n": 1e5}, "QUERY_TOO_COMPLEX"
    ),
    "a linked list's first: 1000": (f'{{ subject(id: "{ZERO}") {{ notes(first: 1000) {{ id }} }} }}', None, "QUERY_TOO_COMPLEX"),
    "first: -1": ("{ subjects(first: -1) { edges { node { id } } } }", None, "BAD_USER_INPUT"),
    "100 x 100 records": (
        "{ subjects(first: 100) { edges { node { notes(first: 100) { id } } } } }", None, "QUERY_TOO_COMPLEX"
    ),
    "fragment cycle": (CYCLE, None, "BAD_USER_INPUT"),
    "fragment bomb": (BOMB, None, "QUERY_TOO_COMPLEX"),
    "the same field 1,500 times": ("{ me { " + " ".join("id" for _ in range(1500)) + " } }", None, "QUERY_TOO_COMPLEX"),
    "too many tokens": ("{ me { " + " ".join("id" for _ in range(1000)) + " roles" * 1000 + " } }", None, "QUERY_TOO_COMPLEX"),
}


async def post(world, token: str, body, purpose: str = "CASE_SUPERVISION"):
    return await world.client.post(
        "/graphql", json=body, headers={"Authorization": f"Bearer {token}", "Registry-Purpose": purpose}
    )


@pytest.mark.parametrize("name", ABUSE)
async def test_an_abuse_document_is_refused_before_execution(world, services, monkeypatch, name):
    # Given a referral officer who may otherwise read subjects
    document, variables, code = ABUSE[name]
    token = world.token("referral_officer")

    # When the document is sent
    with nothing_runs(services, monkeypatch) as seen:
        response = await post(world, token, {"query": document, "variables": variables})

    # Then it is refused with its code, as a GraphQL error (HTTP 200) without data
    assert response.status_code == 200, response.text
    body = response.json()
    assert codes(body) == [code], body
    assert body.get("data") is None
    # And nothing ran: no field resolved, no SQL statement sent
    assert seen == {"sql": 0, "fields": 0}


async def test_an_unknown_operation_name_is_bad_input_not_a_server_error(world, services, monkeypatch):
    body = {"query": "query A { me { id } } query B { me { id } }", "operationName": "C"}
    with nothing_runs(services, monkeypatch) as seen:
        response = await post(world, world.token("caseworker"), body)
    assert response.status_code == 200 and codes(response.json()) == ["BAD_USER_INPUT"]
    assert seen == {"sql": 0, "fields": 0}


@pytest.mark.parametrize("name", ["20-level nesting", "first: 100000", "100 x 100 records", "31 aliases"])
async def test_a_refusal_says_which_limit_and_its_value(world, name):
    document, variables, _ = ABUSE[name]
    body = (await post(world, world.token("referral_officer"), {"query": document, "variables": variables})).json()
    extensions = body["errors"][0]["extensions"]
    assert extensions["limit"] in {"depth", "pageSize", "cost", "aliases"} and extensions["max"] > 0
    assert extensions["found"] > extensions["max"]


async def test_a_one_megabyte_query_is_refused_before_it_is_read(world, services, monkeypatch):
    # When a 1 MB document is sent
    query = "{ me { id } }" + " " * (1024 * 1024)
    with nothing_runs(services, monkeypatch) as seen:
        response = await post(world, world.token("caseworker"), {"query": query})

    # Then the body is refused as too large, with a code
    assert response.status_code == 413
    assert codes(response.json()) == ["QUERY_TOO_COMPLEX"]
    assert seen == {"sql": 0, "fields": 0}


async def test_a_batch_of_500_operations_is_refused_whole(world, services, monkeypatch):
    # When 500 harmless operations are sent in one batch
    with nothing_runs(services, monkeypatch) as seen:
        response = await post(world, world.token("caseworker"), [{"query": "{ me { id } }"}] * 500)

    # Then none runs: one error, HTTP 200
    assert response.status_code == 200
    body = response.json()
    assert codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["errors"][0]["extensions"]["found"] == 500
    assert seen == {"sql": 0, "fields": 0}


async def test_a_batch_within_the_limit_runs_each_operation(world):
    response = await post(world, world.token("caseworker"), [{"query": "{ me { roles } }"}] * 10)
    assert response.status_code == 200
    assert response.json() == [{"data": {"me": {"roles": ["caseworker"]}}}] * 10


async def test_one_refused_operation_in_a_batch_does_not_stop_the_others(world):
    body = [{"query": "{ me { roles } }"}, {"query": ABUSE["20-level nesting"][0]}]
    results = (await post(world, world.token("caseworker"), body)).json()
    assert results[0] == {"data": {"me": {"roles": ["caseworker"]}}}
    assert codes(results[1]) == ["QUERY_TOO_COMPLEX"]


async def test_documents_inside_the_limits_run(world):
    # Given a subject of the officer's agency
    officer = actor(world, "referral_officer")
    subject = await create_subject(world, by=officer)

    # When a page of the maximum size is asked for, with linked records
    page = await officer.ok(
        "query($f: String) { subjects(first: 100, filter: {reference: $f}) "
        "{ edges { node { id notes(first: 20) { id } referrals { id } } } } }",
        {"f": subject["reference"]},
    )
    # And a query 12 levels deep
    deep = await officer.ok(
        "query($id: UUID!) { subject(id: $id) { referrals { subject { latestAssessment { subject { latestAssessment "
        "{ subject { latestAssessment { subject { latestAssessment { subject { reference } } } } } } } } } } } }",
        {"id": subject["id"]},
    )

    # Then both run
    assert [e["node"]["id"] for e in page["subjects"]["edges"]] == [subject["id"]]
    assert deep == {"subject": {"referrals": []}}
