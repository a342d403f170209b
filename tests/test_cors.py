"""CORS: off unless REGISTRY_CORS_ORIGINS lists origins; a listed origin's preflight is answered,
with the registry's own headers allowed; any other origin gets no CORS answer."""

from __future__ import annotations

import httpx
import pytest

from registry.app import create_app

FRONT_END = "https://front.example.org"
PREFLIGHT = {
    "Origin": FRONT_END,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, registry-purpose, registry-justification",
}


@pytest.fixture(scope="module")
async def cors_client(settings):
    app = create_app(settings.model_copy(update={"cors_origins": f"{FRONT_END}, https://other.example.org"}))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry") as client:
            yield client


async def test_off_by_default(client):
    response = await client.options("/graphql", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in response.headers
    response = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": FRONT_END})
    assert "access-control-allow-origin" not in response.headers


async def test_a_listed_origins_preflight_is_answered(cors_client):
    response = await cors_client.options("/graphql", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == FRONT_END
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "registry-purpose", "registry-justification"} <= allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers


async def test_a_listed_origins_request_may_read_the_answer(cors_client, world):
    token = world.token("caseworker")
    response = await cors_client.post(
        "/graphql",
        json={"query": "{ me { roles } }"},
        headers={"Origin": FRONT_END, "Authorization": f"Bearer {token}", "Registry-Purpose": "CASE_SUPERVISION"},
    )
    assert response.json() == {"data": {"me": {"roles": ["caseworker"]}}}
    assert response.headers["access-control-allow-origin"] == FRONT_END
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


async def test_an_unlisted_origin_gets_no_cors_answer(cors_client):
    response = await cors_client.options("/graphql", headers={**PREFLIGHT, "Origin": "https://evil.example.org"})
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
