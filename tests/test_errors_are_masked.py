"""Errors: an unexpected exception reaches the client as INTERNAL with the request id only; the
server log has its type and where it was raised, never its message (which may quote a value it
failed on); expected errors keep their code and message."""

from __future__ import annotations

import logging

from helpers import UPDATE_SUBJECT, actor, codes, create_subject
from registry.domain import subjects

SECRET = "connection string postgresql://registry:hunter2@db"


async def test_an_unexpected_exception_is_masked_with_the_request_id(world, monkeypatch, caplog):
    # Given a subject, and a domain read that fails unexpectedly
    subject = await create_subject(world)

    async def broken(*args, **kwargs):
        raise RuntimeError(SECRET)

    monkeypatch.setattr(subjects, "get", broken)

    # When it is read
    with caplog.at_level(logging.ERROR, logger="registry.errors"):
        response = await world.client.post(
            "/graphql",
            json={"query": "query($id: UUID!) { subject(id: $id) { id } }", "variables": {"id": subject["id"]}},
            headers={"Authorization": f"Bearer {world.token('referral_officer')}", "Registry-Purpose": "CASE_SUPERVISION"},
        )

    # Then the client gets INTERNAL with the request id and nothing of the cause
    body = response.json()
    rid = response.headers["x-request-id"]
    assert codes(body) == ["INTERNAL"] and body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL", "requestId": rid}
    assert rid in body["errors"][0]["message"] and "hunter2" not in response.text
    # And the server log names the exception and where it was raised, under the same request id,
    # without its message
    logged = [r.getMessage() for r in caplog.records if rid in r.getMessage()]
    assert logged and "RuntimeError" in logged[0] and "test_errors_are_masked.py" in logged[0]
    assert not any("hunter2" in r.getMessage() or r.exc_info for r in caplog.records)


async def test_an_expected_error_keeps_its_code_and_message(world):
    # Given a subject changed once
    officer = actor(world, "referral_officer")
    subject = await create_subject(world, by=officer)
    await officer.ok(UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "familyName": "First"}})

    # When it is changed again at the version read before
    body = await officer.gql(UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "familyName": "Second"}})

    # Then the refusal says what happened, with its code
    assert codes(body) == ["CONFLICT"]
    assert "version" in body["errors"][0]["message"].lower()
