"""A second file for a registered national number is refused with CONFLICT. The refusal tells the
caller that a file exists, so it is audited (who, when, why, and the existing file's id, which
the answer never shows) and paid for from the caller's hit/no-hit lookup budget."""

from __future__ import annotations

import uuid

from audit_support import by_action, call, events_of
from helpers import CREATE_SUBJECT, UPDATE_SUBJECT, codes, create_subject, national_number, subject_input

FULL_WIDTH_ZERO = 0xFF10


def full_width(number: str) -> str:
    return "".join(chr(FULL_WIDTH_ZERO + int(d)) for d in number)


async def test_a_duplicate_registration_is_audited_naming_the_existing_file(world, services):
    # given a registered child
    number = national_number()
    existing = await create_subject(world, nationalNumber=number)
    officer = world.token("referral_officer", name=f"officer {uuid.uuid4().hex[:8]}")
    # when another file is registered for it, its number typed in full-width digits
    body, request_id = await call(world, officer, CREATE_SUBJECT, {"input": subject_input(world, nationalNumber=full_width(number))})
    # then the answer is CONFLICT and says nothing of the existing file
    assert body["data"] is None and codes(body) == ["CONFLICT"]
    assert existing["id"] not in str(body) and existing["reference"] not in str(body)
    # and the refusal is an audit event: who, why, and which file the caller was told exists
    events = by_action(await events_of(services, request_id))
    assert set(events) == {"subject.duplicate_refused"}
    (event,) = events["subject.duplicate_refused"]
    assert [str(s) for s in event.subject_ids] == [existing["id"]]
    assert (event.outcome, event.purpose, event.actor_agency, event.operation) == ("refused", "CASE_SUPERVISION", world.agency, None)
    assert "referral_officer" in event.actor_roles and event.occurred_at is not None
    assert number not in str(event.records) and number not in str(event.detail)


async def test_a_correction_to_a_registered_number_is_audited_too(world, services):
    number = national_number()
    existing = await create_subject(world, nationalNumber=number)
    other = await create_subject(world)
    officer = world.token("referral_officer", name=f"officer {uuid.uuid4().hex[:8]}")
    change = {"id": other["id"], "expectedVersion": other["version"], "nationalNumber": number}
    body, request_id = await call(world, officer, UPDATE_SUBJECT, {"input": change})
    assert codes(body) == ["CONFLICT"]
    (event,) = by_action(await events_of(services, request_id))["subject.duplicate_refused"]
    assert [str(s) for s in event.subject_ids] == [existing["id"]]


async def test_duplicates_spend_the_lookup_budget(world, services):
    # given a registered child and a caller with a fresh budget
    number = national_number()
    await create_subject(world, nationalNumber=number)
    officer = world.token("referral_officer", name=f"officer {uuid.uuid4().hex[:8]}")
    budget = services.lookups.limit
    # when the caller tries the number once more than the budget allows
    answers = []
    for _ in range(budget + 1):
        body, _ = await call(world, officer, CREATE_SUBJECT, {"input": subject_input(world, nationalNumber=number)})
        answers.append(codes(body))
    # then each refusal spent one lookup, and the last one is refused by the budget
    assert answers[:budget] == [["CONFLICT"]] * budget
    assert answers[budget] == ["RATE_LIMITED"]
    # and a registration that is no duplicate is neither counted nor refused
    body, _ = await call(world, officer, CREATE_SUBJECT, {"input": subject_input(world)})
    assert "errors" not in body, body
