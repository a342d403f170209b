"""Belgian national register numbers (and BIS numbers): one spelling, then the check digits.

A number is stored and compared as 11 ASCII digits, whatever digits and separators it was
typed with, so the same child can never get a second file (nor a partner a NO_HIT) because
the number came in Arabic-Indic or full-width digits or as `85.07.30-033.61`.
"""

from __future__ import annotations

import unicodedata

from registry.domain.errors import BadUserInput

_SEPARATORS = frozenset(".\uff0e")  # and any space (Zs) or dash (Pd): "85.07.30-033.61"


def _ascii_digits(value: str) -> str:
    """Every Unicode decimal digit as its ASCII digit, separators dropped, anything else refused."""
    out = []
    for ch in value:
        digit = unicodedata.decimal(ch, None)
        if digit is not None:
            out.append(str(digit))
        elif ch in _SEPARATORS or unicodedata.category(ch) in ("Zs", "Pd"):
            continue
        else:
            raise BadUserInput(
                "nationalNumber may hold only digits, spaces, dots and dashes", field="nationalNumber"
            )
    return "".join(out)


def normalize(value: str) -> str:
    """The 11 ASCII digits of a valid number, or BadUserInput."""
    digits = _ascii_digits((value or "").strip())
    if len(digits) != 11:
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
