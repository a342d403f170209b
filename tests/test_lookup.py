"""Hit/no-hit: a partner may only ask whether a national number is known (HIT, with the agency to
contact, or NO_HIT); anything else is FORBIDDEN, and lookups are rate-limited per principal."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from conftest import national_number
from helpers import actor, codes, create_subject
from registry.domain.budget import RateLimiter
from registry.domain.errors import RateLimited

LOOKUP = "query($n: String!) { lookupSubject(nationalNumber: $n) { outcome contactAgency } }"


def partner(world, name: str | None = None):
    """A partner principal of its own (the rate limit counts per principal)."""
    return actor(world, "partner", agency="POLICE", name=name or f"partner {uuid.uuid4().hex[:8]}")


async def test_a_known_number_is_a_hit_naming_the_agency_to_contact(world):
    number = national_number()
    await create_subject(world, nationalNumber=number)
    data = await partner(world).ok(LOOKUP, {"n": number})
    assert data == {"lookupSubject": {"outcome": "HIT", "contactAgency": world.agency}}


async def test_the_usual_separators_are_accepted(world):
    number = national_number()
    await create_subject(world, nationalNumber=number)
    dotted = f"{number[:2]}.{number[2:4]}.{number[4:6]}-{number[6:9]}.{number[9:]}"
    assert (await partner(world).ok(LOOKUP, {"n": dotted}))["lookupSubject"]["outcome"] == "HIT"


async def test_an_unknown_number_is_no_hit(world):
    data = await partner(world).ok(LOOKUP, {"n": national_number()})
    assert data == {"lookupSubject": {"outcome": "NO_HIT", "contactAgency": None}}


@pytest.mark.parametrize("number", ["", "123", "1005170223x", "10051702234", "00000000000"])
async def test_an_invalid_number_is_bad_user_input(world, number):
    body = await partner(world).gql(LOOKUP, {"n": number})
    assert body["data"] == {"lookupSubject": None} and codes(body) == ["BAD_USER_INPUT"]


async def test_a_lookup_needs_the_lookup_purpose(world):
    token = world.token("partner", agency="POLICE", name="partner without purpose")
    body = await world.gql(token, LOOKUP, {"n": national_number()}, purpose=None)
    assert body["data"] is None and codes(body) == ["PURPOSE_REQUIRED"]


@pytest.mark.parametrize(
    "query, field",
    [
        ("query { subjects { edges { node { id } } } }", "Query.subjects"),
        ('query { subject(id: "%s") { id } }' % uuid.uuid4(), "Query.subject"),
        ("query { referrals { edges { node { id } } } }", "Query.referrals"),
        ('query { referral(id: "%s") { id } }' % uuid.uuid4(), "Query.referral"),
        (
            'mutation { addNote(input: {subjectId: "%s", body: "x"}) { note { id } } }' % uuid.uuid4(),
            "Mutation.addNote",
        ),
        (
            'mutation { createSubject(input: {givenName: "a", familyName: "b", dateOfBirth: "2011-01-01", '
            'nationalNumber: "00000000097", institution: "u", legalStatus: CONCERN}) { subject { id } } }',
            "Mutation.createSubject",
        ),
    ],
)
async def test_a_partner_trying_anything_but_a_lookup_is_forbidden(world, query, field):
    body = await partner(world).gql(query)
    assert codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["extensions"]["field"] == field


async def test_a_lookup_next_to_a_forbidden_field_still_answers(world):
    number = national_number()
    await create_subject(world, nationalNumber=number)
    body = await partner(world).gql(
        "query($n: String!) { hit: lookupSubject(nationalNumber: $n) { outcome } subjects { pageInfo { hasNextPage } } }",
        {"n": number},
    )
    assert body["data"] == {"hit": {"outcome": "HIT"}, "subjects": None}
    assert [e["extensions"]["field"] for e in body["errors"]] == ["Query.subjects"]


@pytest.mark.parametrize("role", ["caseworker", "referral_officer", "analyst", "senior_analyst", "dpo"])
async def test_other_roles_cannot_use_the_hit_no_hit_service(world, role):
    body = await actor(world, role).gql(LOOKUP, {"n": national_number()})
    assert body["data"] == {"lookupSubject": None}
    assert [e["extensions"]["field"] for e in body["errors"]] == ["Query.lookupSubject"]


async def test_lookups_are_rate_limited_per_principal(world, services):
    # Given a partner who has used up the budget
    greedy = partner(world)
    limit = services.lookups.limit
    for _ in range(limit):
        await greedy.ok(LOOKUP, {"n": national_number()})

    # When they ask once more, even with an invalid number
    refused = await greedy.gql(LOOKUP, {"n": national_number()})
    invalid = await greedy.gql(LOOKUP, {"n": "123"})

    # Then both are refused, with when to retry, and no answer
    for body in (refused, invalid):
        assert body["data"] == {"lookupSubject": None} and codes(body) == ["RATE_LIMITED"]
        assert 1 <= body["errors"][0]["extensions"]["retryAfter"] <= 61

    # While another partner is not affected
    assert (await partner(world).ok(LOOKUP, {"n": national_number()}))["lookupSubject"]["outcome"] == "NO_HIT"


async def test_many_lookups_in_one_request_count_one_by_one(world, services):
    aliases = " ".join(f'l{i}: lookupSubject(nationalNumber: "{national_number()}") {{ outcome }}' for i in range(29))
    greedy = partner(world)
    assert "errors" not in await greedy.gql(f"query {{ {aliases} }}")
    body = await greedy.gql(f"query {{ {aliases} }}")
    assert codes(body).count("RATE_LIMITED") == 29 - (services.lookups.limit - 29)


async def test_the_window_slides(services):
    limiter = RateLimiter(services.lookups.engine, limit=2, window=1.0)
    key = f"window-{uuid.uuid4()}"
    await limiter.take(key)
    await limiter.take(key)
    with pytest.raises(RateLimited):
        await limiter.take(key)
    await limiter.take(f"someone else {key}")
    await asyncio.sleep(1.1)  # the first calls left the window
    await limiter.take(key)
