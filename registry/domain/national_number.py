"""Belgian national register numbers (and BIS numbers): format and check digits."""

from __future__ import annotations

import re

from registry.domain.errors import BadUserInput

_SEPARATORS = re.compile(r"[\s.\-]")


def normalize(value: str) -> str:
    """The 11 digits of a valid number, or BadUserInput; accepts the usual dots and dashes."""
    digits = _SEPARATORS.sub("", value or "")
    if not re.fullmatch(r"\d{11}", digits):
        raise BadUserInput("nationalNumber must have 11 digits", field="nationalNumber")
    body, check = int(digits[:9]), int(digits[9:])
    # Born before 2000: 97 - body mod 97; from 2000 on, a 2 is prefixed to the body.
    if check not in (97 - body % 97, 97 - (2_000_000_000 + body) % 97):
        raise BadUserInput("nationalNumber has invalid check digits", field="nationalNumber")
    return digits


def check_digits(first_nine: str, born_2000_or_later: bool) -> str:
    """The two check digits for a 9-digit body (used to generate fictional demo numbers)."""
    body = int(first_nine) + (2_000_000_000 if born_2000_or_later else 0)
    return f"{97 - body % 97:02d}"
