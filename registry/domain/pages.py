"""Keyset pagination: opaque cursors over a unique sort key, stable under inserts."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from registry.domain.errors import BadUserInput

T = TypeVar("T")
MAX_PAGE_SIZE = 100


@dataclass
class Page(Generic[T]):
    rows: list[T]
    has_next: bool
    has_previous: bool


def check_first(first: int) -> int:
    if first < 0 or first > MAX_PAGE_SIZE:
        raise BadUserInput(f"first must be between 0 and {MAX_PAGE_SIZE}", field="first")
    return first


def timestamp_text(moment: datetime) -> str:
    """ISO 8601 in UTC, fraction without trailing zeros: exactly PostgreSQL's JSON text of a
    timestamptz in a UTC session, so compiled and resolved responses spell times alike."""
    text = moment.astimezone(timezone.utc).isoformat()
    if moment.microsecond:
        head, _, offset = text.rpartition("+")
        text = head.rstrip("0") + "+" + offset
    return text


def encode_cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps([str(k) for k in key]).encode()).decode()


def decode_cursor(cursor: str, parts: int) -> list[str]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        raise BadUserInput("after is not a valid cursor", field="after") from None
    if not isinstance(key, list) or len(key) != parts or not all(isinstance(k, str) and "\x00" not in k for k in key):
        raise BadUserInput("after is not a valid cursor", field="after")
    return key
