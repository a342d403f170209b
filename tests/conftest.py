"""Test fixtures: a real PostgreSQL (embedded by default, or REGISTRY_TEST_DATABASE_URL), the app
over HTTP (ASGI), and per-test agencies and units so tests never see each other's rows."""

from __future__ import annotations

import itertools
import os
import random
import shutil
import tempfile
import uuid
from datetime import date, timedelta
from typing import Any, AsyncIterator

import httpx
import pytest
from sqlalchemy.engine import make_url

from registry.app import create_app
from registry.config import Settings
from registry.db.embedded import EmbeddedPostgres
from registry.domain import agencies
from registry.domain.national_number import check_digits

TEST_DATABASE = f"registry_test_{os.getpid()}"


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    """A PostgreSQL server: REGISTRY_TEST_DATABASE_URL's, or an embedded one for the session."""
    configured = os.environ.get("REGISTRY_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    # Not under pytest's tmp root: another pytest run resets that to mode 0700, and the server
    # runs as an unprivileged user when the tests run as root.
    data_dir = tempfile.mkdtemp(prefix="registry-test-pg-")
    embedded = EmbeddedPostgres(data_dir)
    yield embedded.start()
    embedded.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A fresh database for this test session, dropped afterwards."""
    import asyncpg

    admin = make_url(server_url.replace("postgres://", "postgresql://", 1)).set(database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    await conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    yield admin.set(database=TEST_DATABASE).render_as_string(hide_password=False)
    await conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
    await conn.close()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
async def app(settings: Settings):
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def services(app):
    return app.state.services


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://registry") as c:
        yield c


# Serials run through 997 per birth date, then on to the next date: unique for millions of calls.
_numbers = itertools.count(random.Random().randrange(0, 997 * 1000))


def national_number(born: date | None = None) -> str:
    """A valid, unique fictional national number (for someone born on `born`, if given)."""
    n = next(_numbers)
    born = born or date(2008, 1, 1) + timedelta(days=(n // 997) % 2900)
    body = f"{born:%y%m%d}{n % 997 + 1:03d}"
    return body + check_digits(body, born.year >= 2000)


# The purpose each role declares by default (DESIGN section 5); admin has none.
DEFAULT_PURPOSES = {
    "caseworker": "CASE_SUPERVISION",
    "referral_officer": "CASE_SUPERVISION",
    "analyst": "THREAT_ASSESSMENT",
    "senior_analyst": "THREAT_ASSESSMENT",
    "dpo": "DATA_PROTECTION_AUDIT",
    "partner": "LOOKUP",
}
ROLE_DEFAULT = object()  # `purpose=` not given: declare the token's role's default purpose


class World:
    """One test's own agency and unit, with helpers to act as any role through HTTP."""

    def __init__(self, client: httpx.AsyncClient, services: Any) -> None:
        suffix = uuid.uuid4().hex[:8].upper()
        self.client = client
        self.services = services
        self.agency = f"YOUTH-{suffix}"
        self.cuta = "CUTA"
        self.unit = f"UNIT-{suffix}"
        self._roles: dict[str, list[str]] = {}

    def token(self, role: str | list[str], *, agency: str | None = None, unit: str | None = None, name: str | None = None) -> str:
        # The agency that may hold the role (auth/policy.toml): threat analysts at CUTA, partners at POLICE
        default_agency = {"analyst": self.cuta, "senior_analyst": self.cuta, "partner": "POLICE"}.get(role, self.agency)
        token = self.services.dev_issuer.issue(
            role=role,
            agency=agency or default_agency,
            unit=unit if unit is not None else (self.unit if role == "caseworker" else None),
            name=name or f"{role} of {self.agency}",
        )
        self._roles[token] = [role] if isinstance(role, str) else list(role)
        return token

    def default_purpose(self, token: str) -> str | None:
        return next((DEFAULT_PURPOSES[r] for r in self._roles.get(token, []) if r in DEFAULT_PURPOSES), None)

    async def gql(
        self, token: str, query: str, variables: dict | None = None, *, purpose: Any = ROLE_DEFAULT, **headers: str
    ) -> dict:
        """POST one operation; declares the role's default purpose unless `purpose=` (None: none)
        or a Registry-Purpose header is given."""
        if purpose is ROLE_DEFAULT:
            purpose = self.default_purpose(token)
        if purpose is not None and not any(k.lower() == "registry-purpose" for k in headers):
            headers = {"Registry-Purpose": purpose, **headers}
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}", **headers},
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def ok(
        self, token: str, query: str, variables: dict | None = None, *, purpose: Any = ROLE_DEFAULT, **headers: str
    ) -> dict:
        """Data of a request that must succeed without errors."""
        body = await self.gql(token, query, variables, purpose=purpose, **headers)
        assert "errors" not in body, body["errors"]
        return body["data"]


@pytest.fixture(scope="session")
async def demo_agencies(services) -> None:
    """The demo's agencies, of their kinds, for tests that act as `registry token --agency YOUTH` would."""
    async with services.sessions.begin() as session:
        await agencies.ensure(session, "YOUTH", "Youth welfare", "youth")
        await agencies.ensure(session, "CUTA", "Threat analysis", "threat_analysis")
        await agencies.ensure(session, "POLICE", "Police", "partner")


@pytest.fixture
async def world(client, services) -> World:
    w = World(client, services)
    async with services.sessions.begin() as session:
        await agencies.ensure(session, w.agency, "Youth welfare (test)", "youth")
        await agencies.ensure(session, "CUTA", "Threat analysis", "threat_analysis")
        await agencies.ensure(session, "POLICE", "Police", "partner")
    await services.binding.reload()  # known before the test's first request, as long-registered agencies are
    return w
