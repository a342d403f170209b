"""The subscription root: `registryEvents`, what the registry tells a subscriber has happened.

An event's record is read at delivery with the subscriber's own row scope (api.subscriptions);
its fields then pass the field rules like any query's (api.field_guard). The event itself is
the operation's root value: this module only declares the types and the cursor.
"""

from __future__ import annotations

import base64
import enum
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, AsyncGenerator, Iterator, Optional

import strawberry
from graphql import ExecutionResult, GraphQLError, OperationType
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types import Info

from registry.api.types import FollowUpNote, Referral, ThreatAssessment
from registry.domain.errors import BadUserInput
from registry.domain.outbox import Event


@strawberry.enum(description="What happened.")
class RegistryEventType(enum.Enum):
    REFERRAL_SUBMITTED = "REFERRAL_SUBMITTED"
    REFERRAL_ACKNOWLEDGED = "REFERRAL_ACKNOWLEDGED"
    REFERRAL_CLOSED = "REFERRAL_CLOSED"
    ASSESSMENT_VALIDATED = "ASSESSMENT_VALIDATED"
    NOTE_ADDED = "NOTE_ADDED"


@strawberry.type(description="Something that happened to a record the subscriber may see, as it is now.")
class RegistryEvent:
    cursor: str = strawberry.field(description="Position of this event; pass as `after` to resume after it.")
    type: RegistryEventType = strawberry.field(description="What happened.")
    occurred_at: datetime = strawberry.field(description="When the change was committed.")
    referral: Optional[Referral] = strawberry.field(description="The referral, for REFERRAL_* events.")
    assessment: Optional[ThreatAssessment] = strawberry.field(description="The assessment, for ASSESSMENT_VALIDATED.")
    note: Optional[FollowUpNote] = strawberry.field(description="The note, for NOTE_ADDED.")

    @classmethod
    def of(cls, event: Event, row: Any) -> "RegistryEvent":
        kind = event.record_type
        return cls(
            cursor=encode_cursor(event),
            type=RegistryEventType(event.type),
            occurred_at=event.occurred_at,
            referral=Referral.from_row(row) if kind == "Referral" else None,
            assessment=ThreatAssessment.from_row(row) if kind == "ThreatAssessment" else None,
            note=FollowUpNote.from_row(row) if kind == "FollowUpNote" else None,
        )


OVER_WEBSOCKET = "subscriptions run over WebSocket at /graphql (protocol graphql-transport-ws)"


@strawberry.type(description="Events pushed over WebSocket (graphql-transport-ws) as they happen.")
class Subscription:
    @strawberry.subscription(
        description="Events about records the caller may see, in commit order per subject; `after` resumes after a cursor."
    )
    async def registry_events(
        self,
        info: Info,
        types: Annotated[
            Optional[list[RegistryEventType]], strawberry.argument(description="Only these types; all when omitted.")
        ] = None,
        after: Annotated[
            Optional[str],
            strawberry.argument(description="Cursor of the last event received: what followed it is replayed first."),
        ] = None,
    ) -> AsyncGenerator[RegistryEvent, None]:
        """Never called: the WebSocket server (api.subscriptions) executes the operation once per
        event with the event as root value, after reading its record in the subscriber's scope."""
        raise BadUserInput(OVER_WEBSOCKET)
        yield  # pragma: no cover - makes this a generator, as the schema requires


class OnlyOverWebSocket(SchemaExtension):
    """A subscription sent another way (POST) is refused before it runs: it has no event to resolve."""

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        operation = get_operation_ast(ec.graphql_document, ec.operation_name) if ec.graphql_document else None
        if operation is not None and operation.operation == OperationType.SUBSCRIPTION and ec.root_value is None:
            refused = BadUserInput(OVER_WEBSOCKET)
            ec.result = ExecutionResult(data=None, errors=[GraphQLError(refused.message, original_error=refused)])
        yield


# --------------------------------------------------------------------------- cursors

_PREFIX = "ev1:"


def encode_cursor(event: Event) -> str:
    stamp = int(event.occurred_at.timestamp())
    return base64.urlsafe_b64encode(f"{_PREFIX}{event.id}:{stamp}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, keep: timedelta) -> int:
    """The event id a cursor points at; BAD_USER_INPUT when it is not one, or older than `keep`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(_PREFIX):
            raise ValueError
        event_id, stamp = (int(part) for part in raw[len(_PREFIX):].split(":"))
    except (ValueError, UnicodeError):
        raise BadUserInput("`after` is not a cursor of registryEvents") from None
    if event_id < 0:
        raise BadUserInput("`after` is not a cursor of registryEvents")
    if datetime.fromtimestamp(stamp, timezone.utc) < datetime.now(timezone.utc) - keep:
        days = keep.total_seconds() / 86400
        raise BadUserInput(
            f"`after` points at an event older than the {days:g} days events are kept: "
            "resume without it and reload what you show from queries"
        )
    return event_id
