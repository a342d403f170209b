"""Field rules enforced in one place: every field of every response passes through `FieldGuard`.

Before a field resolves, the caller's grants (computed from `auth/policy.toml`) decide whether
its roles may read Type.field — Query and Mutation fields included — and set every input
field the request gives it. A refused field resolves to null with a FORBIDDEN error naming it,
its resolver never runs, and the other fields of the same object still arrive. Nested and
linked records, fragments, aliases, history and mutation payloads are all just fields here.
Each field returned of a record is noted for the audit trail (`ctx.disclosure`). Compiled reads
(api.compiler) apply the same grants when they are planned, and note the same disclosure.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from graphql import (
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLResolveInfo,
    ListValueNode,
    ObjectValueNode,
    VariableNode,
)
from strawberry.extensions import SchemaExtension

from registry.access.grants import MUTATION, QUERY
from registry.domain.errors import Forbidden


# Records whose fields, once returned, are written to the audit trail as disclosed.
DISCLOSED_TYPES = frozenset({"Subject", "Referral", "FollowUpNote", "ThreatAssessment", "AuditEvent"})


def refusal(type_name: str, field: str) -> Forbidden:
    what = {QUERY: f"query {field}", MUTATION: f"call {field}"}.get(type_name, f"read {type_name}.{field}")
    return Forbidden(f"your role may not {what}", field=f"{type_name}.{field}")


class FieldGuard(SchemaExtension):
    """Refuses, per field, what the caller's roles may not read or set."""

    def resolve(self, _next: Callable, root: Any, info: GraphQLResolveInfo, *args: Any, **kwargs: Any) -> Any:
        type_name, field = info.parent_type.name, info.field_name
        if type_name.startswith("__") or field.startswith("__"):
            return _next(root, info, *args, **kwargs)  # introspection and __typename: the public schema
        grants = info.context.grants
        if not grants.may_read(type_name, field):
            raise refusal(type_name, field)
        if info.parent_type.fields[field].args:
            for input_type, input_field in inputs_set(info, self.execution_context.variables or {}):
                if not grants.may_write(input_type, input_field):
                    raise Forbidden(
                        f"your role may not set {input_type}.{input_field}", field=f"{input_type}.{input_field}"
                    )
        if type_name in DISCLOSED_TYPES:
            subject_id = root.id if type_name == "Subject" else getattr(root, "subject_id", None)
            info.context.disclosure.add(type_name, root.id, subject_id, (field,))
        return _next(root, info, *args, **kwargs)


def inputs_set(info: GraphQLResolveInfo, raw_variables: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(InputType, field) for every input-object field the request actually gives this field.

    Read from the document and the variables as sent, not from coerced values, so a default
    the client did not send is not counted as set.
    """
    field_def = info.parent_type.fields[info.field_name]
    defaults = {d.variable.name.value: d.default_value for d in info.operation.variable_definitions or ()}
    for node in info.field_nodes:
        for argument in node.arguments or ():
            arg_def = field_def.args.get(argument.name.value)
            if arg_def is not None:
                yield from _walk(argument.value, arg_def.type, raw_variables, defaults)


def _walk(value: Any, type_: GraphQLInputType, variables: dict[str, Any], defaults: dict) -> Iterator[tuple[str, str]]:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(value, VariableNode):
        name = value.name.value
        if name in variables:
            yield from _walk_raw(variables[name], type_)
        elif defaults.get(name) is not None:
            yield from _walk(defaults[name], type_, variables, defaults)
        return
    if isinstance(type_, GraphQLList):
        items = value.values if isinstance(value, ListValueNode) else [value]
        for item in items:
            yield from _walk(item, type_.of_type, variables, defaults)
    elif isinstance(type_, GraphQLInputObjectType) and isinstance(value, ObjectValueNode):
        for field_node in value.fields:
            name = field_node.name.value
            if name in type_.fields:
                yield type_.name, name
                yield from _walk(field_node.value, type_.fields[name].type, variables, defaults)


def _walk_raw(value: Any, type_: GraphQLInputType) -> Iterator[tuple[str, str]]:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        for item in value if isinstance(value, list) else [value]:
            yield from _walk_raw(item, type_.of_type)
    elif isinstance(type_, GraphQLInputObjectType) and isinstance(value, dict):
        for name, item in value.items():
            if name in type_.fields:
                yield type_.name, name
                yield from _walk_raw(item, type_.fields[name].type)


__all__ = ["FieldGuard", "inputs_set"]
