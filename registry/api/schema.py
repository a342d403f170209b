"""The GraphQL schema: one for every role; the policy decides, per field, what each role gets back.

`build_schema` checks the policy against the schema (refusing to start on any mismatch),
marks protected fields with `@allowedRoles`, and installs the guards that enforce it.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLInputObjectType, GraphQLObjectType, is_non_null_type
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig

from registry.access.policy import Policy, SchemaShape
from registry.api.directives import mark_allowed_roles
from registry.api.field_guard import FieldGuard
from registry.api.mutations import Mutation
from registry.api.purpose_guard import PurposeGuard
from registry.api.queries import Query


class RegistrySchema(strawberry.Schema):
    policy: Policy

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Errors are logged once, without personal data, by api.errors."""


def _schema() -> RegistrySchema:
    return RegistrySchema(
        query=Query,
        mutation=Mutation,
        # Suggestions ("Did you mean ...") would name fields a role cannot read; api.errors
        # strips the ones graphql-core makes outside field selection too.
        config=StrawberryConfig(disable_field_suggestions=True),
        extensions=[
            lambda: QueryDepthLimiter(max_depth=12),
            lambda: MaxAliasesLimiter(max_alias_count=30),
            lambda: MaxTokensLimiter(max_token_count=2000),
            PurposeGuard,
            FieldGuard,
        ],
    )


def shape_of(schema: strawberry.Schema) -> SchemaShape:
    """The type and field names the policy must cover (introspection types aside)."""
    outputs: dict[str, dict[str, bool]] = {}
    inputs: dict[str, frozenset[str]] = {}
    for name, type_ in schema._schema.type_map.items():
        if name.startswith("__"):
            continue
        if isinstance(type_, GraphQLObjectType):
            outputs[name] = {f: not is_non_null_type(d.type) for f, d in type_.fields.items()}
        elif isinstance(type_, GraphQLInputObjectType):
            inputs[name] = frozenset(type_.fields)
    return SchemaShape(outputs=outputs, inputs=inputs)


def build_schema(policy: Policy | None = None) -> RegistrySchema:
    """The schema enforcing `policy` (default auth/policy.toml); PolicyError when they disagree."""
    policy = policy or Policy.load()
    probe = _schema()
    policy.check_schema(shape_of(probe))
    mark_allowed_roles(probe._schema, policy)
    schema = _schema()
    schema.policy = policy
    return schema


_default: RegistrySchema | None = None


def __getattr__(name: str) -> Any:
    """`schema`: built on first use with the default policy (for SDL export and tools)."""
    global _default
    if name == "schema":
        if _default is None:
            _default = build_schema()
        return _default
    raise AttributeError(name)
