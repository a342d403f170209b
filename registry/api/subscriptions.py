"""Subscriptions: every event is read with the subscriber's own scope and rules, and audited
before it is sent.

The hub receives every committed outbox event of this process's listener (domain.listener) and
offers it to each subscription whose types it matches, in a bounded queue. A subscription
delivers its events one by one, in id order (so in commit order, per subject too): in one
transaction it reads the record within the subscriber's row scope (outside it, the event is
dropped: not even its type is sent), executes the subscriber's operation with the event as root
value (the field rules, limits and purpose apply as for a query), writes the audit event of what
that disclosed, and commits; only then is the message sent. A delivery that cannot be audited
is not sent: it is tried again for a while, then the socket is closed with a code the client
resumes from. A subscription whose queue overflows (a consumer too slow) closes the socket too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.utilities import get_operation_ast

from registry.access.principal import Principal
from registry.access.scopes import scope_key
from registry.api.context import Context
from registry.api.documents import Refused
from registry.api.errors import deduplicate, error, format_error
from registry.api.events import RegistryEvent, RegistryEventType, decode_cursor
from registry.api.purpose_guard import root_fields
from registry.api.strawberry_internals import graphql_schema
from registry.audit import trail
from registry.db.engine import connector
from registry.domain.listener import OutboxListener
from registry.domain import outbox
from registry.domain.errors import BadUserInput
from registry.domain.outbox import Event

if TYPE_CHECKING:
    from registry.api.services import RequestServices as Services

log = logging.getLogger("registry.events")

# Close codes of graphql-transport-ws, and the registry's use of 4499 (README, "Subscriptions").
BAD_REQUEST, UNAUTHORIZED, FORBIDDEN = 4400, 4401, 4403
INIT_TIMEOUT, DUPLICATE_ID, TOO_MANY_INITS, TERMINATED = 4408, 4409, 4429, 4499
TOO_SLOW = "too slow for the queue: resume with the cursor of the last event received"
UNAVAILABLE = "events cannot be delivered now: resume with the cursor of the last event received"


class Peer(Protocol):
    """The WebSocket connection a subscription sends on (api.websocket)."""

    id: str
    principal: Principal
    purpose: str | None
    justification: str | None

    async def send_next(self, subscription_id: str, payload: dict) -> None: ...

    def terminate(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True)
class Operation:
    """A subscribe message's operation, checked: its text, variables and registryEvents arguments."""

    query: str
    variables: dict[str, Any]
    name: str | None
    types: frozenset[str] | None
    after: int | None


