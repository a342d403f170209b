"""Every use of strawberry's non-public API, in one place.

strawberry-graphql is pinned to one minor version (pyproject.toml) because of what this module
uses: the graphql-core schema behind a strawberry schema (`Schema._schema`), the back-reference
from a graphql-core field to its strawberry definition (where `@allowedRoles` and the argument
descriptions are written before the schema is built again), the built-in scalar definitions
and their class (overridden to describe and spell UUID and DateTime), the validation rules strawberry adds to
graphql-core's (run again by api.limits, which validates in strawberry's place), and the
GraphiQL page. None of them is documented; a minor release may move or drop any.
`tests/test_strawberry_internals.py` fails, naming the symbol, when an upgrade removes one.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLField, GraphQLInputField, GraphQLSchema, ValidationRule
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.schema.types.base_scalars import DateTimeDefinition, UUIDDefinition
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types.scalar import ScalarDefinition

__all__ = [
    "DateTimeDefinition",
    "ScalarDefinition",
    "UUIDDefinition",
    "VALIDATION_RULES",
    "definition_of",
    "graphql_schema",
]

# The rules strawberry adds to graphql-core's specified rules when it validates a document itself.
VALIDATION_RULES: tuple[type[ValidationRule], ...] = (MaybeNullValidationRule, OneOfInputValidationRule)


def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema strawberry built (to validate, walk and cost documents)."""
    return schema._schema


def definition_of(field: GraphQLField | GraphQLInputField) -> Any | None:
    """The strawberry field definition behind a graphql-core field, or None (introspection, built-ins).

    Changes made to it (directives, argument descriptions) show in the next schema built from
    the same types and in the SDL printer."""
    return (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
