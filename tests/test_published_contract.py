"""The published contract matches the code: graphql/schema.graphql is the schema the service builds,
every type, field and argument is described, and every document in graphql/operations/ is valid
against it and within the limits, as the service will check it."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLInputObjectType, GraphQLObjectType, build_schema as build_sdl, parse
from graphql.utilities import get_operation_ast

from registry.api.documents import OPERATIONS_DIR, read_operations
from registry.api.limits import QueryLimits, check
from registry.cli import SCHEMA_PATH, schema_sdl
from registry.config import Settings

PUBLISHED = Path(SCHEMA_PATH)
RELEASED = PUBLISHED.parent / "released" / "schema.graphql"
SPECIFIED = {"String", "Int", "Float", "Boolean", "ID"}


def test_the_published_schema_is_the_one_the_code_builds():
    assert PUBLISHED.read_text(encoding="utf-8") == schema_sdl(Settings()), (
        "graphql/schema.graphql is stale: run `registry export-schema` and commit it"
    )


def test_every_type_field_and_argument_has_a_description(services):
    undescribed = []
    for name, type_ in services.schema._schema.type_map.items():
        if name.startswith("__") or name in SPECIFIED:
            continue
        if not type_.description:
            undescribed.append(name)
        if isinstance(type_, (GraphQLObjectType, GraphQLInputObjectType)):
            for field_name, field in type_.fields.items():
                if not field.description:
                    undescribed.append(f"{name}.{field_name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        undescribed.append(f"{name}.{field_name}({arg_name})")
    assert undescribed == []


def test_the_released_schema_is_a_schema():
    # The breaking-change guard in .ci/run diffs the published schema against this one.
    build_sdl(RELEASED.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", sorted(p.name for p in OPERATIONS_DIR.glob("*.graphql")))
@pytest.mark.parametrize("page", [None, 100], ids=["default page sizes", "largest page sizes"])
def test_each_operation_is_valid_and_within_the_limits(services, path, page):
    (document,) = [d for d in read_operations(OPERATIONS_DIR) if d.path == path]
    ast = parse(document.text)
    variables = {}
    if page is not None:  # every Int variable at the largest page size a client may ask for
        for definition in get_operation_ast(ast).variable_definitions or ():
            if getattr(definition.type, "name", None) and definition.type.name.value == "Int":
                variables[definition.variable.name.value] = page
    errors = check(services.schema._schema, ast, document.name, variables, QueryLimits(introspection=False))
    assert [e.message for e in errors] == []
