"""Guards declared on fields: the decision comes from the policy, never from the resolver."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info


class PolicyAllows(BasePermission):
    """The caller's roles grant this mutation in auth/policy.toml."""

    message = "not allowed by the access policy"
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        name = info.field_name
        return name in info.context.policy.mutations(info.context.principal)
