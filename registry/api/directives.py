"""`@allowedRoles` in the published SDL: which roles the policy lets read (or set) each protected field.

Generated from the policy, never written by hand, so the schema front-ends and generated
clients see always tells the same story as `auth/policy.toml`.
"""

from __future__ import annotations

import strawberry
from graphql import GraphQLInputObjectType, GraphQLObjectType
from strawberry.schema_directive import Location

from registry.access.policy import Policy
from registry.access.principal import ROLES
from registry.api.strawberry_internals import definition_of


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION, Location.INPUT_FIELD_DEFINITION],
    description="Roles that auth/policy.toml allows to read this field (or set this input field); "
    "for other roles it resolves to null with a FORBIDDEN error.",
)
class AllowedRoles:
    roles: list[str]


def mark_allowed_roles(graphql_schema, policy: Policy) -> None:
    """Attach @allowedRoles to every field some role may not read or set; drop stale marks.

    The marks live on the Strawberry field definitions, which the next schema built from them
    (and the SDL printer) pick up.
    """
    for name, type_ in graphql_schema.type_map.items():
        if name.startswith("__") or not isinstance(type_, (GraphQLObjectType, GraphQLInputObjectType)):
            continue
        allowed = policy.writers if isinstance(type_, GraphQLInputObjectType) else policy.readers
        for field_name, field in type_.fields.items():
            definition = definition_of(field)
            if definition is None:
                continue
            roles = allowed(name, field_name)
            kept = [d for d in definition.directives if not isinstance(d, AllowedRoles)]
            if set(roles) != set(ROLES):
                kept.append(AllowedRoles(roles=list(roles)))
            definition.directives = kept
