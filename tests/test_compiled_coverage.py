"""Every readable field reached from the compiled roots is compiled, or listed as left to the resolvers.

A field the compiler does not know makes any query selecting it fall back to the resolvers,
silently: still correct, but slow. This walks the schema from the compiled roots (`subject`,
`subjects`, `referral`, `referrals`) through their connections and linked records, and names
each field neither compiled nor listed in `compiler.NOT_COMPILED` with its reason.
"""

from graphql import GraphQLObjectType, get_named_type

from registry.api import compiler
from registry.api import json_query as jq
from registry.api.schema import build_schema
from registry.api.strawberry_internals import graphql_schema

SCHEMA = graphql_schema(build_schema())


def _walk() -> tuple[set[str], list[str]]:
    """(record types reached, `Type.field` names not covered by the compiler)."""
    records, missing = set(), []
    todo = []
    for root, kind in compiler.ROOTS.items():
        returned = get_named_type(SCHEMA.query_type.fields[root].type)
        if returned.name == kind:
            todo.append(kind)
            continue
        missing += [f"{returned.name}.{f}" for f in set(returned.fields) - compiler.CONNECTION_FIELDS]
        edge = get_named_type(returned.fields["edges"].type)
        missing += [f"{edge.name}.{f}" for f in set(edge.fields) - compiler.EDGE_FIELDS]
        page = get_named_type(returned.fields["pageInfo"].type)
        missing += [f"{page.name}.{f}" for f in set(page.fields) - compiler.PAGE_INFO_FIELDS]
        todo.append(get_named_type(edge.fields["node"].type).name)
    while todo:
        kind = todo.pop()
        if kind in records:
            continue
        records.add(kind)
        object_type = SCHEMA.type_map[kind]
        assert isinstance(object_type, GraphQLObjectType)
        for name, field in object_type.fields.items():
            if f"{kind}.{name}" in compiler.NOT_COMPILED:
                continue
            if not jq.supports(kind, name):
                missing.append(f"{kind}.{name}")
            elif (kind, name) in jq.LINKS:
                todo.append(get_named_type(field.type).name)
    return records, sorted(missing)


def test_every_field_reached_from_the_compiled_roots_is_compiled():
    records, missing = _walk()
    assert records == {"Subject", "Referral", "FollowUpNote", "ThreatAssessment"}
    assert not missing, (
        f"not covered by the read compiler, so a query selecting it falls back to the resolvers: {missing}; "
        "add it to api/json_query.py COLUMNS or LINKS, or to compiler.NOT_COMPILED with the reason"
    )


def test_fields_left_to_the_resolvers_exist_and_are_not_compiled():
    for name, reason in compiler.NOT_COMPILED.items():
        kind, field = name.split(".")
        assert field in SCHEMA.type_map[kind].fields, f"{name} is listed in NOT_COMPILED but not in the schema"
        assert not jq.supports(kind, field), f"{name} is compiled: remove it from NOT_COMPILED"
        assert reason.strip(), f"{name} is listed in NOT_COMPILED without a reason"


def test_every_compiled_field_is_in_the_schema():
    for kind, columns in jq.COLUMNS.items():
        fields = SCHEMA.type_map[kind].fields
        assert not set(columns) - set(fields), f"{kind}: compiled but not in the schema: {set(columns) - set(fields)}"
    for kind, name in jq.LINKS:
        assert name in SCHEMA.type_map[kind].fields, f"{kind}.{name}: a compiled link not in the schema"
