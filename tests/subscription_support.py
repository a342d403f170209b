"""Support for subscription tests: a second service instance on a real port, and real clients.

The instance under test is served by uvicorn on loopback, on the same database as the test
app: the workflow runs over HTTP on the test app (another instance), so every event reaches the
subscribers through the outbox and PostgreSQL's NOTIFY, as between two deployed instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import uvicorn
import websockets
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport
from graphql import ExecutionResult

from registry.app import create_app
from registry.config import Settings

PROTOCOL = "graphql-transport-ws"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serve(settings: Settings, **overrides: Any) -> AsyncIterator[str]:
    """A service instance on a free loopback port; yields its ws:// URL for /graphql."""
    port = free_port()
    app = create_app(settings.model_copy(update=overrides))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def init_payload(token: str, purpose: str | None) -> dict[str, str]:
    payload = {"Authorization": f"Bearer {token}"}
    if purpose:
        payload["Registry-Purpose"] = purpose
    return payload


@dataclass
class Subscriber:
    """One gql client subscribed: what it received, as ExecutionResults (errors included)."""

    received: list[ExecutionResult] = field(default_factory=list)
    ended: BaseException | None = None
    task: asyncio.Task | None = None

    def close_code(self) -> int | None:
        """The close code the server ended the connection with, if it did."""
        exc, seen = self.ended, 0
        while exc is not None and seen < 6:
            if isinstance(exc, websockets.ConnectionClosed):
                return exc.rcvd.code if exc.rcvd else exc.code
            exc, seen = exc.__cause__ or exc.__context__, seen + 1
        return None

    def data(self) -> list[dict]:
        return [r.data["registryEvents"] for r in self.received]

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        for _ in range(int(timeout / 0.05)):
            if len(self.received) >= count or self.ended is not None:
                break
            await asyncio.sleep(0.05)
        assert len(self.received) >= count, (len(self.received), count, self.ended)

    async def quiet(self, seconds: float = 0.6) -> None:
        """Give events that should not arrive the time to arrive."""
        await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def subscribed(
    url: str, token: str, purpose: str | None, query: str, variables: dict | None = None
) -> AsyncIterator[Subscriber]:
    """A gql client over graphql-transport-ws, subscribed to `query` while the block runs."""
    transport = WebsocketsTransport(url=url, init_payload=init_payload(token, purpose), subprotocols=[PROTOCOL])
    subscriber = Subscriber()
    started = asyncio.Event()

    async def run() -> None:
        try:
            async with Client(transport=transport) as session:
                request = gql(query)
                request.variable_values = variables or {}
                stream = session.transport.subscribe(request)
                started.set()
                async for result in stream:
                    subscriber.received.append(result)
        except asyncio.CancelledError:
            raise  # the test ended the subscription
        except Exception as exc:  # noqa: BLE001 - kept for the test to look at
            subscriber.ended = exc
            started.set()

    subscriber.task = asyncio.create_task(run())
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(0.3)  # the subscribe message is sent and registered
    try:
        yield subscriber
    finally:
        subscriber.task.cancel()
        with contextlib.suppress(BaseException):
            await subscriber.task


async def close_code(url: str, payload: dict | None, *, then: list[dict] | None = None, timeout: float = 10) -> int:
    """Connect with a raw WebSocket client, send connection_init (and `then`), and return the
    close code the server ends the connection with."""
    async with websockets.connect(url, subprotocols=[PROTOCOL]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        for message in then or []:
            await ws.send(json.dumps(message))
        try:
            while True:
                await asyncio.wait_for(ws.recv(), timeout)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else closed.code
