"""The compiled reads' connections: lent in the order requests asked for them (one arriving just
as a connection is released does not take it from one already waiting), never more than the
pool's size at once, and never lent again in a state a request left behind."""

from __future__ import annotations

import asyncio

import pytest

from registry.db.engine import create_read_pool


@pytest.fixture
async def pool_of(settings, database_url):
    pools = []

    async def make(size: int):
        pools.append(await create_read_pool(database_url, settings.model_copy(update={"db_pool_size": size})))
        return pools[-1]

    yield make
    for pool in pools:
        await pool.close()


async def test_the_request_that_waited_is_served_first(pool_of):
    pool = await pool_of(1)
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
    assert served == ["waiting", "newcomer"]


async def test_no_more_connections_than_the_pool_size_are_lent_at_once(pool_of):
    pool = await pool_of(2)
    backends: set[int] = set()
    at_once = most = 0

    async def request() -> None:
        nonlocal at_once, most
        async with pool.acquire() as connection:
            at_once += 1
            most = max(most, at_once)
            backends.add(await connection.fetchval("SELECT pg_backend_pid()"))
            await asyncio.sleep(0.01)
            at_once -= 1

    await asyncio.gather(*(request() for _ in range(8)))
    assert most == 2
    assert len(backends) == 2


async def test_a_connection_left_in_a_transaction_is_not_lent_again(pool_of):
    pool = await pool_of(1)
    async with pool.acquire() as connection:
        left = connection
        await connection.execute("BEGIN")
    assert left.is_closed()
    async with pool.acquire() as connection:
        assert connection is not left
        assert not connection.is_in_transaction()
        assert await connection.fetchval("SELECT 1") == 1


async def test_a_connection_whose_request_failed_is_not_lent_again(pool_of):
    pool = await pool_of(1)
    with pytest.raises(RuntimeError):
        async with pool.acquire() as connection:
            failed = connection
            raise RuntimeError("the request failed")
    assert failed.is_closed()
    async with pool.acquire() as connection:
        assert connection is not failed
        assert await connection.fetchval("SELECT 1") == 1
