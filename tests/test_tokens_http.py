"""Through HTTP, nothing runs without a valid bearer token: the answer is 401 UNAUTHENTICATED and
no operation executes. Only GraphiQL (GET, text/html), /healthz and /readyz are open.

Unit-level verifier tests are in test_identity_tokens.py; here only what the endpoint does.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from helpers import CREATE_SUBJECT, actor, subject_input

SUBJECTS = """
query($agency: String) { subjects(first: 100, filter: {agency: $agency}) { edges { node { id } } } }"""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict) -> str:
    return b64(json.dumps(value).encode())


def claims(world, **overrides) -> dict:
    """Claims the dev issuer would sign for a referral officer of the world's agency."""
    issuer = world.services.dev_issuer
    now = int(time.time())
    values = {
        "iss": issuer.issuer,
        "aud": world.services.settings.oidc_audience,
        "sub": "dev:referral_officer:attacker",
        "name": "Attacker",
        "agency": world.agency,
        "roles": ["referral_officer"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def signed_by_dev_key(world, payload: dict) -> str:
    """Signed with the registry's own development key: only the claims make it invalid."""
    issuer = world.services.dev_issuer
    return jwt.encode({"alg": "ES256", "kid": issuer.kid}, payload, issuer._private_key, algorithms=["ES256"])


def bad_tokens(world) -> dict[str, str]:
    now = int(time.time())
    foreign_key = ECKey.generate_key("P-256", auto_kid=True)
    return {
        "expired": signed_by_dev_key(world, claims(world, iat=now - 7200, nbf=now - 7200, exp=now - 3600)),
        "not yet valid": signed_by_dev_key(world, claims(world, nbf=now + 3600, exp=now + 7200)),
        "no expiry": signed_by_dev_key(world, claims(world, exp=None)),
        "wrong audience": signed_by_dev_key(world, claims(world, aud="another-api")),
        "wrong issuer": signed_by_dev_key(world, claims(world, iss="https://evil.example/")),
        "another key, same kid": jwt.encode(
            {"alg": "ES256", "kid": world.services.dev_issuer.kid}, claims(world), foreign_key, algorithms=["ES256"]
        ),
        "another key, own kid": jwt.encode(
            {"alg": "ES256", "kid": foreign_key.kid}, claims(world), foreign_key, algorithms=["ES256"]
        ),
        "alg none": f"{b64json({'alg': 'none', 'typ': 'JWT'})}.{b64json(claims(world))}.",
        "tampered payload": _tampered(world),
        "garbage": "not-a-token",
    }


def _tampered(world) -> str:
    header, _, signature = world.token("caseworker").split(".")
    return f"{header}.{b64json(claims(world, roles=['admin', 'dpo']))}.{signature}"


BAD = [
    "expired",
    "not yet valid",
    "no expiry",
    "wrong audience",
    "wrong issuer",
    "another key, same kid",
    "another key, own kid",
    "alg none",
    "tampered payload",
    "garbage",
]


async def post(world, headers: dict[str, str], query: str = SUBJECTS, variables: dict | None = None):
    return await world.client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


def assert_unauthenticated(response) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in body or body["data"] is None
    assert response.headers["www-authenticate"].lower().startswith("bearer")


async def registered(world) -> list[str]:
    data = await actor(world, "referral_officer").ok(SUBJECTS, {"agency": world.agency})
    return [e["node"]["id"] for e in data["subjects"]["edges"]]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["none", "empty", "scheme only", "blank token", "basic"],
)
async def test_a_request_without_a_bearer_token_is_401_and_executes_nothing(world, headers):
    # Given a mutation that would register a subject
    values = subject_input(world)

    # When it is sent without a bearer token
    response = await post(world, {"Registry-Purpose": "CASE_SUPERVISION", **headers}, CREATE_SUBJECT, {"input": values})

    # Then the answer is 401 UNAUTHENTICATED and nothing was registered
    assert_unauthenticated(response)
    assert await registered(world) == []


@pytest.mark.parametrize("kind", BAD)
async def test_an_invalid_token_is_401_and_executes_nothing(world, kind):
    # Given a token that must not be trusted, carrying claims of a referral officer of the agency
    token = bad_tokens(world)[kind]

    # When a mutation is sent with it
    response = await post(
        world,
        {"Authorization": f"Bearer {token}", "Registry-Purpose": "CASE_SUPERVISION"},
        CREATE_SUBJECT,
        {"input": subject_input(world)},
    )

    # Then the answer is 401 UNAUTHENTICATED and nothing was registered
    assert_unauthenticated(response)
    assert await registered(world) == []


async def test_the_same_claims_with_a_valid_signature_are_accepted(world):
    # Given the claims used by the invalid-token cases, signed correctly (the control case)
    token = signed_by_dev_key(world, claims(world))

    # When a mutation is sent with it
    response = await post(
        world,
        {"Authorization": f"Bearer {token}", "Registry-Purpose": "CASE_SUPERVISION"},
        CREATE_SUBJECT,
        {"input": subject_input(world)},
    )

    # Then it executes
    assert response.status_code == 200, response.text
    created = response.json()["data"]["createSubject"]["subject"]["id"]
    assert await registered(world) == [created]


async def test_an_invalid_token_in_a_batch_executes_none_of_it(world):
    # Given a batch of mutations and an expired token
    token = bad_tokens(world)["expired"]
    batch = [{"query": CREATE_SUBJECT, "variables": {"input": subject_input(world)}} for _ in range(2)]

    # When the batch is sent
    response = await world.client.post(
        "/graphql", json=batch, headers={"Authorization": f"Bearer {token}", "Registry-Purpose": "CASE_SUPERVISION"}
    )

    # Then it is refused as a whole
    assert_unauthenticated(response)
    assert await registered(world) == []


async def test_the_refusal_does_not_echo_the_token(world):
    # Given a tampered token
    token = bad_tokens(world)["tampered payload"]

    # When it is refused
    response = await post(world, {"Authorization": f"Bearer {token}"})

    # Then neither the token nor its claims come back
    assert_unauthenticated(response)
    assert token.split(".")[1] not in response.text
    assert world.agency not in response.text


# --------------------------------------------------------------------------- open endpoints


async def test_graphiql_is_served_to_a_browser_without_a_token(client):
    # When a browser GETs /graphql asking for HTML, without a token
    response = await client.get("/graphql", headers={"Accept": "text/html"})

    # Then it gets the GraphiQL page
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_a_get_of_graphql_that_is_not_for_a_browser_executes_nothing(client):
    # When a GET carries a query but does not ask for HTML
    response = await client.get("/graphql", params={"query": "{ me { id } }"}, headers={"Accept": "application/json"})

    # Then nothing is executed and no data is returned
    assert response.status_code in (401, 405), response.text
    assert "data" not in response.json() or response.json()["data"] is None


@pytest.mark.parametrize("path, status", [("/healthz", "ok"), ("/readyz", "ready")])
async def test_health_endpoints_are_open(client, path, status):
    # When they are called without a token
    response = await client.get(path)

    # Then they answer
    assert response.status_code == 200, response.text
    assert response.json()["status"] == status


async def test_me_with_a_valid_token_needs_no_purpose(world):
    # Given a valid token (the control for the 401 cases)
    token = world.token("caseworker", name="Casey")

    # When `me` is asked without a purpose header
    response = await world.client.post(
        "/graphql", json={"query": "{ me { name roles agency unit } }"}, headers={"Authorization": f"Bearer {token}"}
    )

    # Then it answers with the token's identity
    assert response.status_code == 200
    assert response.json()["data"]["me"] == {
        "name": "Casey",
        "roles": ["caseworker"],
        "agency": world.agency,
        "unit": world.unit,
    }
