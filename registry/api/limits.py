"""Limits: what one request may ask for, checked before anything runs.

`QueryLimiter` parses and validates every operation itself, so that a document outside the
limits (tokens, depth, aliases, page size, cost) is refused with QUERY_TOO_COMPLEX before
execution: no resolver runs, no SQL is sent. The checks run cheapest first, and every walk
over the document visits each fragment once, so a fragment cycle or a "fragment bomb" cannot
make the check itself expensive. (The budget of hit/no-hit lookups, shared by
every worker and instance, is registry.domain.budget's.)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_introspection_type,
    is_leaf_type,
    is_list_type,
    parse,
    specified_rules,
    validate,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef
from graphql.utilities import get_operation_ast
from graphql.validation import NoSchemaIntrospectionCustomRule
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import SchemaExtension

from registry.api.strawberry_internals import VALIDATION_RULES, graphql_schema
from registry.config import Settings

# The limits' defaults are the settings' own (declared once, in Settings); the environment is not read.
_DEFAULTS = Settings.model_construct()
TOO_COMPLEX = "QUERY_TOO_COMPLEX"
# Where introspection is on (development), GraphiQL's introspection query must pass: it nests
# `ofType` about ten levels deep and its lists multiply to some 16,000. It has its own budget.
INTROSPECTION_DEPTH = 16
INTROSPECTION_COST = 50_000


@dataclass(frozen=True)
class QueryLimits:
    """The bounds of one request (REGISTRY_MAX_* settings); see the README's "Limits"."""

    max_depth: int = _DEFAULTS.max_depth
    max_aliases: int = _DEFAULTS.max_aliases
    max_tokens: int = _DEFAULTS.max_tokens
    max_page_size: int = _DEFAULTS.max_page_size
    max_cost: int = _DEFAULTS.max_cost
    max_batch: int = _DEFAULTS.max_batch
    max_body_bytes: int = _DEFAULTS.max_body_bytes
    list_estimate: int = 10  # items assumed for a list without `first` (Subject.referrals, history, ...)
    introspection: bool = _DEFAULTS.introspection_allowed

    @classmethod
    def from_settings(cls, settings: Settings) -> "QueryLimits":
        return cls(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
            max_page_size=settings.max_page_size,
            max_cost=settings.max_cost,
            max_batch=settings.max_batch,
            max_body_bytes=settings.max_body_bytes,
            introspection=settings.introspection_allowed,
        )


def too_complex(message: str, nodes: Any = None, **details: Any) -> GraphQLError:
    return GraphQLError(message, nodes, extensions={"code": TOO_COMPLEX, **details})


def bad_input(message: str, nodes: Any = None, **details: Any) -> GraphQLError:
    return GraphQLError(message, nodes, extensions={"code": "BAD_USER_INPUT", **details})


