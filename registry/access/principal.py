"""Who is calling: the identity a verified token maps to. Nothing here trusts unverified input."""

from __future__ import annotations

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


@dataclass(frozen=True)
class Principal:
    """A verified caller: a person or a service client, with the roles its token grants."""

    id: str
    name: str
    agency: str | None
    roles: frozenset[str] = field(default_factory=frozenset)
    unit: str | None = None

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))
