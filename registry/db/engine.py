"""Engine and sessions: one async engine per process, short sessions per unit of work."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable

import asyncpg
import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from registry.config import Settings


def async_url(url: str) -> str:
    """Accept libpq-style URLs (postgres://, postgresql://) and select the asyncpg driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The same database for tools that need a libpq-style URL (asyncpg.connect, psql)."""
    parsed = make_url(async_url(url))
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _json_text(value: object) -> str:
    return orjson.dumps(value).decode()


WORD_SIMILARITY_THRESHOLD = "0.5"


def _server_settings(settings: Settings, as_owner: bool) -> dict[str, str]:
    out = {
        "application_name": "registry",
        "timezone": "UTC",  # timestamps in JSON built by PostgreSQL read as the API writes them
        # searchSubjects: how alike a name must be to the text to be a candidate (pg_trgm's `<%`,
        # served by the trigram index); the default 0.6 misses names typed with two typos.
        "pg_trgm.word_similarity_threshold": WORD_SIMILARITY_THRESHOLD,
    }
    if not as_owner:  # the requests' limit: a migration or `audit verify` takes what it takes
        out["statement_timeout"] = str(settings.statement_timeout_ms)
        if settings.database_role:
            out["role"] = settings.database_role
    return out


class ReadPool:
    """Plain driver connections for compiled reads: one statement and one audit insert per
    request need none of the ORM, and skipping it is most of their cost in Python.

    Handed out first come, first served. Not asyncpg's pool: it let a request that arrived just
    as a connection was released take it before the requests already waiting (at concurrency 64,
    a twentieth of the requests took three times the median), and its bookkeeping cost twice the
    CPU of a whole round trip. A connection comes back only in the state it was lent in: one
    left in a transaction, or whose request ended in an exception, is closed instead."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], size: int) -> None:
        self._connect = connect
        self._idle: list[asyncpg.Connection] = []  # the most recently used first out
        self._turns = asyncio.Semaphore(size)  # first in, first out: none passes the waiting ones
        self._size = size

    # For the metrics, sampled once a second: read from the semaphore, at no cost to a request.
    @property
    def in_use(self) -> int:
        return self._size - self._turns._value

    @property
    def waiting(self) -> int:
        return len(self._turns._waiters or ())

    async def open(self) -> None:
        """One connection now, so that a database out of reach stops the start."""
        self._idle.append(await self._connect())

    def clear(self) -> None:
        """Drop the idle connections (the database went away: they would fail their next use)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.terminate()

    @asynccontextmanager
    async def acquire(self, *, fresh: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A connection for one request: an idle one that is still open, or a new one (`fresh`:
        always new, for a read retried after its connection failed)."""
        async with self._turns:
            connection = None
            while self._idle and not fresh and connection is None:
                candidate = self._idle.pop()
                if candidate.is_closed():  # its server went away since: never lent again
                    continue
                connection = candidate
            connection = connection or await self._connect()
            try:
                yield connection
            except BaseException:
                connection.terminate()
                raise
            if connection.is_in_transaction():
                connection.terminate()
            elif not connection.is_closed():
                self._idle.append(connection)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close(timeout=2)


def connector(url: str, settings: Settings) -> Callable[[], Awaitable[asyncpg.Connection]]:
    """A new plain driver connection as the service works, given up after the database timeout."""
    dsn, server_settings = sync_url(url), _server_settings(settings, as_owner=False)
    timeout = settings.database_timeout_seconds
    return lambda: asyncpg.connect(dsn, server_settings=server_settings, timeout=timeout)


async def create_read_pool(url: str, settings: Settings) -> ReadPool:
    pool = ReadPool(connector(url, settings), settings.db_pool_size)
    await pool.open()
    return pool


def create_engine(url: str, settings: Settings, *, as_owner: bool = False, pool_size: int | None = None) -> AsyncEngine:
    """The service's engine (working as `settings.database_role`), or the owner's for migrations."""
    server_settings = _server_settings(settings, as_owner)
    connect_args: dict = {"server_settings": server_settings}
    if not as_owner:  # an operator's command may wait for a busy server; a request may not
        connect_args["timeout"] = settings.database_timeout_seconds
    return create_async_engine(
        async_url(url),
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
        pool_size=pool_size or (1 if as_owner else settings.db_pool_size),
        max_overflow=0,
        pool_timeout=settings.queue_timeout_seconds,
        pool_pre_ping=True,  # a connection that outlived a database restart is replaced, not used
        hide_parameters=True,  # a failed statement's values (names, dates of birth) never reach a log
        connect_args=connect_args,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