class ValidDocuments:
    """Documents that parsed and validated, by text (bounded, least recently used out).

    Whether a text is a valid document within the shape limits does not change between
    requests; its cost does (page sizes come from variables) and is computed every time.
    Refused documents are not kept, so they cannot push the front-ends' documents out.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()

    def get(self, query: str) -> DocumentNode | None:
        document = self._documents.get(query)
        if document is not None:
            self._documents.move_to_end(query)
        return document

    def add(self, query: str, document: DocumentNode) -> None:
        self._documents[query] = document
        if len(self._documents) > self.size:
            self._documents.popitem(last=False)


class QueryLimiter(SchemaExtension):
    """Parses and validates every operation within `limits`, in place of strawberry's own steps.

    Strawberry parses no document an extension has set in `on_parse`, and runs no validation
    when one has set the errors in `on_validate` (its ParserCache and ValidationCache work so).
    """

    def __init__(self, limits: QueryLimits, valid: ValidDocuments | None = None) -> None:
        self.limits = limits
        self.valid = valid if valid is not None else ValidDocuments(0)
        self.known = False

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.graphql_document is None and ec.query:
            known = self.valid.get(ec.query)
            self.known = known is not None
            # A GraphQLError raised here becomes the response's only error; nothing runs.
            ec.graphql_document = known or parse_document(ec.query, self.limits)
            if get_operation_ast(ec.graphql_document, ec.operation_name) is None:
                raise bad_input(_no_operation(ec.graphql_document, ec.operation_name))
        yield

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.pre_execution_errors is None and ec.graphql_document is not None:
            schema, document = graphql_schema(ec.schema), ec.graphql_document
            errors = [] if self.known else static_errors(schema, document, self.limits, ec.validation_rules)
            if not errors:
                if not self.known and ec.query:
                    self.valid.add(ec.query, document)
                errors = cost_errors(schema, document, ec.operation_name, ec.variables or {}, self.limits)
            ec.pre_execution_errors = errors
        yield


def parse_document(query: str, limits: QueryLimits) -> DocumentNode:
    """The parsed document; QUERY_TOO_COMPLEX past `max_tokens`, BAD_USER_INPUT on a syntax error."""
    try:
        return parse(query, max_tokens=limits.max_tokens)
    except GraphQLError as exc:
        if "Parsing aborted" in exc.message:  # too many tokens or comments, or nested too deeply
            raise too_complex(
                f"the document is too large: at most {limits.max_tokens} tokens", limit="tokens", max=limits.max_tokens
            ) from None
        raise  # a syntax error: BAD_USER_INPUT (api.errors)


def _no_operation(document: DocumentNode, name: str | None) -> str:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations:
        return "the document holds no operation"
    if name:
        return f"the document holds no operation named {name!r}"
    return "the document holds several operations: name the one to run in operationName"


def check(
    schema: Any,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any],
    limits: QueryLimits,
    rules: tuple[type[ASTValidationRule], ...] | None = None,
) -> list[GraphQLError]:
    """Every reason not to execute `document`, cheapest checks first; empty when it may run."""
    return static_errors(schema, document, limits, rules) or cost_errors(schema, document, operation_name, variables, limits)


def static_errors(
    schema: Any, document: DocumentNode, limits: QueryLimits, rules: tuple[type[ASTValidationRule], ...] | None = None
) -> list[GraphQLError]:
    """Depth and aliases, then GraphQL validation: what depends on the text alone."""
    try:
        errors = _Shape(document).errors(limits)
        if errors:
            return errors
        rules = (*(rules or specified_rules), *VALIDATION_RULES)
        if not limits.introspection:
            rules = (*rules, NoIntrospection)
        errors = validate(schema, document, rules, hide_suggestions=True)
    except RecursionError:
        return [too_complex("the document is nested too deeply", limit="depth", max=limits.max_depth)]
    # graphql-core gives up on documents too large or nested for its own recursion.
    return [too_complex("the document is too complex to validate") if isinstance(e, ValidationAbortedError) else e for e in errors]


def cost_errors(
    schema: Any, document: DocumentNode, operation_name: str | None, variables: dict[str, Any], limits: QueryLimits
) -> list[GraphQLError]:
    """Page sizes and cost of the operation to run, with the request's variables (a valid document)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return [bad_input(_no_operation(document, operation_name))]
    try:
        return _Cost(schema, document, operation, variables, limits).errors()
    except RecursionError:
        return [too_complex("the document is nested too deeply", limit="depth", max=limits.max_depth)]


class NoIntrospection(NoSchemaIntrospectionCustomRule):
    """Introspection off (production): the schema is published as graphql/schema.graphql instead.

    graphql-core's rule decides; this one reports its first refusal only, with the stable code."""

    reported = False

    def report_error(self, error: GraphQLError) -> None:
        if not self.reported:
            self.reported = True
            super().report_error(
                GraphQLError(
                    "introspection is disabled; the schema is published as graphql/schema.graphql",
                    error.nodes,
                    extensions={"code": "FORBIDDEN"},
                )
            )


