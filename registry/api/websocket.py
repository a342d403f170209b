"""GraphQL over WebSocket at /graphql, protocol graphql-transport-ws (graphql-ws, Apollo, GraphiQL).

Nothing runs before `connection_init` has been verified exactly like an HTTP request: its
payload's `Authorization` (a bearer token, checked by access.identity) and `Registry-Purpose`
(with `Registry-Justification`), which must be a purpose the caller's roles may declare for
their subscriptions (access.purpose). A bad token closes the socket with 4401, a purpose or role
that may not subscribe with 4403; the socket is closed with 4401 when the token expires. Each
`subscribe` is then checked like a query (api.subscriptions) and answered `next` per event,
`error` when refused, `complete` when the client ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any, cast

import orjson
from starlette.websockets import WebSocket

from registry.access import purpose
from registry.access.identity import InvalidToken
from registry.access.principal import Principal
from registry.api.subscriptions import (
    BAD_REQUEST,
    DUPLICATE_ID,
    FORBIDDEN,
    INIT_TIMEOUT,
    TOO_MANY_INITS,
    UNAUTHORIZED,
    Hub,
    Peer,
    Rejected,
    Stream,
)
from registry.api.errors import error
from registry.api.http import Answer, bind_agency
from registry.db.failures import DatabaseUnavailable


TRY_AGAIN_LATER = 1013  # WebSocket's own close code for a server that cannot serve now

log = logging.getLogger("registry.events")

PROTOCOL = "graphql-transport-ws"
_REASON_BYTES = 123  # the most a WebSocket close frame carries


class _Closed(Exception):
    """The socket is closing: stop reading it."""


class Connection:
    """One client's socket: its verified caller and its subscriptions by id."""

    def __init__(self, websocket: WebSocket, hub: Hub) -> None:
        self.websocket, self.hub = websocket, hub
        self.id = uuid.uuid4().hex  # the request id of its audit events
        self.principal: Principal | None = None
        self.purpose: str | None = None
        self.justification: str | None = None
        self.streams: dict[str, Stream] = {}
        self._send_lock = asyncio.Lock()
        self._closing: asyncio.Task | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._done = asyncio.Event()

    # ------------------------------------------------------------------ sending

    async def _send(self, message: dict) -> None:
        async with self._send_lock:
            await self.websocket.send_text(orjson.dumps(message).decode())

    async def send_next(self, subscription_id: str, payload: dict) -> None:
        if subscription_id in self.streams and self._closing is None:
            try:
                await self._send({"type": "next", "id": subscription_id, "payload": payload})
            except Exception:  # noqa: BLE001 - the client went away while it was sent
                self._done.set()

    def terminate(self, code: int, reason: str) -> None:
        """Close the socket (once): subscriptions stop first, so nothing more is read or audited."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        self._stop_all()
        self._done.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code, reason.encode()[:_REASON_BYTES].decode(errors="ignore")), 5)

    def _stop_all(self) -> None:
        for stream in self.streams.values():
            self._stop(stream)
        self.streams.clear()
        if self._expiry is not None:
            self._expiry.cancel()

    def _stop(self, stream: Stream) -> None:
        self.hub.close(stream)
        if stream.task is not None:
            stream.task.cancel()

    # ------------------------------------------------------------------ the protocol

    async def serve(self) -> None:
        if PROTOCOL not in self.websocket.scope.get("subprotocols", []):
            await self.websocket.close(1002)  # refused before the upgrade
            return
        await self.websocket.accept(subprotocol=PROTOCOL)
        reader = asyncio.create_task(self._read())
        waiter = asyncio.create_task(self._done.wait())
        try:
            await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            waiter.cancel()
            self._stop_all()
            if self._closing is not None:
                with contextlib.suppress(Exception):
                    await self._closing

    async def _read(self) -> None:
        timeout = self.hub.services.settings.connection_init_timeout_seconds
        try:
            first = await asyncio.wait_for(self._receive(), timeout)
        except asyncio.TimeoutError:
            self.terminate(INIT_TIMEOUT, "Connection initialisation timeout")
            return
        except _Closed:
            return
        try:
            if first.get("type") != "connection_init":
                self.terminate(UNAUTHORIZED, "Unauthorized")
                return
            await self._init(first.get("payload"))
            while self._closing is None:
                await self._handle(await self._receive())
        except _Closed:
            return

    async def _receive(self) -> dict:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            self._done.set()
            raise _Closed
        text = message.get("text")
        if text is None and message.get("bytes") is not None:
            text = message["bytes"].decode("utf-8", errors="replace")
        try:
            parsed = orjson.loads(text or "")
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
            self.terminate(BAD_REQUEST, "Invalid message received")
            raise _Closed
        return parsed

    async def _init(self, payload: Any) -> None:
        """Verify the caller exactly as for HTTP; acknowledge, or close with 4401 / 4403."""
        fields = {str(k).lower(): v for k, v in payload.items()} if isinstance(payload, dict) else {}
        scheme, _, token = str(fields.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.terminate(UNAUTHORIZED, "a bearer token is required in connection_init's Authorization")
            raise _Closed
        services = self.hub.services
        try:
            principal, until = await services.verifier.verify_until(token.strip())
        except InvalidToken as exc:
            log.info("token refused on a WebSocket: %s", exc)
            self.terminate(UNAUTHORIZED, f"invalid token: {exc}")
            raise _Closed from None
        refusal = await _agency_refusal(services, principal)
        if refusal is not None:
            self.terminate(*refusal)
            raise _Closed
        principal = services.policy.bind(principal)
        grants = services.policy.grants_for(principal)
        self.purpose = _text(fields.get("registry-purpose"))
        self.justification = _text(fields.get("registry-justification"))
        if not grants.subscriptions:
            self.terminate(FORBIDDEN, "your role may not subscribe")
            raise _Closed
        try:
            purpose.check(
                grants,
                purpose.Declared(self.purpose, self.justification, "Subscription", grants.subscriptions, frozenset()),
            )
        except purpose.PurposeRefused as refused:
            self.terminate(FORBIDDEN, refused.message)
            raise _Closed from None
        self.principal = principal
        self._expiry = asyncio.get_running_loop().call_later(
            max(0.0, until - time.time()), self.terminate, UNAUTHORIZED, "token expired"
        )
        await self._send({"type": "connection_ack"})

    async def _handle(self, message: dict) -> None:
        kind = message["type"]
        if kind == "ping":
            await self._send({"type": "pong", **({"payload": message["payload"]} if "payload" in message else {})})
        elif kind == "pong":
            return
        elif kind == "connection_init":
            self.terminate(TOO_MANY_INITS, "Too many initialisation requests")
            raise _Closed
        elif kind == "subscribe":
            await self._subscribe(message)
        elif kind == "complete":
            stream = self.streams.pop(str(message.get("id")), None)
            if stream is not None:
                self._stop(stream)
        else:
            self.terminate(BAD_REQUEST, f"Invalid message type {kind[:40]!r}")
            raise _Closed

    async def _subscribe(self, message: dict) -> None:
        subscription_id = message.get("id")
        if not isinstance(subscription_id, str) or not subscription_id:
            self.terminate(BAD_REQUEST, "subscribe needs an id")
            raise _Closed
        if subscription_id in self.streams:
            self.terminate(DUPLICATE_ID, f"Subscriber for {subscription_id[:60]} already exists")
            raise _Closed
        settings = self.hub.services.settings
        try:
            if len(self.streams) >= settings.subscriptions_per_connection:
                limit = settings.subscriptions_per_connection
                raise Rejected([error(f"at most {limit} subscriptions per connection", "RATE_LIMITED")])
            peer = cast(Peer, self)  # acknowledged (connection_init passed): its principal is set
            operation = await self.hub.check(peer, message.get("payload"))
            stream = Stream(self.hub, peer, subscription_id, operation)
            self.hub.open(stream)
        except Rejected as rejected:
            await self._send({"type": "error", "id": subscription_id, "payload": rejected.errors})
            return
        self.streams[subscription_id] = stream
        stream.task = asyncio.create_task(self._run(stream))

    async def _run(self, stream: Stream) -> None:
        try:
            await stream.run()
        except Exception:  # noqa: BLE001 - a failed subscription must not leave its socket open
            log.exception("subscription failed (connection %s)", self.id)
            self.terminate(1011, "internal error")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def graphql_websocket(websocket: WebSocket) -> None:
    """The WebSocket endpoint at /graphql."""
    await Connection(websocket, websocket.app.state.services.events).serve()


async def _agency_refusal(services: Any, principal: Any) -> tuple[int, str] | None:
    """The close code and reason when the token's roles may not be held by its agency (audited
    as over HTTP), or when the database cannot tell in time (a try-again close)."""
    try:
        await bind_agency(principal, services, f"ws-{uuid.uuid4().hex}")
    except Answer as refused:
        return UNAUTHORIZED, str(refused)
    except DatabaseUnavailable:
        return TRY_AGAIN_LATER, "the database is unavailable; reconnect later"
    return None
