"""Purpose of use, checked after validation and before execution: a refused request reads nothing.

The operation's root fields (through fragments too) decide whether a purpose is needed; the
decision itself is `access.purpose.check`. A justified BREAK_GLASS request gets the one
subject it names added to the caller's row scope for this request only, and is flagged.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Iterator

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from registry.access import purpose
from registry.api.context import Context
from registry.domain.errors import PurposeRequired

log = logging.getLogger("registry.access")
ROOT_TYPES = {OperationType.QUERY: "Query", OperationType.MUTATION: "Mutation", OperationType.SUBSCRIPTION: "Subscription"}


class PurposeGuard(SchemaExtension):
    """Refuses with PURPOSE_REQUIRED, before any database read, an operation without an allowed purpose."""

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        document = ec.graphql_document
        operation = get_operation_ast(document, ec.operation_name) if document else None
        if document is not None and operation is not None:  # otherwise graphql-core reports the unknown operation itself
            ctx = ec.context
            try:
                subject_id = purpose.check(ctx.grants, declared(ctx, document, operation, ec.variables or {}))
            except purpose.PurposeRefused as refusal:
                refused = PurposeRequired(refusal.message, **refusal.details)
                ec.result = ExecutionResult(data=None, errors=[GraphQLError(refused.message, original_error=refused)])
            else:
                if subject_id is not None:
                    ctx.principal = dataclasses.replace(ctx.principal, break_glass_subject=subject_id)
                    ctx.break_glass, ctx.break_glass_subject = True, subject_id
                    log.warning(
                        "break-glass access by %s to subject %s (request %s): flagged for review",
                        ctx.principal.id, subject_id, ctx.request_id,
                    )
        yield


def declared(ctx: Context, document: DocumentNode, operation: OperationDefinitionNode, variables: dict) -> purpose.Declared:
    fields = list(root_fields(document, operation.selection_set, set()))
    defaults = {d.variable.name.value: d.default_value for d in operation.variable_definitions or ()}
    return purpose.Declared(
        purpose=ctx.purpose,
        justification=ctx.justification,
        root_type=ROOT_TYPES[operation.operation],
        root_fields=frozenset(f.name.value for f in fields),
        subject_ids=frozenset(
            _argument(f, "id", variables, defaults) for f in fields if f.name.value == purpose.BREAK_GLASS_FIELD
        ),
    )


def root_fields(document: DocumentNode, selections: SelectionSetNode, seen: set[str]) -> Iterator[FieldNode]:
    """The operation's root fields, through inline fragments and fragment spreads."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from root_fields(document, selection.selection_set, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from root_fields(document, fragment.selection_set, seen)


def _argument(field: FieldNode, name: str, variables: dict, defaults: dict) -> str:
    for argument in field.arguments or ():
        if argument.name.value != name:
            continue
        value = argument.value
        if isinstance(value, VariableNode):
            raw = variables.get(value.name.value)
            if raw is None and isinstance(defaults.get(value.name.value), StringValueNode):
                raw = defaults[value.name.value].value
            return str(raw) if raw is not None else ""
        return value.value if isinstance(value, StringValueNode) else ""
    return ""
