"""Compiled reads wait for a database connection in the order they arrived: a request that
comes in just as a connection is released does not take it from one already waiting."""

from __future__ import annotations

import asyncio
import asyncpg

from registry.db.engine import _end_transaction, create_read_pool, sync_url


async def first_come_first_served(pool) -> list[str]:
    """Who got the only connection first: the request waiting for it, or the newcomer that
    starts in the same turn of the event loop as the connection is given back."""
    served: list[str] = []
    newcomer: list[asyncio.Task] = []

    async def request(name: str) -> None:
        async with pool.acquire():
            served.append(name)

    async with pool.acquire():
        waiting = asyncio.create_task(request("waiting"))
        await asyncio.sleep(0.05)  # queued for the connection
        # arrives in the turn that gives the connection back, as a new HTTP request can
        asyncio.get_running_loop().call_soon(lambda: newcomer.append(asyncio.create_task(request("newcomer"))))
    await asyncio.gather(waiting, *newcomer)
    return served


async def test_the_request_that_waited_is_served_first(settings, database_url):
    pool = await create_read_pool(database_url, settings.model_copy(update={"db_pool_size": 1}))
    try:
        assert await first_come_first_served(pool) == ["waiting", "newcomer"]
    finally:
        await pool.close()


async def test_the_drivers_own_pool_would_let_the_newcomer_pass(database_url):
    # the behaviour the read pool exists for: asyncpg's queue hands the connection to whoever
    # asks first once it is back, not to the request that waited
    pool = await asyncpg.create_pool(sync_url(database_url), min_size=1, max_size=1, reset=_end_transaction)
    try:
        assert await first_come_first_served(pool) == ["newcomer", "waiting"]
    finally:
        await pool.close()