class Hub:
    """This process's subscriptions, fed by its outbox listener."""

    def __init__(self, services: "Services", url: str) -> None:
        self.services = services
        settings = services.settings
        self.keep = timedelta(days=settings.events_keep_days)
        self._streams: set[Stream] = set()
        self._per_principal: Counter[str] = Counter()
        self._checks: dict[int, asyncio.Future[tuple[set, set]]] = {}
        self.listener = OutboxListener(connector(url, settings), self.publish, keep=self.keep)

    def publish(self, events: list[Event]) -> None:
        for stream in tuple(self._streams):
            stream.offer(events)

    def open(self, stream: "Stream") -> None:
        """Count and register a subscription; RATE_LIMITED over the principal's limit."""
        limit = self.services.settings.subscriptions_per_principal
        if self._per_principal[stream.peer.principal.id] >= limit:
            raise _limited(f"at most {limit} subscriptions per caller are open at a time")
        self._per_principal[stream.peer.principal.id] += 1
        stream.last = self.listener.last_id
        self._streams.add(stream)

    def close(self, stream: "Stream") -> None:
        if stream in self._streams:
            self._streams.discard(stream)
            self._per_principal[stream.peer.principal.id] -= 1
            if self._per_principal[stream.peer.principal.id] <= 0:
                del self._per_principal[stream.peer.principal.id]

    # ------------------------------------------------------------------ operations

    async def check(self, peer: Peer, payload: Any) -> Operation:
        """The subscribe payload's operation, checked before anything is registered: trusted
        documents, validation, limits, purpose and the root field's grant, as for a query."""
        if not isinstance(payload, dict):
            raise Rejected([error("the subscribe payload must be a GraphQL request object", "BAD_USER_INPUT")])
        try:
            query = self.services.documents.query(payload)
        except Refused as refused:
            raise Rejected([refused.body]) from None
        variables = payload.get("variables") or {}
        if not isinstance(variables, dict):
            raise Rejected([error("variables must be an object", "BAD_USER_INPUT")])
        name = payload.get("operationName") if isinstance(payload.get("operationName"), str) else None
        try:
            document = parse(query, max_tokens=self.services.settings.max_tokens)
        except GraphQLError as exc:
            raise Rejected([error(exc.message, "BAD_USER_INPUT")]) from None
        operation = _operation(document, name)
        if operation is None or operation.operation != OperationType.SUBSCRIPTION:
            raise Rejected([error("send queries and mutations by POST; subscribe only to subscriptions", "BAD_USER_INPUT")])
        # Run once with an event that has no record: parse, validation, limits, purpose and the
        # grant of the root field all apply; nothing is read and nothing is disclosed.
        ctx = self._context(peer, None, name)
        probe = RegistryEvent(
            cursor="", type=RegistryEventType.REFERRAL_SUBMITTED, occurred_at=datetime.now(timezone.utc),
            referral=None, assessment=None, note=None,
        )
        result = await self.services.schema.execute(
            query, variable_values=variables, context_value=ctx, operation_name=name, root_value=probe
        )
        if result.errors:
            raise Rejected(deduplicate([format_error(e, peer.id)[0] for e in result.errors]))
        types, after = self._arguments(document, operation, variables)
        return Operation(query, variables, name, types, after)

    def _arguments(self, document: Any, operation: OperationDefinitionNode, variables: dict) -> tuple:
        schema = graphql_schema(self.services.schema)
        coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):  # already refused by the probe; kept for safety
            raise Rejected([error(e.message, "BAD_USER_INPUT") for e in coerced])
        (node,) = list(root_fields(document, operation.selection_set, set()))
        root = schema.subscription_type
        if root is None:  # the schema always has one; a rebuilt schema without it subscribes to nothing
            raise Rejected([error("this service has no subscriptions", "BAD_USER_INPUT")])
        arguments = get_argument_values(root.fields[node.name.value], node, coerced)
        raw_types = arguments.get("types")
        types = None if raw_types is None else frozenset(getattr(t, "value", t) for t in raw_types)
        after = arguments.get("after")
        try:
            return types, None if after is None else decode_cursor(after, self.keep)
        except BadUserInput as exc:
            raise Rejected([error(exc.message, exc.code)]) from None

    def _context(self, peer: Peer, session: Any, name: str | None) -> Context:
        return Context(
            principal=peer.principal,
            policy=self.services.policy,
            session=session,
            request_id=peer.id,
            purpose=peer.purpose,
            justification=peer.justification,
            lookups=self.services.lookups,
            operation=name,
        )

    # ------------------------------------------------------------------ delivery

    async def may_see(self, event: Event, principal: Principal) -> bool:
        """Whether the record is in the principal's row scope. Asked once per event for every
        scope subscribed to it in this process, in one statement (domain.outbox.visible_to):
        an event most subscribers may not see costs one round trip, not one per subscriber."""
        check = self._checks.get(event.id)
        if check is None:
            if len(self._checks) >= 10_000:
                for old in list(self._checks)[:5_000]:
                    del self._checks[old]
            check = self._checks[event.id] = asyncio.ensure_future(self._visible_scopes(event))
        try:
            checked, visible = await asyncio.shield(check)
        except Exception:
            self._checks.pop(event.id, None)  # asked again when the delivery is tried again
            raise
        key = scope_key(principal)
        if key in checked:
            return key in visible
        async with self.services.reads.acquire() as connection:  # subscribed after the check
            return (await outbox.visible_to(connection, event, [principal]))[0]

    async def _visible_scopes(self, event: Event) -> tuple[set, set]:
        principals: dict[object, Principal] = {}
        for stream in self._streams:
            types = stream.operation.types
            if types is None or event.type in types:
                principals.setdefault(scope_key(stream.peer.principal), stream.peer.principal)
        keys = list(principals)
        async with self.services.reads.acquire() as connection:
            answers = await outbox.visible_to(connection, event, [principals[k] for k in keys])
        return set(keys), {k for k, yes in zip(keys, answers) if yes}

    async def deliver(self, stream: "Stream", event: Event) -> dict | None:
        """The message for one event, audited and committed; None when the subscriber may not
        see the record. Raises when it could not be read or audited: nothing is sent then."""
        op, peer = stream.operation, stream.peer
        async with self.services.sessions() as session:
            async with session.begin():
                row = await outbox.visible_record(session, peer.principal, event)
                if row is None:
                    return None
                ctx = self._context(peer, session, op.name)
                result = await self.services.schema.execute(
                    op.query,
                    variable_values=op.variables,
                    context_value=ctx,
                    operation_name=op.name,
                    root_value=RegistryEvent.of(event, row),
                )
                formatted, unexpected = [], False
                for err in result.errors or []:
                    out, bad = format_error(err, peer.id)
                    formatted.append(out)
                    unexpected |= bad
                if unexpected:
                    raise DeliveryFailed("the operation failed unexpectedly")
                formatted = deduplicate(formatted)
                if ctx.disclosure:
                    refused = [e["extensions"] for e in formatted if e.get("extensions", {}).get("code") == "FORBIDDEN"]
                    await trail.record(
                        session,
                        ctx.actor(),
                        "records.delivered",
                        subject_ids=ctx.disclosure.subject_ids,
                        records=ctx.disclosure.records(),
                        detail={
                            "subscription": stream.id,
                            "event": event.type,
                            "eventId": event.id,
                            "refusals": [{"code": r["code"], "field": r.get("field")} for r in refused],
                        },
                    )
        message: dict[str, Any] = {"data": result.data}
        if formatted:
            message["errors"] = formatted
        return message


