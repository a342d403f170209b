"""The closed sets of values a column may hold, each declared once.

The tables' CHECK constraints, the domain's validation, the GraphQL enums (api.types gives
them their descriptions) and the compiled reads' filters and level names are all built from
these, so adding a value is one line here (and a migration for its CHECK constraint).
"""

from __future__ import annotations

import enum


class LegalStatus(enum.Enum):
    CONCERN = "CONCERN"
    SUSPECTED = "SUSPECTED"
    CONVICTED = "CONVICTED"


class ReferralStatus(enum.Enum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    CLOSED = "CLOSED"


class ReferralReason(enum.Enum):
    TERRORISM_SUSPECTED = "TERRORISM_SUSPECTED"
    TERRORISM_CONVICTED = "TERRORISM_CONVICTED"
    RADICALISATION_CONCERN = "RADICALISATION_CONCERN"


class NoteVisibility(enum.Enum):
    AGENCY_INTERNAL = "AGENCY_INTERNAL"
    SHARED = "SHARED"


class AssessmentStatus(enum.Enum):
    DRAFT = "DRAFT"
    VALIDATED = "VALIDATED"
    SUPERSEDED = "SUPERSEDED"


class ThreatLevel(enum.Enum):
    """Stored as its number (1 to 4), shown by its name."""

    LOW = 1
    MEDIUM = 2
    SERIOUS = 3
    VERY_SERIOUS = 4


def names(values: type[enum.Enum]) -> tuple[str, ...]:
    """The names of a value set, in their declared order."""
    return tuple(member.name for member in values)


def between(column: str, values: type[enum.Enum]) -> str:
    """The SQL of a CHECK constraint that `column` holds a number within `values`' range."""
    numbers = [member.value for member in values]
    return f"{column} BETWEEN {min(numbers)} AND {max(numbers)}"


def one_of(column: str, values: type[enum.Enum]) -> str:
    """The SQL of a CHECK constraint that `column` holds one of `values`."""
    return f"{column} IN (" + ",".join(f"'{member.value}'" for member in values) + ")"
