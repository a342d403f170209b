"""Where the data lives: the configured PostgreSQL server, or the embedded one."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy.engine import make_url

from registry.config import Settings
from registry.db.embedded import EmbeddedPostgres
from registry.db.engine import sync_url

EMBEDDED_DATABASE = "registry"


async def embedded_database(settings: Settings, *, exclusive: bool = False) -> tuple[EmbeddedPostgres, str]:
    """Start (or reuse) the embedded server and return it with the registry database's URL
    (`exclusive`: refuse one another live process owns)."""
    embedded = EmbeddedPostgres(settings.data_dir, exclusive=exclusive)
    server_url = await asyncio.to_thread(embedded.start)
    url = make_url(server_url).set(database=EMBEDDED_DATABASE).render_as_string(hide_password=False)
    await ensure_database(url)
    return embedded, url


async def ensure_database(url: str) -> None:
    """Create the database named in `url` if the server does not have it yet."""
    target = make_url(sync_url(url))
    admin = target.set(database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", target.database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{target.database}"')
    finally:
        await conn.close()
