"""One budget per caller across workers and instances: attempts are counted in PostgreSQL.

A per-process counter gave a partner N times the budget with N workers or instances. Here an
attempt is counted in its own short transaction, on its own connections, under a transaction
lock on the caller's key, so two instances never both admit the last attempt; it is committed
whether or not the request that made it succeeds (every attempt counts, valid or not).
"""

from __future__ import annotations

import math

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from registry import metrics
from registry.domain.errors import RateLimited

LOOKUPS_PER_MINUTE = 30

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('lookup_attempt:' || :key, 0))")
# Forgets the caller's attempts that left the window, counts the rest, and records this one if
# the budget allows it; `retry` is when the oldest counted attempt leaves the window.
_TAKE = text(
    """
    WITH gone AS (
        DELETE FROM lookup_attempt
        WHERE principal = :key AND attempted_at <= clock_timestamp() - make_interval(secs => :window)
    ), recent AS (
        SELECT count(*) AS n, min(attempted_at) AS oldest FROM lookup_attempt
        WHERE principal = :key AND attempted_at > clock_timestamp() - make_interval(secs => :window)
    ), taken AS (
        INSERT INTO lookup_attempt (principal, attempted_at)
        SELECT :key, clock_timestamp() FROM recent WHERE n < :limit
        RETURNING 1
    )
    SELECT n, extract(epoch FROM oldest + make_interval(secs => :window) - clock_timestamp()) AS retry FROM recent
    """
)


class RateLimiter:
    """At most `limit` calls per key in any sliding `window` seconds, counted in the database.

    `await take(key)` counts one call or raises RateLimited (with `retryAfter`) when the key's
    budget is spent. The engine should be the limiter's own, small: a request that already
    holds a connection must never wait for another one from its own pool.
    """

    def __init__(self, engine: AsyncEngine, limit: int = LOOKUPS_PER_MINUTE, window: float = 60.0) -> None:
        self.engine = engine
        self.limit = limit
        self.window = window

    async def take(self, key: str) -> None:
        """Count one call by `key`, or raise RateLimited when its budget is spent."""
        params = {"key": key, "window": float(self.window), "limit": self.limit}
        async with self.engine.begin() as conn:
            await conn.execute(_LOCK, params)
            used, retry = (await conn.execute(_TAKE, params)).one()
        if used >= self.limit:
            metrics.lookup_refused()
            wait = max(1, math.ceil(float(retry or 0)))
            raise RateLimited(f"at most {self.limit} lookups a minute; retry in {wait} s", retryAfter=wait)
