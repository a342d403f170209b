"""The access policy (`auth/policy.toml`): loaded and validated once, consulted in one place."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from registry.access.principal import ROLES, Principal
from registry.domain.errors import Forbidden

POLICY_PATH = Path(__file__).resolve().parents[2] / "auth" / "policy.toml"
SCOPES = {"own_institution", "own_agency", "referred_subjects", "all", "none"}


class PolicyError(ValueError):
    """The policy file is inconsistent; the service refuses to start."""


@dataclass(frozen=True)
class RolePolicy:
    scope: str
    purposes: frozenset[str]
    mutations: frozenset[str]
    queries: frozenset[str]


class Policy:
    def __init__(self, roles: dict[str, RolePolicy]) -> None:
        self.roles = roles

    @classmethod
    def load(cls, path: Path = POLICY_PATH) -> "Policy":
        raw = tomllib.loads(path.read_text())
        roles: dict[str, RolePolicy] = {}
        for name, spec in raw.get("roles", {}).items():
            if name not in ROLES:
                raise PolicyError(f"{path.name}: unknown role {name!r}")
            if spec.get("scope") not in SCOPES:
                raise PolicyError(f"{path.name}: role {name!r} has unknown scope {spec.get('scope')!r}")
            roles[name] = RolePolicy(
                scope=spec["scope"],
                purposes=frozenset(spec.get("purposes", ())),
                mutations=frozenset(spec.get("mutations", ())),
                queries=frozenset(spec.get("queries", ())),
            )
        return cls(roles)

    def _granted(self, principal: Principal, attribute: str) -> frozenset[str]:
        granted: set[str] = set()
        for role in principal.roles:
            if role in self.roles:
                granted |= getattr(self.roles[role], attribute)
        return frozenset(granted)

    def mutations(self, principal: Principal) -> frozenset[str]:
        return self._granted(principal, "mutations")

    def purposes(self, principal: Principal) -> frozenset[str]:
        return self._granted(principal, "purposes")

    def require_mutation(self, principal: Principal, mutation: str) -> None:
        if mutation not in self.mutations(principal):
            raise Forbidden(f"not allowed to {mutation}", field=f"Mutation.{mutation}")

    def validate_names(self, mutations: set[str]) -> None:
        """Refuse a policy that grants a mutation the schema does not have."""
        for name, role in self.roles.items():
            unknown = role.mutations - mutations
            if unknown:
                raise PolicyError(f"policy.toml: role {name!r} names unknown mutations {sorted(unknown)}")
