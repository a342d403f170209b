"""Limits on free text, so one request cannot store megabytes in a field."""

from __future__ import annotations

from registry.domain.errors import BadUserInput

NAME_MAX = 200
CODE_MAX = 64
TEXT_MAX = 20_000


def refuse_nul(value: str | None, field: str) -> str | None:
    """PostgreSQL text cannot hold NUL: such input is the caller's error, not an internal one."""
    if value is not None and "\x00" in value:
        raise BadUserInput(f"{field} contains a NUL character", field=field)
    return value


def clean(value: str | None, field: str, *, limit: int, required: bool = False) -> str | None:
    """Trimmed text within `limit` characters; empty means absent."""
    if value is None:
        if required:
            raise BadUserInput(f"{field} is required", field=field)
        return None
    value = value.strip()
    if not value:
        if required:
            raise BadUserInput(f"{field} must not be empty", field=field)
        return None
    if len(value) > limit:
        raise BadUserInput(f"{field} is longer than {limit} characters", field=field)
    return refuse_nul(value, field)
