"""Text as the registry stores it: NFC-normalised, bounded, and free of invisible characters.

Every write path passes its text fields through `clean`. A name that looks the same on screen
must be the same string in the database (so one child is not two), and nothing stored may hide
or reorder what a reader sees: control characters, bidirectional overrides and isolates,
zero-width and other format characters, noncharacters and private-use characters are refused,
naming the field. Long text (narratives, note bodies, summaries) keeps its line breaks and tabs.
"""

from __future__ import annotations

import unicodedata

from registry.domain.errors import BadUserInput

NAME_MAX = 200
CODE_MAX = 64
TEXT_MAX = 20_000

_LAYOUT = frozenset("\t\n\r\u2028\u2029")  # what long text may hold of the refused classes
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _refused(ch: str) -> str | None:
    """Why `ch` may not be stored in text, or None."""
    category = unicodedata.category(ch)
    code = ord(ch)
    if ch in _BIDI:
        return "a bidirectional control character"
    if category == "Cc":
        return "a control character"
    if category == "Cf":
        return "a zero-width or format character"
    if category in ("Zl", "Zp"):
        return "a line break"
    if category == "Co":
        return "a private-use character"
    if category == "Cs":
        return "an unpaired surrogate"
    if 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:
        return "a noncharacter"
    return None


def check_characters(value: str, field: str, *, multiline: bool = False) -> None:
    """BadUserInput naming `field` and the kind of character, if `value` holds a refused one."""
    if value.isascii() and value.isprintable():  # the common case, checked in C
        return
    for ch in value:
        if multiline and ch in _LAYOUT:
            continue
        reason = _refused(ch)
        if reason:
            raise BadUserInput(f"{field} contains {reason} (U+{ord(ch):04X})", field=field)


def refuse_nul(value: str | None, field: str) -> str | None:
    """PostgreSQL text cannot hold NUL: such input is the caller's error, not an internal one."""
    if value is not None and "\x00" in value:
        raise BadUserInput(f"{field} contains a NUL character", field=field)
    return value


def clean(value: str | None, field: str, *, limit: int, required: bool = False, multiline: bool = False) -> str | None:
    """Trimmed, NFC-normalised text within `limit` characters, holding no refused character;
    empty means absent. `multiline` (narratives, note bodies) keeps line breaks and tabs."""
    if value is None:
        if required:
            raise BadUserInput(f"{field} is required", field=field)
        return None
    value = unicodedata.normalize("NFC", value.strip())
    if not value:
        if required:
            raise BadUserInput(f"{field} must not be empty", field=field)
        return None
    if len(value) > limit:
        raise BadUserInput(f"{field} is longer than {limit} characters", field=field)
    check_characters(value, field, multiline=multiline)
    return value
