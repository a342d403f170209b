"""The outbox listener: one connection per process, dedicated to LISTEN, never lent to a request.

A notification only says "look": the listener then reads every committed event after the last
one it handed on, in id order (the ids are committed in order: domain.outbox). So a missed or
coalesced notification loses nothing, and after the database restarts the listener connects
again and the same read fills the gap. It also looks every few seconds without being told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Awaitable, Callable

import asyncpg

from registry.domain import outbox
from registry.domain.outbox import Event

log = logging.getLogger("registry.events")

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class OutboxListener:
    """Hands every committed outbox event to `deliver`, once, in id order."""

    def __init__(
        self,
        connect: Connect,
        deliver: Callable[[list[Event]], None],
        *,
        keep: timedelta,
        poll_seconds: float = 2.0,
        retry_seconds: float = 0.5,
        prune_seconds: float = 3600.0,
    ) -> None:
        self._connect, self._deliver = connect, deliver
        self._keep, self._poll, self._retry, self._prune_every = keep, poll_seconds, retry_seconds, prune_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._pruned_at = float("-inf")  # prune once at start, then every prune_seconds
        self.last_id = 0  # the newest event handed on
        self.connected = asyncio.Event()

    async def start(self) -> None:
        """Connect now (a database out of reach stops the start) and hand on events from here."""
        connection = await self._listen()
        self.last_id = await outbox.last_id(connection)
        self._task = asyncio.create_task(self._run(connection))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> asyncpg.Connection:
        connection = await self._connect()
        await connection.add_listener(outbox.CHANNEL, self._notified)
        connection.add_termination_listener(lambda _conn: self._wake.set())
        self.connected.set()
        return connection

    def _notified(self, *_args: object) -> None:
        self._wake.set()  # the payload (an event id) is not needed: everything after last_id is read

    async def _run(self, connection: asyncpg.Connection | None) -> None:
        while True:
            try:
                if connection is None or connection.is_closed():
                    connection = await self._listen()
                    log.info("event listener connected again; reading what was missed")
                await self._catch_up(connection)
                await self._maybe_prune(connection)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)
                self._wake.clear()
            except asyncio.CancelledError:
                if connection is not None:
                    connection.terminate()
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.connected.clear()
                log.warning("event listener lost the database (%s); retrying", type(exc).__name__)
                if connection is not None:
                    connection.terminate()
                connection = None
                await asyncio.sleep(self._retry)

    async def _catch_up(self, connection: asyncpg.Connection) -> None:
        while True:
            events = await outbox.after(connection, self.last_id)
            if not events:
                return
            self.last_id = events[-1].id
            self._deliver(events)

    async def _maybe_prune(self, connection: asyncpg.Connection) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._pruned_at >= self._prune_every:
            self._pruned_at = now
            removed = await outbox.prune(connection, self._keep)
            if removed:
                log.info("removed %d events older than the %s kept", removed, self._keep)
