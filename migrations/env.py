"""Alembic environment: runs on the connection the registry hands over, or on REGISTRY_DATABASE_URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from registry.config import get_settings
from registry.db.engine import async_url
from registry.db.tables import Base

target_metadata = Base.metadata


def run_on(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    url = get_settings().database_url
    if not url:
        raise SystemExit("set REGISTRY_DATABASE_URL, or use `registry migrate`")
    engine = create_async_engine(async_url(url))
    async with engine.begin() as conn:
        await conn.run_sync(run_on)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    asyncio.run(run_online())
