"""Load shedding: each worker runs a bounded number of requests and lets a bounded number wait.

Sized from the database pools, so a request that is let in never waits on a pool; one that
finds the queue full, or waits past the queue timeout, is told OVERLOADED at once (503 with
Retry-After) instead of waiting half a minute for a connection and failing as INTERNAL.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator


class Overloaded(Exception):
    """This worker runs and queues as much as it may: the request was not started."""


class Admission:
    """At most `running` requests at once, at most `waiting` more in line (first come, first served)."""

    def __init__(self, running: int, waiting: int, queue_timeout: float) -> None:
        self.running, self.waiting, self.queue_timeout = running, waiting, queue_timeout
        self._turns = asyncio.Semaphore(running)
        self._queued = 0

    @property
    def queued(self) -> int:
        return self._queued

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._turns.locked():
            if self._queued >= self.waiting:
                raise Overloaded(f"{self.running} requests running and {self._queued} waiting")
            self._queued += 1
            try:
                async with asyncio.timeout(self.queue_timeout):
                    await self._turns.acquire()
            except TimeoutError:
                raise Overloaded(f"no turn within {self.queue_timeout:g} s") from None
            finally:
                self._queued -= 1
        else:
            await self._turns.acquire()
        try:
            yield
        finally:
            self._turns.release()
