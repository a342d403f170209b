"""Break-glass: an analyst who writes why may read one subject outside their row scope, by id, for
that request only; the access is flagged for the DPO's review. Without a justification: refused."""

from __future__ import annotations

import logging
import uuid

import pytest

from helpers import ADD_NOTE, actor, codes, create_subject, draft_referral

WHY = "Imminent threat reported by the partner service this morning; need the file now."
SUBJECT = """
query($id: UUID!) {
  subject(id: $id) {
    id givenName nationalNumber
    referrals { id status }
    notes(first: 10) { visibility body }
  }
}"""


@pytest.fixture
async def unreferred(world):
    """A subject the analysts cannot see: its only referral is a DRAFT. It has a SHARED and an internal note."""
    subject = await create_subject(world, givenName="Kim")
    await draft_referral(world, subject["id"])
    caseworker = actor(world, "caseworker")
    for visibility in ("SHARED", "AGENCY_INTERNAL"):
        await caseworker.ok(ADD_NOTE, {"input": {"subjectId": subject["id"], "body": visibility, "visibility": visibility}})
    return subject


def break_glass(world, role: str, justification: str | None = WHY):
    headers = {"Registry-Justification": justification} if justification is not None else {}
    token = world.token(role)
    return lambda query, variables: world.gql(token, query, variables, purpose="BREAK_GLASS", **headers)


async def test_out_of_scope_subject_is_absent_for_normal_work(world, unreferred):
    body = await actor(world, "analyst").gql(SUBJECT, {"id": unreferred["id"]})
    assert body == {"data": {"subject": None}}


@pytest.mark.parametrize("role", ["analyst", "senior_analyst"])
async def test_a_justified_break_glass_reads_the_one_subject_by_analyst_rules(world, unreferred, role, caplog):
    # When an analyst breaks the glass with a written reason
    with caplog.at_level(logging.WARNING, logger="registry.access"):
        body = await break_glass(world, role)(SUBJECT, {"id": unreferred["id"]})

    # Then the subject arrives, with the analyst's field rules and record scope (no DRAFT
    # referral, SHARED notes only)
    assert "errors" not in body, body
    subject = body["data"]["subject"]
    assert subject["givenName"] == "Kim" and subject["nationalNumber"]
    assert subject["referrals"] == []
    assert subject["notes"] == [{"visibility": "SHARED", "body": "SHARED"}]
    # And the access is flagged for review
    flagged = [r for r in caplog.records if "break-glass" in r.getMessage()]
    assert len(flagged) == 1 and unreferred["id"] in flagged[0].getMessage()


async def test_break_glass_marks_the_request_context_for_the_audit_trail(world, services, monkeypatch, unreferred):
    seen = []
    execute = services.schema.execute

    async def spy(*args, **kwargs):
        seen.append(kwargs["context_value"])
        return await execute(*args, **kwargs)

    monkeypatch.setattr(services.schema, "execute", spy)
    await break_glass(world, "analyst")(SUBJECT, {"id": unreferred["id"]})
    (ctx,) = seen
    assert ctx.break_glass is True and str(ctx.break_glass_subject) == unreferred["id"]
    assert (ctx.purpose, ctx.justification) == ("BREAK_GLASS", WHY)


async def test_the_glass_closes_after_the_request(world, unreferred):
    await break_glass(world, "analyst")(SUBJECT, {"id": unreferred["id"]})
    body = await actor(world, "analyst").gql(SUBJECT, {"id": unreferred["id"]})
    assert body == {"data": {"subject": None}}


@pytest.mark.parametrize("justification", [None, "", "urgent", "need it now", "x" * 40, "see ticket 123456789"])
async def test_break_glass_without_a_real_justification_is_refused(world, services, unreferred, justification):
    body = await break_glass(world, "analyst", justification)(SUBJECT, {"id": unreferred["id"]})
    assert body["data"] is None and codes(body) == ["PURPOSE_REQUIRED"]
    assert "Registry-Justification" in body["errors"][0]["message"]


@pytest.mark.parametrize("role", ["caseworker", "referral_officer", "dpo", "partner"])
async def test_only_roles_allowed_to_break_the_glass_may_declare_it(world, unreferred, role):
    body = await break_glass(world, role)(SUBJECT, {"id": unreferred["id"]})
    if role == "partner":  # the partner may not query subjects at all
        assert body["data"] == {"subject": None} and codes(body) == ["FORBIDDEN"]
    else:
        assert body["data"] is None and codes(body) == ["PURPOSE_REQUIRED"]


@pytest.mark.parametrize(
    "query, variables",
    [
        # a list: break-glass is for one subject by id, not for browsing
        ("query { subjects(first: 10) { edges { node { id } } } }", {}),
        # two subjects at once
        ("query($id: UUID!, $other: UUID!) { subject(id: $id) { id } other: subject(id: $other) { id } }",
         {"other": str(uuid.uuid4())}),
        # another root field next to the subject
        ("query($id: UUID!) { subject(id: $id) { id } referrals { edges { node { id } } } }", {}),
        # a change
        ("mutation($id: UUID!) { addNote(input: {subjectId: $id, body: \"x\"}) { note { id } } }", {}),
    ],
)
async def test_break_glass_covers_one_subject_by_id_and_nothing_else(world, unreferred, query, variables):
    body = await break_glass(world, "analyst")(query, {"id": unreferred["id"], **variables})
    assert body["data"] is None and codes(body) == ["PURPOSE_REQUIRED"]


async def test_the_same_subject_asked_twice_is_still_one_subject(world, unreferred):
    body = await break_glass(world, "analyst")(
        "query($id: UUID!) { a: subject(id: $id) { id } b: subject(id: $id) { reference } }", {"id": unreferred["id"]}
    )
    assert body["data"]["a"]["id"] == unreferred["id"] and body["data"]["b"]["reference"]


async def test_break_glass_does_not_open_the_subject_s_other_links(world, unreferred):
    # The DRAFT referral stays invisible even when asked for by id in a separate request
    body = await break_glass(world, "analyst")(
        "query($id: UUID!) { subject(id: $id) { referrals { id } } }", {"id": unreferred["id"]}
    )
    assert body["data"]["subject"]["referrals"] == []
