"""The access decision for one set of roles, computed once from the policy and then only looked up.

Everything a request may read, set, call or declare is in one of these tables; nothing
outside `auth/policy.toml` adds to them, and what they do not name is denied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

QUERY, MUTATION, SUBSCRIPTION = "Query", "Mutation", "Subscription"


@dataclass(frozen=True)
class Grants:
    """May roles R read Type.field, set Input.field, call a query or mutation, declare a purpose."""

    roles: frozenset[str]
    read: Mapping[str, frozenset[str]]  # GraphQL type -> readable fields, root types included
    write: Mapping[str, frozenset[str]]  # input type -> fields the caller may set
    purposes: frozenset[str]
    scopes: frozenset[str]

    def may_read(self, type_name: str, field: str) -> bool:
        return field in self.read.get(type_name, ())

    def may_write(self, input_type: str, field: str) -> bool:
        return field in self.write.get(input_type, ())

    @property
    def queries(self) -> frozenset[str]:
        return self.read.get(QUERY, frozenset())

    @property
    def mutations(self) -> frozenset[str]:
        return self.read.get(MUTATION, frozenset())

    @property
    def subscriptions(self) -> frozenset[str]:
        return self.read.get(SUBSCRIPTION, frozenset())
