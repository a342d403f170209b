"""Read operations compiled to one SQL statement, with the resolvers' exact semantics.

A query document is first run by the resolvers (the reference semantics). If it passed
validation and the limits, it is compiled for the caller's role set: fields the roles may
not read become nulls whose FORBIDDEN errors are known in advance, row scopes become SQL
predicates, and PostgreSQL builds the response JSON (api.json_query). The plan is cached per
(document, operation, role set) in a bounded cache; later requests run it directly.

Anything the compiler does not cover — mutations, `me`, history, audit events, lookups,
variables where it needs literals, break-glass, a purpose refusal — goes to the resolvers.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any, Callable, Sequence, cast

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
    parse,
)
from graphql.utilities import get_operation_ast, value_from_ast_untyped

from registry.access import purpose
from registry.api import json_query as jq
from registry.api.context import Context
from registry.api.field_guard import DISCLOSED_TYPES, refusal
from registry.api.limits import QueryLimits, cost_errors
from registry.api.purpose_guard import declared
from registry.api.strawberry_internals import definition_of
from registry.db.failures import log_failure
from registry.domain import search
from registry.domain.errors import RegistryError
from registry.domain.pages import MAX_PAGE_SIZE, decode_cursor

log = logging.getLogger(__name__)

CACHE_SIZE = 512
ROOTS = {"subject": "Subject", "referral": "Referral", "subjects": "Subject", "referrals": "Referral",
         "searchSubjects": "Subject"}
# The filter input of each compiled list; its fields are read from the schema (filter_fields).
FILTERS = {"Subject": "SubjectFilter", "Referral": "ReferralFilter"}


# Readable fields the compiler leaves to the resolvers on purpose: a query selecting one runs
# there. Every other field of a record type reached from ROOTS must compile (a test walks the
# schema), or queries would fall back silently.
NOT_COMPILED = {
    "Subject.history": "versions are snapshots in record_version, shaped per record type: a rare, audit-like read",
    "Referral.history": "as Subject.history",
    "ThreatAssessment.history": "as Subject.history",
}
# The connection shape compiled (api.json_query builds edges and pageInfo; nothing else).
CONNECTION_FIELDS = frozenset({"edges", "pageInfo"})
EDGE_FIELDS = frozenset({"cursor", "node", "score"})  # score: searchSubjects' edges
PAGE_INFO_FIELDS = frozenset({"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"})


class Fallback(Exception):
    """This request (not the plan) needs the resolvers."""


@dataclass
class NodeInfo:
    """What the walker needs at one record position: the fields refused there, and below."""

    refused: list[tuple[str, str, FieldNode]]  # (response key, Type.field, node for locations)
    children: dict[str, "NodeInfo"] = field(default_factory=dict)  # response key -> linked records

    @cached_property
    def quiet(self) -> bool:
        """Nothing refused here or below."""
        return not self.refused and all(child.quiet for child in self.children.values())


@dataclass
class Plan:
    prepared: jq.Prepared
    document: DocumentNode
    operation: OperationDefinitionNode
    roots: list[jq.Root]
    infos: dict[str, Any]  # root key -> NodeInfo | {edges key: {node key: NodeInfo}}
    root_refusals: list[tuple[str, str, FieldNode]]
    params: dict[str, Callable[[dict], Any]]  # parameter -> its value from the request's variables
    sized_by_variables: bool  # a page size comes from a variable: the cost depends on the request
    search: tuple[str, str] | None = None  # searchSubjects: the parameters of its text and date of birth

    @cached_property
    def refuses(self) -> bool:
        """Whether a response can carry FORBIDDEN errors: then their paths come from the data."""
        return bool(self.root_refusals) or not all(_quiet(info) for info in self.infos.values())


def _quiet(info: Any) -> bool:
    if isinstance(info, NodeInfo):
        return info.quiet
    return all(node.quiet for nodes in info.values() for node in nodes.values())


class Compiler:
    """Plans per (document, operation, role set); runs them; counts what it did."""

    def __init__(self, schema: GraphQLSchema, limits: QueryLimits, enabled: bool = True) -> None:
        self.schema = schema
        self.limits = limits
        self.enabled = enabled
        self._plans: OrderedDict[tuple, Plan | None] = OrderedDict()
        self.compiled_runs = 0
        self.one_statement_runs = 0  # of which the statement wrote the audit event itself

    @staticmethod
    def _key(query: str, operation_name: str | None, ctx: Context) -> tuple:
        p = ctx.principal
        return (query, operation_name, p.roles, p.scopes, p.agency is None, p.unit is None)

    def learn(self, query: str, operation_name: str | None, ctx: Context) -> None:
        """Compile a document the resolvers just ran without validation or limit errors."""
        key = self._key(query, operation_name, ctx)
        if not self.enabled or key in self._plans or ctx.break_glass:
            return
        try:
            plan = _compile(self.schema, query, operation_name, ctx)
        except (jq.Unsupported, Fallback, ValueError):
            plan = None
        except Exception as exc:  # noqa: BLE001 - a compiler fault must not fail the request: resolvers it is
            log_failure(log, "could not compile a read operation; it stays with the resolvers", exc)
            plan = None
        self._plans[key] = plan
        if len(self._plans) > CACHE_SIZE:
            self._plans.popitem(last=False)

    def bind(self, query: str, operation_name: str | None, ctx: Context, variables: dict) -> "Bound | None":
        """The compiled plan of this request with its parameters, or None: use the resolvers.
        Nothing is read here: purpose and arguments are checked first."""
        if not self.enabled:
            return None
        key = self._key(query, operation_name, ctx)
        plan = self._plans.get(key)
        if plan is None:
            return None
        self._plans.move_to_end(key)
        try:
            decl = declared(ctx, plan.document, plan.operation, variables)
            if purpose.check(ctx.grants, decl) is not None:
                raise Fallback  # break-glass: the resolvers flag it
            params = _parameters(plan, variables)
            if plan.sized_by_variables and cost_errors(self.schema, plan.document, operation_name, variables, self.limits):
                raise Fallback  # past the cost limit with these page sizes: the resolvers refuse it
        except (Fallback, RegistryError, purpose.PurposeRefused):
            return None  # the resolvers refuse it with the right error
        one_statement = not plan.refuses and plan.search is None and (
            jq.expected_records(plan.roots, params, self.limits.list_estimate) <= jq.ONE_STATEMENT_RECORDS
        )
        return Bound(self, plan, params, one_statement)


@dataclass
class Bound:
    compiler: Compiler
    plan: Plan
    params: dict[str, Any]
    one_statement: bool  # the statement writes the audit event itself: it is the whole transaction

    async def run(self, ctx: Context, connection: Any) -> tuple[Any, list[GraphQLError]]:
        """Data and errors. In one statement, or in the caller's transaction noting what was
        disclosed in ctx.disclosure. Without refusals the response JSON from PostgreSQL is passed
        on as it is; with refusals it is read to find where each FORBIDDEN error belongs."""
        plan, prepared = self.plan, self.plan.prepared
        self.compiler.compiled_runs += 1
        if self.one_statement:
            self.compiler.one_statement_runs += 1
            arguments = prepared.audited_arguments(ctx.actor(), self.params)
            response = await connection.fetchval(prepared.audited_sql, *arguments)
            return orjson.Fragment(prepared.without_tags(response)), []
        response = await connection.fetchval(prepared.sql, *prepared.arguments(ctx.principal, self.params))
        body = prepared.disclosed(response, ctx.disclosure)
        if plan.search is not None:  # the search's own event: its text, and the subjects it returned
            text, born = (self.params[name] for name in plan.search)
            found = sorted(ctx.disclosure.by_type.get("Subject", {}))
            ctx.searches.append((search.SearchSubjects(text=text, date_of_birth=born), [uuid.UUID(i) for i in found]))
        if not plan.refuses:
            return orjson.Fragment(body), []
        data = orjson.loads(body)
        errors: list[GraphQLError] = []
        seen: set[str] = set()
        for key_, type_field, node in plan.root_refusals:
            errors.append(_refused(type_field, node, [key_]))
        for root in plan.roots:
            info = plan.infos.get(root.key)
            if info is not None:
                _walk(data.get(root.key), info, [root.key], errors, seen)
        return data, errors


# ----------------------------------------------------------------------------- planning


def _compile(schema: GraphQLSchema, query: str, operation_name: str | None, ctx: Context) -> Plan:
    document = parse(query)
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation != OperationType.QUERY:
        raise jq.Unsupported("not a query")
    planner = _Planner(schema, document, operation, ctx.grants)
    roots: list[jq.Root] = []
    for key, node in planner.fields(operation.selection_set, planner.query_type):
        roots.append(planner.root(key, node))
    prepared = jq.prepare(roots, ctx.principal)
    if planner.search is not None and (len(roots) != 1 or not prepared.positions):
        # Its audit event names the subjects disclosed: alone, and with some field of them.
        raise jq.Unsupported("searchSubjects with other roots, or disclosing nothing")
    return Plan(
        prepared=prepared,
        document=document,
        operation=operation,
        roots=roots,
        infos=planner.infos,
        root_refusals=planner.root_refusals,
        params=planner.params,
        sized_by_variables=planner.sized_by_variables,
        search=planner.search,
    )


class _Planner:
    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, grants: Any
    ) -> None:
        self.schema = schema
        self.query_type = cast(GraphQLObjectType, schema.query_type)  # a registry schema has one
        self.grants = grants
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.infos: dict[str, Any] = {}
        self.root_refusals: list[tuple[str, str, FieldNode]] = []
        self.params: dict[str, Callable[[dict], Any]] = {}
        self.sized_by_variables = False
        self.search: tuple[str, str] | None = None
        self.variable_defaults = {
            d.variable.name.value: d.default_value for d in operation.variable_definitions or ()
        }

    def fields(self, selection_set: SelectionSetNode | None, parent: GraphQLObjectType) -> list[tuple[str, FieldNode]]:
        """Response key -> field, through fragments, as graphql-core collects them."""
        out: dict[str, FieldNode] = {}
        self._collect(selection_set, parent, out, set())
        return list(out.items())

    def _collect(
        self, selection_set: SelectionSetNode | None, parent: GraphQLObjectType, out: dict[str, FieldNode], seen: set[str]
    ) -> None:
        if selection_set is None:  # an object field without selection: validation refused it already
            raise jq.Unsupported("no selection")
        for selection in selection_set.selections:
            if selection.directives:
                raise jq.Unsupported("directives")
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                if key in out:
                    raise jq.Unsupported("a response key selected twice")
                out[key] = selection
            elif isinstance(selection, InlineFragmentNode):
                if selection.type_condition and selection.type_condition.name.value != parent.name:
                    raise jq.Unsupported("fragment on another type")
                self._collect(selection.selection_set, parent, out, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen or fragment.type_condition.name.value != parent.name:
                    raise jq.Unsupported("fragment")
                self._collect(fragment.selection_set, parent, out, seen | {name})

    def root(self, key: str, node: FieldNode) -> jq.Root:
        name = node.name.value
        if name == "__typename":
            return jq.Root(key, name, constant=jq.Constant(key, "Query"))
        if name not in ROOTS:
            raise jq.Unsupported(f"root field {name}")
        if not self.grants.may_read("Query", name):
            self.root_refusals.append((key, f"Query.{name}", node))
            return jq.Root(key, name, constant=jq.Constant(key, None))
        kind = ROOTS[name]
        field_def = self.query_type.fields[name]
        object_type = get_named_type(field_def.type)
        args = {a.name.value: a.value for a in node.arguments or ()}
        if name in ("subject", "referral"):
            self.params[jq.Param.named("id", key)] = self.value(args.get("id"), None, _uuid)
            info, record = self.record(node.selection_set, object_type)
            self.infos[key] = info
            return jq.Root(key, name, record=record)
        first = jq.Param.named("first", key)
        self.params[first] = self.page_size(args.get("first"), field_def.args["first"].default_value)
        after = args.get("after")
        paged = after is not None and not isinstance(after, NullValueNode)
        if paged:
            if jq.Param.AFTER_KEY in self.params:
                raise jq.Unsupported("two pages with cursors")
            self.cursor_params(name if name == "searchSubjects" else kind, self.value(after, None, _optional(_text)))
        filters = {} if name == "searchSubjects" else self.filters(key, kind, args.get("filter"))
        found = self.search_terms(key, args) if name == "searchSubjects" else None
        outputs, infos = self.connection(node.selection_set, object_type)
        self.infos[key] = infos
        connection = jq.Connection(kind=kind, first=first, after=paged, filters=filters, outputs=outputs, search=found)
        return jq.Root(key, name, connection=connection)

    def value(self, node: Any, default: Any, convert: Callable[[Any], Any]) -> Callable[[dict], Any]:
        """How to get an argument's value from a request: a literal, or a variable (with defaults)."""
        if node is None:
            return lambda variables: convert(default)
        if isinstance(node, VariableNode):
            name = node.name.value
            declared_default = self.variable_defaults.get(name)
            fallback = value_from_ast_untyped(declared_default) if declared_default is not None else default
            return lambda variables: convert(variables[name] if name in variables else fallback)
        converted = convert(value_from_ast_untyped(node))  # a literal that does not convert: not compiled
        return lambda variables: converted

    def page_size(self, node: Any, default: int) -> Callable[[dict], Any]:
        """`first`: the schema's default when absent; from a variable, the cost is rechecked per request."""
        self.sized_by_variables |= isinstance(node, VariableNode)
        return self.value(node, default, _page_size)

    def cursor_params(self, kind: str, raw: Callable[[dict], Any]) -> None:
        """The decoded parts of an `after` cursor, as the domain's pagination decodes them."""
        def parts(variables: dict[str, Any], count: int) -> Sequence[str | None] | None:
            cursor = raw(variables)
            return None if cursor is None else decode_cursor(cursor, count)

        if kind == "searchSubjects":  # [score, reference]
            self.params[jq.Param.AFTER_SCORE] = lambda v: _optional(_score)((parts(v, 2) or [None, None])[0])
            self.params[jq.Param.AFTER_KEY] = lambda v: (parts(v, 2) or [None, None])[1]
        elif kind == "Subject":
            self.params[jq.Param.AFTER_KEY] = lambda v: (parts(v, 1) or [None])[0]
        else:
            self.params[jq.Param.AFTER_KEY] = lambda v: _optional(_moment)((parts(v, 2) or [None, None])[0])
            self.params[jq.Param.AFTER_ID] = lambda v: _optional(_uuid)((parts(v, 2) or [None, None])[1])

    def search_terms(self, key: str, args: dict) -> jq.Search:
        """searchSubjects' parameters, from domain.search.terms of each request's text."""
        if self.search is not None:
            raise jq.Unsupported("two searches")
        raw = self.value(args.get("text"), None, _text)
        born = self.value(args.get("dateOfBirth"), None, _optional(_date))

        def asked(variables: dict) -> search.Terms:
            return search.terms(raw(variables), born(variables))  # BadUserInput: the resolvers say it

        names = jq.Search(
            text=jq.Param.named("search", "text"),
            prefix=jq.Param.named("search", "prefix"),
            prefix_end=jq.Param.named("search", "prefix_end"),
            words=[jq.Param.named("search", "word", i) for i in range(search.MAX_WORDS)],
            born=jq.Param.named("search", "born"),
        )
        self.params[names.text] = lambda v: asked(v).text
        self.params[names.prefix] = lambda v: asked(v).prefix
        self.params[names.prefix_end] = lambda v: asked(v).prefix_end
        for i, word in enumerate(names.words):

            def nth_word(v: dict, i: int = i) -> str | None:
                terms = asked(v)
                return terms.words[i] if terms.prefix is None and i < len(terms.words) else None

            self.params[word] = nth_word
        self.params[names.born] = born
        raw_name = jq.Param.named("search", "raw")
        self.params[raw_name] = raw
        self.search = (raw_name, names.born)
        return names

    def filters(self, key: str, kind: str, value: Any) -> dict[str, str]:
        """Filter field -> parameter; each request's values are checked against the write rules."""
        input_type = FILTERS[kind]
        names = filter_fields(self.schema, input_type)
        input_fields = cast(GraphQLInputObjectType, self.schema.type_map[input_type]).fields
        if value is None or isinstance(value, NullValueNode):
            given: Callable[[dict], Any] = lambda variables: {}  # noqa: E731
        elif isinstance(value, VariableNode):
            whole = self.value(value, None, lambda v: v)
            given = lambda variables: whole(variables) or {}  # noqa: E731
        elif isinstance(value, ObjectValueNode):
            parts = {f.name.value: self.value(f.value, None, lambda v: v) for f in value.fields}
            given = lambda variables: {n: get(variables) for n, get in parts.items()}  # noqa: E731
        else:
            raise jq.Unsupported("filter")
        grants = self.grants

        def checked(variables: dict) -> dict[str, Any]:
            values = given(variables)
            if not isinstance(values, dict) or set(values) - set(names):
                raise Fallback
            if any(not grants.may_write(input_type, name) for name in values):
                raise Fallback  # the resolvers answer FORBIDDEN
            return values

        out: dict[str, str] = {}
        for graphql_name, column in names.items():
            parameter = jq.Param.named("filter", key, column)
            convert = filter_value(input_fields[graphql_name].type)

            def given_value(v: dict[str, Any], n: str = graphql_name, c: Callable[[Any], Any] = convert) -> Any:
                return c(checked(v).get(n))

            self.params[parameter] = given_value
            out[column] = parameter
        return out

    def connection(self, selection_set: SelectionSetNode | None, connection_type: GraphQLObjectType) -> tuple[list, dict]:
        outputs: list[Any] = []
        infos: dict[str, Any] = {}
        for key, node in self.fields(selection_set, connection_type):
            name = node.name.value
            self._readable(connection_type.name, name)
            if name == "__typename":
                outputs.append(jq.Constant(key, connection_type.name))
            elif name == "edges":
                edge_type = get_named_type(connection_type.fields[name].type)
                edge_outputs: list[Any] = []
                for edge_key, edge_node in self.fields(node.selection_set, edge_type):
                    edge_name = edge_node.name.value
                    self._readable(edge_type.name, edge_name)
                    if edge_name == "__typename":
                        edge_outputs.append(jq.Constant(edge_key, edge_type.name))
                    elif edge_name == "cursor":
                        edge_outputs.append(jq.EdgeCursor(edge_key))
                    elif edge_name == "score":
                        edge_outputs.append(jq.EdgeScore(edge_key))
                    else:
                        info, record = self.record(edge_node.selection_set, get_named_type(edge_type.fields["node"].type))
                        infos.setdefault(key, {})[edge_key] = info
                        edge_outputs.append(jq.EdgeNode(edge_key, record))
                outputs.append(jq.Edges(key, edge_outputs))
            elif name == "pageInfo":
                page_type = get_named_type(connection_type.fields[name].type)
                page_outputs: list[Any] = []
                for page_key, page_node in self.fields(node.selection_set, page_type):
                    page_name = page_node.name.value
                    self._readable(page_type.name, page_name)
                    if page_name == "__typename":
                        page_outputs.append(jq.Constant(page_key, page_type.name))
                    else:
                        page_outputs.append(jq.PageField(page_key, page_name))
                outputs.append(jq.PageInfo(key, page_outputs))
            else:
                raise jq.Unsupported(name)
        return outputs, infos

    def _readable(self, type_name: str, field_name: str) -> None:
        """Structural fields every role reads; should the policy ever refuse one, use the resolvers."""
        if field_name != "__typename" and not self.grants.may_read(type_name, field_name):
            raise jq.Unsupported(f"{type_name}.{field_name} refused")

    def record(self, selection_set: SelectionSetNode | None, object_type: GraphQLObjectType) -> tuple[NodeInfo, jq.Record]:
        kind = object_type.name
        if kind not in DISCLOSED_TYPES:
            raise jq.Unsupported(kind)
        record = jq.Record(kind)
        info = NodeInfo(refused=[])
        for key, node in self.fields(selection_set, object_type):
            name = node.name.value
            if name == "__typename":
                record.outputs.append(jq.Constant(key, kind))
                continue
            if not jq.supports(kind, name):
                raise jq.Unsupported(f"{kind}.{name}")
            if not self.grants.may_read(kind, name):
                record.outputs.append(jq.Constant(key, None))
                info.refused.append((key, f"{kind}.{name}", node))
                continue
            if (kind, name) in jq.LINKS:
                first = None
                if "first" in object_type.fields[name].args:
                    args = {a.name.value: a.value for a in node.arguments or ()}
                    first = jq.Param.named("first", len(self.params))
                    self.params[first] = self.page_size(args.get("first"), object_type.fields[name].args["first"].default_value)
                child_info, child = self.record(node.selection_set, get_named_type(object_type.fields[name].type))
                info.children[key] = child_info
                record.outputs.append(jq.Link(key, name, child, first))
            else:
                record.outputs.append(jq.Scalar(key, name))
        return info, record


