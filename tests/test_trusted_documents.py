"""Trusted documents: with them on (production), only graphql/operations/ runs — by documentId, by
Apollo's persisted-query hash, or by the same text; anything else is refused before execution.
Development keeps ad-hoc queries, introspection and GraphiQL."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from graphql import parse, print_ast

from helpers import codes
from registry.api.documents import OPERATIONS_DIR, TrustedDocuments, canonical, document_id
from registry.api.limits import QueryLimits
from registry.api.schema import build_schema
from registry.app import create_app
from registry.config import Settings
from test_query_limits import ABUSE, nothing_runs

ME = (OPERATIONS_DIR / "Me.graphql").read_text(encoding="utf-8")
ME_ID = "sha256:" + hashlib.sha256(ME.encode()).hexdigest()


@pytest.fixture(scope="module")
async def trusted_app(settings):
    """The service as in production: trusted documents only, no introspection (same database and keys)."""
    application = create_app(settings.model_copy(update={"trusted_documents": True, "introspection": False}), migrate=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def trusted(trusted_app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=trusted_app), base_url="http://registry") as c:
        yield c


async def post(client: httpx.AsyncClient, token: str, body: dict) -> dict:
    response = await client.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def reprinted(text: str) -> str:
    """The same document as a generated client may send it: printed anew, comments gone."""
    return print_ast(parse(text))


@pytest.mark.parametrize(
    "request_body",
    [
        {"documentId": ME_ID},
        {"documentId": ME_ID.upper().replace("SHA256:", "sha256:")},
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": ME_ID.removeprefix("sha256:")}}},
        {"query": ME},
        {"query": reprinted(ME), "operationName": "Me"},
        {"documentId": ME_ID, "query": ME},
    ],
    ids=["documentId", "documentId upper-case hex", "apollo hash", "same text", "re-printed text", "id and text"],
)
async def test_a_trusted_document_runs(world, trusted, request_body):
    body = await post(trusted, world.token("caseworker"), request_body)
    assert "errors" not in body, body
    assert body["data"]["me"]["roles"] == ["caseworker"]


@pytest.mark.parametrize(
    "request_body, code",
    [
        ({"documentId": "sha256:" + "0" * 64}, "PERSISTED_QUERY_NOT_FOUND"),
        ({"documentId": "md5:0"}, "PERSISTED_QUERY_NOT_FOUND"),
        ({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}}, "PERSISTED_QUERY_NOT_FOUND"),
        ({"query": "{ me { id roles } }"}, "FORBIDDEN"),
        ({"query": ME.replace("unit", "unit __typename")}, "FORBIDDEN"),
        ({"query": ABUSE["20-level nesting"][0]}, "FORBIDDEN"),
        ({"query": "not graphql {"}, "FORBIDDEN"),
        ({"documentId": ME_ID, "query": "{ me { id } }"}, "BAD_USER_INPUT"),
        ({"query": ""}, "BAD_USER_INPUT"),
    ],
    ids=["unknown id", "unknown algorithm", "unknown apollo hash", "ad-hoc text", "changed trusted text",
         "abuse text", "garbage", "id and other text", "empty"],
)
async def test_anything_else_is_refused_before_execution(world, services, trusted, monkeypatch, request_body, code):
    with nothing_runs(services, monkeypatch) as seen:
        body = await post(trusted, world.token("referral_officer"), request_body)
    assert codes(body) == [code] and "data" not in body, body
    assert seen == {"sql": 0, "fields": 0}


async def test_apollo_clients_registering_a_trusted_text_under_their_own_hash_are_served(world, trusted):
    # Apollo's automatic persisted queries hash the client's own printing of the document
    text = reprinted(ME)
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(text.encode()).hexdigest()}}
    body = await post(trusted, world.token("caseworker"), {"query": text, "extensions": extensions})
    assert body["data"]["me"]["roles"] == ["caseworker"]
    # but not an ad-hoc text, whatever its hash
    adhoc = "{ me { id } }"
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(adhoc.encode()).hexdigest()}}
    assert codes(await post(trusted, world.token("caseworker"), {"query": adhoc, "extensions": extensions})) == ["FORBIDDEN"]


async def test_development_runs_ad_hoc_queries_and_known_ids(world, client):
    token = world.token("caseworker")
    assert (await post(client, token, {"query": "{ me { roles } }"}))["data"] == {"me": {"roles": ["caseworker"]}}
    assert (await post(client, token, {"documentId": ME_ID}))["data"]["me"]["roles"] == ["caseworker"]
    assert codes(await post(client, token, {"documentId": "sha256:" + "0" * 64})) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_graphiql_is_served_in_development_only(client, trusted):
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    refused = await trusted.get("/graphql", headers={"Accept": "text/html"})
    assert refused.status_code == 405


async def test_introspection_is_off_when_configured_so():
    schema = build_schema(limits=QueryLimits(introspection=False))
    result = await schema.execute("{ __schema { queryType { name } } }")
    assert [e.extensions["code"] for e in result.errors] == ["FORBIDDEN"] and result.data is None


async def test_introspection_is_on_in_development(world, client):
    body = await post(client, world.token("caseworker"), {"query": "{ __schema { queryType { name } } }"})
    assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


def test_production_defaults_to_trusted_documents_without_introspection():
    production = Settings(env="production")
    assert production.trusted_documents_only is True and production.introspection_allowed is False
    development = Settings(env="development")
    assert development.trusted_documents_only is False and development.introspection_allowed is True
    assert Settings(env="production", trusted_documents=False).trusted_documents_only is False


def test_each_operation_file_is_one_named_operation_with_its_file_name():
    documents = TrustedDocuments.load(enforce=True)
    assert len(documents.by_id) == len(list(OPERATIONS_DIR.glob("*.graphql"))) >= 15
    for document in documents.by_id.values():
        assert document.path == f"{document.name}.graphql"
        assert document.id == document_id(document.text)
        assert canonical(reprinted(document.text)) == canonical(document.text)