class _Shape:
    """Depth and aliases of every operation in the document, each fragment measured once."""

    def __init__(self, document: DocumentNode) -> None:
        self.document = document
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.memo: dict[str, tuple[int, int, int]] = {}
        self.active: set[str] = set()

    def errors(self, limits: QueryLimits) -> list[GraphQLError]:
        depth = introspection = aliases = 0
        for definition in self.document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                d, i, a = self.measure(definition.selection_set)
                depth, introspection, aliases = max(depth, d), max(introspection, i), aliases + a
        errors = []
        if depth > limits.max_depth:
            errors.append(
                too_complex(f"the query is {depth} levels deep; at most {limits.max_depth}", limit="depth", max=limits.max_depth, found=depth)
            )
        if introspection > max(limits.max_depth, INTROSPECTION_DEPTH):
            errors.append(too_complex("the introspection query is nested too deeply", limit="depth", found=introspection))
        if aliases > limits.max_aliases:
            errors.append(
                too_complex(f"the document uses {aliases} aliases; at most {limits.max_aliases}", limit="aliases", max=limits.max_aliases, found=aliases)
            )
        return errors

    def measure(self, selection_set: SelectionSetNode | None) -> tuple[int, int, int]:
        """(depth of ordinary fields, depth through introspection fields, aliases) below `selection_set`."""
        depth = introspection = aliases = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                d, i, a = self.measure(selection.selection_set)
                aliases += a + (1 if selection.alias else 0)
                if selection.name.value.startswith("__"):
                    introspection = max(introspection, 1 + max(d, i))
                else:
                    depth, introspection = max(depth, 1 + d), max(introspection, i + 1 if i else 0)
            elif isinstance(selection, InlineFragmentNode):
                d, i, a = self.measure(selection.selection_set)
                depth, introspection, aliases = max(depth, d), max(introspection, i), aliases + a
            elif isinstance(selection, FragmentSpreadNode):
                d, i, a = self.fragment(selection.name.value)
                depth, introspection, aliases = max(depth, d), max(introspection, i), aliases + a
        return depth, introspection, aliases

    def fragment(self, name: str) -> tuple[int, int, int]:
        if name in self.memo:
            return self.memo[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self.active:  # unknown or a cycle: validation refuses the document
            return 0, 0, 0
        self.active.add(name)
        self.memo[name] = self.measure(fragment.selection_set)
        self.active.discard(name)
        return self.memo[name]


def _field(parent: Any, name: str, at_root: bool) -> Any:
    """The definition of `parent.name`; introspection is costed like data (its lists multiply too)."""
    if at_root and name in ("__schema", "__type"):
        return SchemaMetaFieldDef if name == "__schema" else TypeMetaFieldDef
    return getattr(parent, "fields", {}).get(name)


class _Cost:
    """The cost of the operation to run: how many records it may return at most.

    Each field returning objects costs the number of objects it may return: its page size
    (`first`, checked against the maximum) for a list with `first`, `list_estimate` for other
    lists, 1 otherwise, times the count of its parent. Scalars are free (they come with their
    record). Cost is linear in the parent's count, so each fragment is costed once.
    """

    def __init__(self, schema: Any, document: DocumentNode, operation: OperationDefinitionNode, variables: dict, limits: QueryLimits) -> None:
        self.schema, self.operation, self.variables, self.limits = schema, operation, variables, limits
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.defaults = {d.variable.name.value: d.default_value for d in operation.variable_definitions or ()}
        self.memo: dict[str, int] = {}
        self.refusals: list[GraphQLError] = []
        self.introspection = 0

    def errors(self) -> list[GraphQLError]:
        self.root = self.schema.get_root_type(self.operation.operation)
        total = self.selection(self.operation.selection_set, self.root)
        if self.refusals:
            return self.refusals
        if self.introspection > INTROSPECTION_COST:
            return [too_complex("the introspection query is too large", limit="cost", found=self.introspection)]
        if total > self.limits.max_cost:
            return [
                too_complex(
                    f"the query may return up to {total} records; at most {self.limits.max_cost}: ask for smaller pages",
                    limit="cost",
                    max=self.limits.max_cost,
                    found=total,
                )
            ]
        return []

    def selection(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType | None) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                field = _field(parent, selection.name.value, parent is self.root)
                if field is None:  # __typename
                    continue
                named = get_named_type(field.type)
                if is_leaf_type(named):
                    continue
                cost = self.size(selection, field, parent) * (1 + self.selection(selection.selection_set, named))
                if parent is self.root and is_introspection_type(named):
                    self.introspection += cost
                else:
                    total += cost
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                total += self.selection(selection.selection_set, self.schema.get_type(condition.name.value) if condition else parent)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value)
        return total

    def fragment(self, name: str) -> int:
        if name not in self.memo:
            fragment = self.fragments[name]
            self.memo[name] = self.selection(fragment.selection_set, self.schema.get_type(fragment.type_condition.name.value))
        return self.memo[name]

    def size(self, node: FieldNode, field: Any, parent: Any) -> int:
        if "first" in field.args:
            first = self.argument(node, "first", field)
            if first > self.limits.max_page_size:
                self.refusals.append(
                    too_complex(
                        f"first may be at most {self.limits.max_page_size}; page through the rest with after",
                        node,
                        limit="pageSize",
                        max=self.limits.max_page_size,
                        found=first,
                        field="first",
                    )
                )
            elif first < 0:
                self.refusals.append(bad_input(f"first must be between 0 and {self.limits.max_page_size}", node, field="first"))
            return max(first, 0)
        if is_list_type(get_nullable_type(field.type)):
            # A connection's edges are sized by the connection's `first`, already counted.
            return 1 if isinstance(parent, GraphQLObjectType) and parent.name.endswith("Connection") else self.limits.list_estimate
        return 1

    def argument(self, node: FieldNode, name: str, field: Any) -> int:
        """An Int argument as execution will see it: literal, variable, variable default, or field default."""
        raw: Any = None
        for argument in node.arguments or ():
            if argument.name.value != name:
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                variable = value.name.value
                if variable in self.variables:
                    raw = self.variables[variable]
                elif isinstance(default := self.defaults.get(variable), IntValueNode):
                    raw = int(default.value)
            elif isinstance(value, IntValueNode):
                raw = int(value.value)
        if raw is None:
            raw = field.args[name].default_value
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        # Anything else is not an Int: execution refuses it while coercing, before any resolver.
        return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
