"""Alembic, driven from the application: upgrade to head, and tell whether the schema is current."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection: Connection, revision: str = "head") -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply pending migrations in one transaction (serialised by an advisory lock)."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
        await conn.run_sync(_upgrade, revision)


@cache
def script_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def migration_heads() -> str:
    """The head revisions, as the readiness check compares them with `alembic_version`."""
    return ",".join(sorted(script_heads()))


def migrations_current(connection: Connection) -> bool:
    """Whether the database is at the code's head. Read directly from alembic_version: alembic's
    migration context logs two lines each time, and /readyz asks every few seconds."""
    if not connection.dialect.has_table(connection, "alembic_version"):
        return False
    current = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    return frozenset(current) == script_heads()