def filter_fields(schema: GraphQLSchema, input_type: str) -> dict[str, str]:
    """GraphQL name -> Python name of each field of a filter input, as declared (api.queries);
    the Python name is the filter's key in api.json_query (FILTER_COLUMNS)."""
    names = {}
    for name, field in cast(GraphQLInputObjectType, schema.type_map[input_type]).fields.items():
        definition = definition_of(field)
        if definition is None:
            raise jq.Unsupported(f"{input_type}.{name}")
        names[name] = definition.python_name
    return names


def _parameters(plan: Plan, variables: dict) -> dict[str, Any]:
    try:
        return {name: get(variables) for name, get in plan.params.items()}
    except (KeyError, TypeError, ValueError, RegistryError):
        raise Fallback from None


def _page_size(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_PAGE_SIZE:
        raise Fallback  # the resolvers refuse it with the right error
    return value


def _uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise Fallback
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Fallback from None


def _text(value: Any) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise Fallback
    return value


def _date(value: Any) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise Fallback
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Fallback from None


def _score(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise Fallback from None


def _moment(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise Fallback from None


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def _enums(*allowed: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        if not all(v in allowed for v in values):
            raise Fallback
        return value

    return convert


def filter_value(field_type: GraphQLInputType) -> Callable[[Any], Any]:
    """How a filter field's value is checked, from its GraphQL type: enums against their values,
    IDs as UUIDs, text as text. The domain ignores empty text filters and empty lists; so does
    the statement."""
    named = get_named_type(field_type)
    if isinstance(named, GraphQLEnumType):
        allowed = _enums(*named.values)
        if is_list_type(get_nullable_type(field_type)):
            return _optional(lambda v: allowed(v if isinstance(v, list) else [v]) or None)
        return _optional(allowed)
    if named.name == "UUID":
        return _optional(_uuid)
    return _optional(lambda v: _text(v) or None)


def _refused(type_field: str, node: FieldNode, path: list) -> GraphQLError:
    type_name, field_name = type_field.split(".", 1)
    return GraphQLError(refusal(type_name, field_name).message, nodes=[node], path=path,
                        original_error=refusal(type_name, field_name))


def _walk(value: Any, info: Any, path: list, errors: list, seen: set) -> None:
    """Raise each refusal once, at its first position in the response."""
    if value is None or (isinstance(info, NodeInfo) and info.quiet):
        return
    if isinstance(info, dict):  # a connection: {edges key: {node key: NodeInfo}}
        for edges_key, nodes in info.items():
            for index, edge in enumerate(value.get(edges_key) or ()):
                for node_key, node_info in nodes.items():
                    _walk(edge.get(node_key), node_info, [*path, edges_key, index, node_key], errors, seen)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, info, [*path, index], errors, seen)
        return
    for key, type_field, node in info.refused:
        # The first refusal at each position is the one api.errors.deduplicate would keep.
        if (id(info), type_field) not in seen:
            seen.add((id(info), type_field))
            errors.append(_refused(type_field, node, [*path, key]))
    for key, child in info.children.items():
        _walk(value.get(key), child, [*path, key], errors, seen)
