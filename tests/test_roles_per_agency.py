"""Roles bound to agencies, and a maximum token lifetime, in production against an external
provider: a token is refused (401 UNAUTHENTICATED, with the reason) when its agency may not hold
one of its roles (auth/policy.toml, `agencies` per role) or when it lives too long; a role
refusal is an audit event the DPO can find."""

from __future__ import annotations

import contextlib
import time
import uuid

import httpx
import pytest
from sqlalchemy import select

from registry.api.documents import OPERATIONS_DIR, document_id
from registry.app import create_app
from registry.db.tables import AuditEvent
from test_identity_tokens import Provider, provider_server  # noqa: F401 - the provider on loopback

ME = document_id((OPERATIONS_DIR / "Me.graphql").read_text())  # production runs trusted documents only


@pytest.fixture
def provider(provider_server):  # noqa: F811
    provider_server.reset()
    return provider_server


@contextlib.asynccontextmanager
async def production_registry(settings, provider: Provider):
    app = create_app(
        settings.model_copy(update={"env": "production", "oidc_issuer": provider.issuer, "claim_roles": "realm_access.roles"}),
        migrate=True,
    )
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry") as client:
            yield app, client


def token(provider: Provider, roles: list[str], agency: str | None, **claims) -> str:
    subject = f"user-{uuid.uuid4().hex[:8]}"
    return provider.sign(provider.claims(sub=subject, agency=agency, unit=None, realm_access={"roles": roles}, **claims))


async def me(client: httpx.AsyncClient, bearer: str) -> httpx.Response:
    return await client.post("/graphql", json={"documentId": ME}, headers={"Authorization": f"Bearer {bearer}"})


def refused(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    (err,) = response.json()["errors"]
    assert err["extensions"]["code"] == "UNAUTHENTICATED"
    return err["message"]


async def test_each_role_is_accepted_from_the_agencies_that_may_hold_it(world, settings, provider):
    async with production_registry(settings, provider) as (_, client):
        for roles, agency in (
            (["caseworker"], world.agency), (["referral_officer"], world.agency), (["analyst"], "CUTA"),
            (["senior_analyst"], "CUTA"), (["partner"], "POLICE"), (["dpo"], "POLICE"), (["dpo"], world.agency),
            (["analyst", "senior_analyst"], "CUTA"),
        ):
            response = await me(client, token(provider, roles, agency))
            assert response.status_code == 200, (roles, agency, response.text)
            assert response.json()["data"]["me"]["roles"] == sorted(roles)


@pytest.mark.parametrize(
    "roles, agency, reason",
    [
        (["analyst"], "POLICE", "role 'analyst' cannot be held by agency 'POLICE' (partner)"),
        (["partner", "analyst", "dpo"], "POLICE", "role 'analyst' cannot be held by agency 'POLICE'"),
        (["caseworker"], "CUTA", "role 'caseworker' cannot be held by agency 'CUTA' (threat_analysis)"),
        (["partner"], "YOUTH-OF-THE-TEST", "role 'partner' cannot be held by agency"),
        (["referral_officer"], "NOWHERE", "the agency is not registered"),
        (["senior_analyst"], None, "role 'senior_analyst' needs an agency claim"),
    ],
)
async def test_a_role_its_agency_may_not_hold_is_refused_and_audited(world, settings, provider, services, roles, agency, reason):
    agency = world.agency if agency == "YOUTH-OF-THE-TEST" else agency
    bearer = token(provider, roles, agency)
    async with production_registry(settings, provider) as (_, client):
        response = await me(client, bearer)
        assert reason in refused(response)
        rid = response.headers["x-request-id"]
    async with services.sessions() as session:
        (event,) = await session.scalars(select(AuditEvent).where(AuditEvent.request_id == rid))
    assert (event.action, event.outcome, event.actor_agency, event.actor_roles) == ("access.refused", "refused", agency, sorted(roles))
    assert event.detail["refusals"][0]["code"] == "UNAUTHENTICATED"
    assert reason in event.detail["refusals"][0]["reason"]


@pytest.mark.parametrize(
    "lifetime_claims, accepted",
    [
        (lambda now: {"iat": now, "nbf": now, "exp": now + 12 * 3600}, True),
        (lambda now: {"iat": now, "nbf": now, "exp": now + 13 * 3600}, False),
        (lambda now: {"iat": now - 11 * 3600, "nbf": now, "exp": now + 2 * 3600}, False),  # 13 h, though 2 h left
        (lambda now: {"iat": None, "nbf": now, "exp": now + 13 * 3600}, False),  # no iat: exp - now
        (lambda now: {"iat": None, "nbf": now, "exp": now + 3600}, True),
        (lambda now: {"iat": now, "nbf": now, "exp": 253402300799}, False),  # the year 9999
    ],
)
async def test_a_token_living_longer_than_the_maximum_is_refused(world, settings, provider, lifetime_claims, accepted):
    bearer = token(provider, ["analyst"], "CUTA", **lifetime_claims(int(time.time())))
    async with production_registry(settings, provider) as (_, client):
        response = await me(client, bearer)
    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert "token lifetime exceeds the maximum of 43200 seconds" in refused(response)


async def test_the_maximum_lifetime_is_a_setting(world, settings, provider):
    bearer = token(provider, ["analyst"], "CUTA", exp=int(time.time()) + 3 * 3600)
    async with production_registry(settings.model_copy(update={"max_token_lifetime_seconds": 2 * 3600}), provider) as (_, client):
        assert "maximum of 7200 seconds" in refused(await me(client, bearer))
