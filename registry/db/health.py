"""Whether the database answers, decided in one place per process.

A database out of reach, refusing connections, in recovery or frozen must cost a client a fast
503, not a hang: requests run under a deadline this module can bring forward, and while the
database is known to be down they are refused before they touch a pool. It is known down when
a health ping fails; a request that met a connection failure, or has waited on the database
longer than the timeout, asks for a ping. While down, a ping every quarter second notices its
return, and the pools drop the connections that predate the failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, AsyncIterator, Awaitable, Callable, Coroutine, TypeVar

import asyncpg

from registry.db.failures import NOT_CHANGED, DatabaseUnavailable

log = logging.getLogger(__name__)

_RECOVERY_INTERVAL = 0.25
LATE = "the database did not answer in time; if this was a change, read the record back before retrying"
T = TypeVar("T")
_cleaning_up: set[asyncio.Task] = set()


def _cleaned_up(task: asyncio.Task) -> None:
    _cleaning_up.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a failure after the answer was given is no news


class DatabaseHealth:
    """One process's view of the database, and the deadlines of the requests waiting on it."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], timeout: float) -> None:
        self._connect = connect
        self.timeout = timeout
        self.available = True
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the health connection
        self._deadlines: dict[asyncio.Timeout, float] = {}  # when each request began waiting
        self._waiting: dict[asyncio.Future, float] = {}
        self._on_down: list[Callable[[], None]] = []
        self._check: asyncio.Task | None = None
        self._watch: asyncio.Task | None = None
        self._recovery: asyncio.Task | None = None

    def on_down(self, callback: Callable[[], None]) -> None:
        """Call `callback` each time the database is found down (a pool drops its idle connections)."""
        self._on_down.append(callback)

    def start(self) -> None:
        self._watch = asyncio.create_task(self._watch_deadlines())

    async def close(self) -> None:
        for task in (self._watch, self._check, self._recovery):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._connection is not None:
            self._connection.terminate()

    @contextlib.asynccontextmanager
    async def deadline(self, seconds: float) -> AsyncIterator[None]:
        """Run the block for at most `seconds`, or less if the database is found down meanwhile;
        then DatabaseUnavailable. Refused at once while it is known down. For work whose clean-up
        after a cancellation does not wait on the database (see `within` for the rest)."""
        self._refuse_if_down()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(seconds) as timeout:
                self._deadlines[timeout] = loop.time()
                try:
                    yield
                finally:
                    del self._deadlines[timeout]
        except TimeoutError:
            raise DatabaseUnavailable(LATE) from None

    async def within(self, work: Coroutine[Any, Any, T], seconds: float) -> T:
        """`work`'s result within `seconds`, or sooner DatabaseUnavailable if the database is found
        down meanwhile. The work runs as a task of its own: once cancelled, its clean-up (a
        rollback to a savepoint, say) may wait on a frozen database, and goes on in the background
        while the client has its answer."""
        if not self.available:
            work.close()  # never started: nothing to clean up
            raise DatabaseUnavailable(NOT_CHANGED)
        task = asyncio.ensure_future(work)
        answered = asyncio.get_running_loop().create_future()
        self._waiting[answered] = asyncio.get_running_loop().time()
        try:
            await asyncio.wait((task, answered), timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            del self._waiting[answered]
        if task.done():
            return task.result()
        task.cancel()
        _cleaning_up.add(task)
        task.add_done_callback(_cleaned_up)
        raise DatabaseUnavailable(LATE)

    def _refuse_if_down(self) -> None:
        if not self.available:
            raise DatabaseUnavailable(NOT_CHANGED)

    def suspect(self) -> None:
        """A request met a connection failure: ping now (once at a time) to tell a dead pooled
        connection from a dead database."""
        if self.available and (self._check is None or self._check.done()):
            self._check = asyncio.create_task(self._verify())

    async def ping(self, timeout: float | None = None) -> bool:
        """Whether SELECT 1 answers within `timeout` (default: the database timeout)."""
        try:
            await self.fetchval("SELECT 1", timeout)
            return True
        except Exception:  # noqa: BLE001 - any failure is "did not answer"
            return False

    async def fetchval(self, query: str, timeout: float | None = None) -> object:
        """One value over the health connection (made anew if need be), within `timeout`; a
        connection that failed is dropped."""
        try:
            async with asyncio.timeout(timeout or self.timeout):
                async with self._lock:
                    if self._connection is None or self._connection.is_closed():
                        self._connection = await self._connect()
                    return await self._connection.fetchval(query)
        except BaseException:
            if self._connection is not None and not self._lock.locked():
                self._connection.terminate()
                self._connection = None
            raise

    async def _verify(self) -> None:
        if not await self.ping():
            self._down()

    def _down(self) -> None:
        if not self.available:
            return
        self.available = False
        log.warning("database unavailable: requests are refused with UNAVAILABLE until it answers again")
        now = asyncio.get_running_loop().time()
        for timeout in list(self._deadlines):
            timeout.reschedule(now)  # the requests waiting on it answer now
        for answered in list(self._waiting):
            if not answered.done():
                answered.set_result(None)
        for callback in self._on_down:
            callback()
        self._recovery = asyncio.create_task(self._recover())

    async def _recover(self) -> None:
        while not await self.ping():
            await asyncio.sleep(_RECOVERY_INTERVAL)
        self.available = True
        log.warning("database available again")

    async def _watch_deadlines(self) -> None:
        """A request waiting on the database longer than the timeout asks for a ping: a frozen
        server answers no ping either, and is then found down within about twice the timeout."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_RECOVERY_INTERVAL)
            started = [*self._deadlines.values(), *self._waiting.values()]
            if self.available and started and min(started) < loop.time() - self.timeout:
                if self._check is None or self._check.done():
                    self._check = asyncio.create_task(self._verify())
