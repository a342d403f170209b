"""Who is calling: the identity a verified token maps to. Nothing here trusts unverified input."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

ROLES = (
    "caseworker",
    "referral_officer",
    "analyst",
    "senior_analyst",
    "partner",
    "dpo",
    "admin",
)
# What an agency is (the agency table's `kind`): the policy says which kinds may hold each role.
AGENCY_KINDS = ("youth", "threat_analysis", "partner")
ANY_AGENCY = "*"


@dataclass(frozen=True)
class Principal:
    """A verified caller: a person or a service client, with the roles its token grants."""

    id: str
    name: str
    agency: str | None
    roles: frozenset[str] = field(default_factory=frozenset)
    unit: str | None = None
    # Set per request by the access layer, never from the token: the row scopes the policy
    # grants the roles, and the one subject a BREAK_GLASS request may read outside them.
    scopes: frozenset[str] = field(default_factory=frozenset, compare=False)
    break_glass_subject: uuid.UUID | None = field(default=None, compare=False)

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))
