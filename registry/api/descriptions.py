"""Descriptions of the API's conventions (DESIGN section 7), written once for the published schema.

Every type, field and argument of graphql/schema.graphql has a description (a test checks it).
Types and fields describe themselves where they are declared; the arguments that follow the
conventions — `input` of a mutation, `id` of a record, `first`/`after`/`filter` of a
connection — mean the same everywhere, so their description is given here, unless declared.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid

from graphql import GraphQLObjectType

from registry.api.strawberry_internals import DateTimeDefinition, ScalarDefinition, UUIDDefinition, definition_of
from registry.domain.pages import timestamp_text

UUID = dataclasses.replace(UUIDDefinition, description="A UUID in its canonical text form, e.g. 1b4e28ba-2fa1-11d2-883f-0016d3cca427.")
# Times in UTC, spelled as PostgreSQL's JSON spells them (the compiled reads build JSON there).
DATETIME = dataclasses.replace(
    DateTimeDefinition,
    description="Date and time in ISO 8601, in UTC, e.g. 2026-05-17T09:30:00.25+00:00.",
    serialize=timestamp_text,
)
SCALARS: dict[object, ScalarDefinition] = {uuid.UUID: UUID, datetime.datetime: DATETIME}


CONVENTIONS = {
    "input": "What the mutation needs; its fields are described on the input type.",
    "id": "Identifier of the record.",
    # The same text whatever REGISTRY_MAX_PAGE_SIZE says: the published schema does not depend on settings.
    "first": "Page size: how many items to return, from 0 to the page-size limit (100 by default).",
    "after": "Cursor after which the page starts: the endCursor of the previous page; omit for the first page.",
    "filter": "Narrows the list; fields left out do not filter.",
    "nationalNumber": "Belgian national register (or BIS) number: 11 digits (any script's digits; spaces, dots and dashes ignored).",
}


def describe_arguments(graphql_schema) -> None:
    """Give the conventional arguments their description where the resolver declares none.

    Like api.directives, this writes on the Strawberry definitions: the schema built next from
    them (and the SDL printer) carries the descriptions.
    """
    known = CONVENTIONS
    for name, type_ in graphql_schema.type_map.items():
        if name.startswith("__") or not isinstance(type_, GraphQLObjectType):
            continue
        for field in type_.fields.values():
            definition = definition_of(field)
            for argument in getattr(definition, "arguments", None) or ():
                graphql_name = argument.graphql_name or _camel(argument.python_name)
                if not argument.description and graphql_name in known:
                    argument.description = known[graphql_name]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