class Rejected(Exception):
    """A subscribe message refused before it started: the errors of its `error` message."""

    def __init__(self, errors: list[dict]) -> None:
        super().__init__("subscription refused")
        self.errors = errors


class DeliveryFailed(Exception):
    """An event could not be read, executed or audited: it is not sent."""


class _GaveUp(Exception):
    """A delivery kept failing: the connection is being closed with a resumable code."""


def _limited(message: str) -> Rejected:
    return Rejected([error(message, "RATE_LIMITED")])


def _operation(document: Any, name: str | None) -> OperationDefinitionNode | None:
    return get_operation_ast(document, name)


class Stream:
    """One subscription: a bounded queue of events and the task delivering them in order."""

    def __init__(self, hub: Hub, peer: Peer, subscription_id: str, operation: Operation) -> None:
        self.hub, self.peer, self.id, self.operation = hub, peer, subscription_id, operation
        self.queue: asyncio.Queue[Event] = asyncio.Queue(hub.services.settings.subscriber_queue_size)
        self.last = 0  # the newest event id handled (delivered, or dropped as not visible)
        self.task: asyncio.Task | None = None

    def offer(self, events: list[Event]) -> None:
        types = self.operation.types
        for event in events:
            if types is not None and event.type not in types:
                continue
            try:
                self.queue.put_nowait(event)
            except asyncio.QueueFull:
                log.info("subscriber too slow (connection %s): closed", self.peer.id)
                self.peer.terminate(TERMINATED, TOO_SLOW)
                return

    async def run(self) -> None:
        try:
            if self.operation.after is not None:
                await self._replay(self.operation.after)
            while True:
                event = await self.queue.get()
                await self._handle(event)
        except _GaveUp:
            return

    async def _replay(self, after: int) -> None:
        """What the client missed: the outbox after its cursor. Live events queued meanwhile
        that the replay covered are then skipped by id."""
        self.last = after
        while True:
            async with self.hub.services.reads.acquire() as connection:
                events = await outbox.after(connection, self.last, 200)
            if not events:
                return
            for event in events:
                if self.operation.types is None or event.type in self.operation.types:
                    await self._handle(event)
                self.last = max(self.last, event.id)

    async def _handle(self, event: Event) -> None:
        if event.id <= self.last:
            return  # replayed already, or offered twice
        started = time.monotonic()
        while True:
            try:
                message = await self.hub.deliver(self, event) if await self.hub.may_see(event, self.peer.principal) else None
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - database or audit failure: not sent, tried again
                if time.monotonic() - started > self.hub.services.settings.delivery_retry_seconds:
                    log.warning("event %d not delivered (%s): connection %s closed", event.id, type(exc).__name__, self.peer.id)
                    self.peer.terminate(TERMINATED, UNAVAILABLE)
                    raise _GaveUp from None
                await asyncio.sleep(0.5)
        self.last = event.id
        if message is not None:
            await self.peer.send_next(self.id, message)


async def start(services: "Services", url: str) -> Hub:
    """This process's hub, its listener connected (a database out of reach stops the start)."""
    hub = Hub(services, url)
    await hub.listener.start()
    return hub


__all__ = ["Hub", "Stream", "Rejected", "start"]
