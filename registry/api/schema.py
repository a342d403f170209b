"""The GraphQL schema: one for every role; the policy decides, per field, what each role gets back.

`build_schema` checks the policy against the schema (refusing to start on any mismatch),
marks protected fields with `@allowedRoles`, and installs the guards that enforce it.
`QueryLimiter` comes first: a document outside the limits never reaches the guards.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLInputObjectType, GraphQLObjectType, is_non_null_type
from strawberry.schema.config import StrawberryConfig

from registry.access.policy import Policy, SchemaShape
from registry.api.descriptions import SCALARS, describe_arguments
from registry.api.directives import mark_allowed_roles
from registry.api.events import OnlyOverWebSocket, Subscription
from registry.api.field_guard import FieldGuard
from registry.api.limits import QueryLimiter, QueryLimits, ValidDocuments
from registry.api.mutations import Mutation
from registry.api.purpose_guard import PurposeGuard
from registry.api.queries import Query
from registry.api.strawberry_internals import graphql_schema


class RegistrySchema(strawberry.Schema):
    policy: Policy

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Errors are logged once, without personal data, by api.errors."""


def _schema(limits: QueryLimits) -> RegistrySchema:
    valid = ValidDocuments()  # per schema: validity is against this schema and these limits
    return RegistrySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Suggestions ("Did you mean ...") would name fields a role cannot read; api.errors
        # strips the ones graphql-core makes outside field selection too.
        config=StrawberryConfig(disable_field_suggestions=True),
        scalar_overrides=SCALARS,
        extensions=[
            lambda: QueryLimiter(limits, valid),
            OnlyOverWebSocket,
            PurposeGuard,
            FieldGuard,
        ],
    )


def shape_of(schema: strawberry.Schema) -> SchemaShape:
    """The type and field names the policy must cover (introspection types aside)."""
    outputs: dict[str, dict[str, bool]] = {}
    inputs: dict[str, frozenset[str]] = {}
    for name, type_ in graphql_schema(schema).type_map.items():
        if name.startswith("__"):
            continue
        if isinstance(type_, GraphQLObjectType):
            outputs[name] = {f: not is_non_null_type(d.type) for f, d in type_.fields.items()}
        elif isinstance(type_, GraphQLInputObjectType):
            inputs[name] = frozenset(type_.fields)
    return SchemaShape(outputs=outputs, inputs=inputs)


def build_schema(policy: Policy | None = None, limits: QueryLimits | None = None) -> RegistrySchema:
    """The schema enforcing `policy` (default auth/policy.toml) and `limits` (default QueryLimits());
    PolicyError when policy and schema disagree."""
    policy = policy or Policy.load()
    limits = limits or QueryLimits()
    probe = _schema(limits)
    policy.check_schema(shape_of(probe))
    mark_allowed_roles(graphql_schema(probe), policy)
    describe_arguments(graphql_schema(probe))
    schema = _schema(limits)
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
