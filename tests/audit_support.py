"""Support for the audit tests: requests that keep their X-Request-Id, the events a request wrote,
databases of their own on the session's server, and the real `registry` command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from conftest import ROLE_DEFAULT, World
from registry.db.tables import AuditEvent

REGISTRY = Path(sys.executable).parent / "registry"


async def call(
    world: World,
    token: str,
    query: str,
    variables: dict | None = None,
    *,
    purpose: Any = ROLE_DEFAULT,
    operation: str | None = None,
    **headers: str,
) -> tuple[dict, str]:
    """POST one operation as `token`; the response body and its X-Request-Id."""
    if purpose is ROLE_DEFAULT:
        purpose = world.default_purpose(token)
    if purpose is not None:
        headers = {"Registry-Purpose": purpose, **headers}
    payload: dict[str, Any] = {"query": query, "variables": variables or {}}
    if operation:
        payload["operationName"] = operation
    response = await world.client.post("/graphql", json=payload, headers={"Authorization": f"Bearer {token}", **headers})
    assert response.status_code == 200, response.text
    return response.json(), response.headers["x-request-id"]


async def events_of(services: Any, request_id: str) -> list[AuditEvent]:
    """The audit events one request wrote, in the order written."""
    async with services.sessions() as session:
        return list(await session.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.seq)))


def by_action(events: list[AuditEvent]) -> dict[str, list[AuditEvent]]:
    out: dict[str, list[AuditEvent]] = {}
    for event in events:
        out.setdefault(event.action, []).append(event)
    return out


def admin_url(server_url: str, database: str = "postgres") -> str:
    return make_url(server_url.replace("postgres://", "postgresql://", 1)).set(database=database).render_as_string(
        hide_password=False
    )


@contextlib.asynccontextmanager
async def separate_database(server_url: str, name: str, *, template: str | None = None) -> AsyncIterator[str]:
    """A database of its own on the session's server (optionally a copy of `template`), dropped after."""
    admin = await asyncpg.connect(admin_url(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        yield admin_url(server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def registry(*args: str, database_url: str, data_dir: Path) -> tuple[int, str, str]:
    """Run the real `registry` command on `database_url`: exit code, stdout, stderr."""
    env = {**os.environ, "REGISTRY_DATABASE_URL": database_url, "REGISTRY_DATA_DIR": str(data_dir), "REGISTRY_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        str(REGISTRY), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, out.decode(), err.decode()
