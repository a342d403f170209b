"""Identity against a real, third-party OpenID Connect provider (oidc-provider-mock) on loopback:
the service discovers it, verifies the tokens it signs, maps their claims to a principal, and
follows a key rotation — through the real HTTP endpoint, with nothing of the provider faked."""

from __future__ import annotations

import contextlib
from typing import Iterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from oidc_provider_mock import User, run_server_in_thread

from registry.app import create_app

# The provider's own use of authlib is deprecated there, not here.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib", "ignore::DeprecationWarning:oidc_provider_mock")

CLIENT = "registry"  # the OIDC client id: the audience of the ID tokens the service accepts
REDIRECT = "http://127.0.0.1/callback"
USERS = [
    # Keycloak-style claims: roles under realm_access, the agency under a custom claim name
    User(sub="alex", claims={"name": "Alex Analyst", "org": "CUTA", "realm_access": {"roles": ["analyst", "offline_access"]}}),
    User(sub="pat", claims={"name": "Pat Partner", "org": "POLICE", "realm_access": {"roles": ["partner"]}}),
]
ME = "query { me { id name agency roles unit } }"


@contextlib.contextmanager
def provider(port: int = 0) -> Iterator[str]:
    """The provider running in a thread on loopback; yields its issuer URL. A new one has a new key."""
    with run_server_in_thread(port=port, user_claims=USERS) as server:
        yield f"http://localhost:{server.server_port}"


def sign_in(issuer: str, sub: str, client_id: str = CLIENT) -> str:
    """An ID token for `sub`, through the provider's authorization-code flow, as a front-end gets it."""
    with httpx.Client(timeout=10) as http:
        config = http.get(f"{issuer}/.well-known/openid-configuration").json()
        authorized = http.post(
            config["authorization_endpoint"],
            params={"client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid profile"},
            data={"sub": sub},
        )
        code = parse_qs(urlparse(authorized.headers["location"]).query)["code"][0]
        tokens = http.post(
            config["token_endpoint"],
            data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                "client_id": client_id, "client_secret": "any",
            },
        ).json()
    return tokens["id_token"]


@contextlib.asynccontextmanager
async def registry_for(settings, issuer: str):
    """The registry configured with `issuer` (discovery happens at start-up), and a client for it."""
    app = create_app(
        settings.model_copy(
            update={
                "oidc_issuer": issuer, "oidc_audience": CLIENT, "claim_roles": "realm_access.roles",
                "claim_agency": "org",
            }
        )
    )
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry") as client:
            yield app, client


async def ask(client: httpx.AsyncClient, token: str, query: str = ME, purpose: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if purpose:
        headers["Registry-Purpose"] = purpose
    return await client.post("/graphql", json={"query": query}, headers=headers)


async def test_discovery_validation_and_claim_mapping_against_a_real_provider(settings):
    with provider() as issuer:
        async with registry_for(settings, issuer) as (app, client):
            # Given the service started against the provider: it found the keys by discovery
            assert app.state.services.verifier.issuer == issuer
            assert app.state.services.dev_issuer is None

            # When a user signed in at the provider calls the registry with the ID token
            response = await ask(client, sign_in(issuer, "alex"))

            # Then the token is accepted and its claims are mapped as configured
            assert response.status_code == 200, response.text
            assert response.json()["data"]["me"] == {
                "id": "alex", "name": "Alex Analyst", "agency": "CUTA", "roles": ["analyst"], "unit": None,
            }

            # And the mapped roles drive access: the partner may look up, not list subjects
            pat = sign_in(issuer, "pat")
            lookup = await ask(client, pat, 'query { lookupSubject(nationalNumber: "00000000097") { outcome } }', "LOOKUP")
            assert lookup.json() == {"data": {"lookupSubject": {"outcome": "NO_HIT"}}}
            listing = await ask(client, pat, "query { subjects { pageInfo { hasNextPage } } }", "LOOKUP")
            assert listing.json()["errors"][0]["extensions"] == {"code": "FORBIDDEN", "field": "Query.subjects"}


async def test_tokens_the_provider_signed_for_another_client_are_refused(settings):
    with provider() as issuer:
        async with registry_for(settings, issuer) as (_, client):
            response = await ask(client, sign_in(issuer, "alex", client_id="another-app"))
            assert response.status_code == 401
            assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert "audience" in response.json()["errors"][0]["message"]


async def test_tokens_of_another_provider_are_refused(settings):
    with provider() as issuer, provider() as impostor:
        async with registry_for(settings, issuer) as (_, client):
            response = await ask(client, sign_in(impostor, "alex"))
            assert response.status_code == 401


async def test_a_key_rotation_at_the_provider_is_followed(settings):
    with contextlib.ExitStack() as stack:
        first = provider()
        issuer = stack.enter_context(first)
        async with registry_for(settings, issuer) as (_, client):
            # Given a running service that verified a token with the provider's first key
            old_token = sign_in(issuer, "alex")
            assert (await ask(client, old_token)).status_code == 200

            # When the provider restarts at the same address with a new signing key
            first.__exit__(None, None, None)
            stack.pop_all()
            rotated = stack.enter_context(provider(urlparse(issuer).port))
            assert rotated == issuer
            new_token = sign_in(issuer, "alex")

            # Then a token signed with the new key is accepted (the service re-fetched the JWKS)
            response = await ask(client, new_token)
            assert response.status_code == 200, response.text
            assert response.json()["data"]["me"]["id"] == "alex"

            # And one signed with the withdrawn key is refused
            assert (await ask(client, old_token)).status_code == 401
