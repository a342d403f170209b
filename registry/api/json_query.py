"""One SQL statement that builds a read operation's whole response as JSON inside PostgreSQL.

The statement is made from a selection tree (what to return, already cleared by the field
rules) and the caller's row scopes (access.scopes, the same predicates the resolvers use),
compiled once per (document, role set) and then run with the request's values as bind
parameters. Every record object disclosed carries a hidden `__sir` tag (its position in the
selection, its id, its subject's id), so that the caller can write exactly which records and
fields were disclosed to the audit trail (Prepared.disclosed), then cut the tags out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Integer,
    Text,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    inspect,
    literal_column,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.orm import aliased

from registry.access.principal import Principal
from registry.access.scopes import record_scope, records_of_visible_subject, subject_scope
from registry.audit.trail import Actor, Disclosure, actor_values, consulted_insert
from registry.db.tables import FollowUpNote, Referral, Subject, ThreatAssessment
from registry.db.values import ThreatLevel

HIDDEN = "__sir"
# How json_build_object writes a tag: the object's last key, then `<position>|<record id>|<subject
# id>"` (TAG_LENGTH characters). Inside a JSON string every `"` is escaped, so TAG_START is found
# only where the statement put a tag.
TAG_START = f', "{HIDDEN}" : "'
_TAG_START = TAG_START.encode()  # the response comes as UTF-8 bytes: cut and sent without decoding
TAG_LENGTH = 4 + 1 + 36 + 1 + 36 + 1
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
MODELS: dict[str, Any] = {"Subject": Subject, "Referral": Referral, "FollowUpNote": FollowUpNote, "ThreatAssessment": ThreatAssessment}


# ----------------------------------------------------------------------------- selection tree


@dataclass
class Constant:
    """A value known before the query runs: `__typename`, or null for a refused field."""

    key: str
    value: Any


@dataclass
class Scalar:
    key: str
    field: str


@dataclass
class Link:
    """A linked record (`subject`, `latestAssessment`) or list of records (`notes(first:)`)."""

    key: str
    field: str
    node: "Record"
    first: str | None = None  # name of the page-size parameter of a list with `first`


@dataclass
class Record:
    kind: str
    outputs: list[Union[Constant, Scalar, Link]] = field(default_factory=list)


@dataclass
class EdgeCursor:
    key: str


@dataclass
class EdgeScore:
    """searchSubjects: how well the subject matched."""

    key: str


@dataclass
class EdgeNode:
    key: str
    node: Record


@dataclass
class Edges:
    key: str
    outputs: list[Union[Constant, EdgeCursor, EdgeScore, EdgeNode]]


@dataclass
class PageField:
    key: str
    field: str  # hasNextPage, hasPreviousPage, startCursor, endCursor


@dataclass
class PageInfo:
    key: str
    outputs: list[Union[Constant, PageField]]


@dataclass
class Search:
    """searchSubjects' terms (domain.search.terms), as the names of their parameters."""

    text: str  # the names as typed (cleaned)
    prefix: str  # a reference prefix, or null: the names are searched
    prefix_end: str  # the end of the prefix's byte-wise range
    words: list[str]  # MAX_WORDS parameters; those the text does not use are null
    born: str  # date of birth, or null


@dataclass
class Connection:
    kind: str
    first: str  # name of the page-size parameter
    after: bool  # whether the operation can give a cursor (its value, maybe null, is a parameter)
    filters: dict[str, str]  # filter field -> parameter name (null: that field does not filter)
    outputs: list[Union[Constant, Edges, PageInfo]]
    search: Search | None = None  # searchSubjects: matched and ranked, instead of ordered by reference


@dataclass
class Root:
    """A root field: one record by id (`subject`, `referral`), a page, or a constant."""

    key: str
    field: str
    record: Record | None = None
    connection: Connection | None = None
    constant: Constant | None = None


# Filter field -> column.
FILTER_COLUMNS = {
    "reference": "reference", "institution": "institution", "legal_status": "legal_status",
    "agency": "agency_code", "status": "status", "reason": "reason", "subject_id": "subject_id",
}


def _after_key(kind: str) -> ColumnElement:
    """The sort key of the cursor: a subject's reference, a referral's creation time."""
    type_ = Text if kind == "Subject" else postgresql.TIMESTAMP(timezone=True)
    return bindparam(Param.AFTER_KEY, None, type_=type_)


def _count(parameter: str) -> ColumnElement:
    return bindparam(parameter, None, type_=Integer)


class Param:
    """Names of the bind parameters a request fills in (prefix `req_`)."""

    PREFIX = "req_"
    AFTER_KEY = "req_after_key"
    AFTER_ID = "req_after_id"
    AFTER_SCORE = "req_after_score"

    @staticmethod
    def named(*parts: object) -> str:
        return "req_" + "_".join(str(p) for p in parts)


# ----------------------------------------------------------------------------- values


def _constant(value: Any) -> ColumnElement:
    """`__typename` (a GraphQL name) or null (a refused field)."""
    return literal_column("NULL") if value is None else literal_column(f"'{_name(value)}'")


def _name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a GraphQL name: {name!r}")
    return name


def _key(name: str) -> ColumnElement:
    if name == HIDDEN:
        raise Unsupported(f"the response key {HIDDEN} is the statement's own")
    return literal_column(f"'{_name(name)}'")


def _sql(text: str) -> ColumnElement:
    """A constant of this module's own (never request data), written into the SQL text."""
    return literal_column("'" + text.replace("'", "''") + "'", Text)


def timestamp_text(column: ColumnElement) -> ColumnElement:
    """The JSON text of a timestamptz (the session runs in UTC): as domain.pages.timestamp_text."""
    return func.to_json(column).op("#>>")(literal_column("'{}'"))


def _level(column: ColumnElement) -> ColumnElement:
    return case(*[(column == literal_column(str(level.value)), _sql(level.name)) for level in ThreatLevel])


def _corrected_by(note: Any) -> ColumnElement:
    correction = aliased(FollowUpNote)
    return select(correction.id).where(correction.corrects_id == note.id).scalar_subquery()


# GraphQL field -> SQL expression on an alias of the record's table.
Column = Callable[[Any], ColumnElement]
COLUMNS: dict[str, dict[str, Column]] = {
    "Subject": {
        "id": lambda t: t.id,
        "reference": lambda t: t.reference,
        "givenName": lambda t: t.given_name,
        "familyName": lambda t: t.family_name,
        "dateOfBirth": lambda t: t.date_of_birth,
        "nationalNumber": lambda t: t.national_number,
        "institution": lambda t: t.institution,
        "legalStatus": lambda t: t.legal_status,
        "agency": lambda t: t.agency_code,
        "reviewDueAt": lambda t: t.review_due_at,
        "retainUntil": lambda t: t.retain_until,
        "version": lambda t: t.version,
        "createdAt": lambda t: t.created_at,
        "updatedAt": lambda t: t.updated_at,
    },
    "Referral": {
        "id": lambda t: t.id,
        "status": lambda t: t.status,
        "reason": lambda t: t.reason,
        "narrative": lambda t: t.narrative,
        "legalBasis": lambda t: t.legal_basis,
        "referredBy": lambda t: t.referred_by,
        "agency": lambda t: t.agency_code,
        "createdAt": lambda t: t.created_at,
        "submittedAt": lambda t: t.submitted_at,
        "acknowledgedAt": lambda t: t.acknowledged_at,
        "closedAt": lambda t: t.closed_at,
        "version": lambda t: t.version,
    },
    "FollowUpNote": {
        "id": lambda t: t.id,
        "referralId": lambda t: t.referral_id,
        "correctsId": lambda t: t.corrects_id,
        "correctedById": _corrected_by,
        "visibility": lambda t: t.visibility,
        "body": lambda t: t.body,
        "author": lambda t: t.author,
        "agency": lambda t: t.agency_code,
        "createdAt": lambda t: t.created_at,
    },
    "ThreatAssessment": {
        "id": lambda t: t.id,
        "referralId": lambda t: t.referral_id,
        "level": lambda t: _level(t.level),
        "status": lambda t: t.status,
        "summary": lambda t: t.summary,
        "rationale": lambda t: t.rationale,
        "sources": lambda t: func.to_json(func.coalesce(t.sources, cast(literal_column("'{}'"), ARRAY(Text)))),
        "author": lambda t: t.author,
        "validatedBy": lambda t: t.validated_by,
        "validatedAt": lambda t: t.validated_at,
        "validUntil": lambda t: t.valid_until,
        "createdAt": lambda t: t.created_at,
        "version": lambda t: t.version,
    },
}



@dataclass(frozen=True)
class Relation:
    """How a linked record belongs to its parent row."""

    kind: str
    belongs: Callable[[Any, Any], ColumnElement]  # (child table, parent table) -> join condition
    many: bool = True
    only: Callable[[Any], ColumnElement] = lambda child: true()  # e.g. the validated one


def _of_subject(child: Any, parent: Any) -> ColumnElement:
    return child.subject_id == parent.id


def _of_referral(child: Any, parent: Any) -> ColumnElement:
    return child.referral_id == parent.id


def _owner(child: Any, parent: Any) -> ColumnElement:
    return child.id == parent.subject_id


LINKS: dict[tuple[str, str], Relation] = {
    ("Subject", "referrals"): Relation("Referral", _of_subject),
    ("Subject", "notes"): Relation("FollowUpNote", _of_subject),
    ("Subject", "assessments"): Relation("ThreatAssessment", _of_subject),
    ("Subject", "latestAssessment"): Relation(
        "ThreatAssessment", _of_subject, many=False, only=lambda child: child.status == "VALIDATED"
    ),
    ("Referral", "subject"): Relation("Subject", _owner, many=False),
    ("Referral", "notes"): Relation("FollowUpNote", _of_referral),
    ("Referral", "assessments"): Relation("ThreatAssessment", _of_referral),
    ("FollowUpNote", "subject"): Relation("Subject", _owner, many=False),
    ("ThreatAssessment", "subject"): Relation("Subject", _owner, many=False),
}


def supports(kind: str, field_name: str) -> bool:
    return field_name in COLUMNS.get(kind, {}) or (kind, field_name) in LINKS


# ----------------------------------------------------------------------------- statement


# What the rows met at one position of the statement are (_Builder.record).
ONE, DISTINCT, REPEAT = "one", "distinct", "repeat"


class _Builder:
    def __init__(self, principal: Principal) -> None:
        self.p = principal
        self.positions: list[tuple[str, tuple[str, ...]]] = []  # tag position -> (type, fields disclosed)
        self.repeats = False  # whether a record can be met twice: at two positions, or twice at one

    def scope(self, kind: str, table: Any) -> ColumnElement:
        if kind == "Subject":
            return subject_scope(self.p, table)
        return record_scope(MODELS[kind], self.p, table)

    @staticmethod
    def newest_first(table: Any) -> tuple:
        return (table.created_at.desc(), table.id.desc())

    def record(self, node: Record, table: Any, rows: str) -> ColumnElement:
        """json_build_object of the selected fields of one row of `table`. `rows` says what the
        rows met at this position are: ONE row, DISTINCT rows, or rows that may REPEAT."""
        args: list[Any] = []
        for out in node.outputs:
            args.append(_key(out.key))
            if isinstance(out, Constant):
                args.append(_constant(out.value))
            elif isinstance(out, Scalar):
                args.append(COLUMNS[node.kind][out.field](table))
            else:
                args.append(self.link(node.kind, out, table, rows))
        disclosed = tuple(sorted({out.field for out in node.outputs if isinstance(out, (Scalar, Link))}))
        if disclosed:  # the tag is the object's last key
            if len(self.positions) >= 10_000:
                raise Unsupported("too many record positions")
            position = _sql(f"{len(self.positions):04d}|")
            self.repeats |= rows == REPEAT or any(kind == node.kind for kind, _ in self.positions)
            self.positions.append((node.kind, disclosed))
            subject_id = table.id if node.kind == "Subject" else table.subject_id
            tag = position.concat(cast(table.id, Text)).concat(_sql("|")).concat(cast(subject_id, Text))
            args += [literal_column(f"'{HIDDEN}'"), tag]
        if len(args) > 100:
            raise Unsupported("too many fields in one object")
        return func.json_build_object(*args)

    def link(self, parent_kind: str, out: Link, parent: Any, parent_rows: str) -> ColumnElement:
        relation = LINKS[(parent_kind, out.field)]
        if relation.belongs is _owner:  # many children may share their owner
            met = ONE if parent_rows == ONE else REPEAT
        elif parent_rows == REPEAT:  # a child has one parent: it repeats only where its parent does
            met = REPEAT
        else:
            met = ONE if parent_rows == ONE and not relation.many else DISTINCT
        kind, model = relation.kind, MODELS[relation.kind]
        rows = aliased(model)
        if parent_kind == "Subject":  # the subject passed its scope: only the rule on records is left
            scope = records_of_visible_subject(model, self.p, rows)
        else:
            scope = self.scope(kind, rows)
        query = (
            select(rows)
            .where(relation.belongs(rows, parent), relation.only(rows), scope)
            .correlate(inspect(parent).selectable)  # the parent row, however deep it is
        )
        if kind != "Subject":
            query = query.order_by(*self.newest_first(rows))
        if not relation.many:
            inner = query.limit(1).lateral()
            one = aliased(model, inner)
            return select(self.record(out.node, one, met)).select_from(inner).scalar_subquery()
        if out.first is not None:
            query = query.limit(_count(out.first))
        inner = query.lateral()  # lateral: the derived table refers to the parent row
        item = aliased(model, inner)
        aggregated = func.json_agg(aggregate_order_by(self.record(out.node, item, met), *self.newest_first(item)))
        return select(func.coalesce(aggregated, literal_column("'[]'::json"))).select_from(inner).scalar_subquery()

    def by_id(self, root: Root) -> ColumnElement:
        record = root.record
        assert record is not None, "a root by id has a record"
        model = MODELS[record.kind]
        row = aliased(model)
        wanted = bindparam(Param.named("id", root.key), None, type_=postgresql.UUID(as_uuid=True))
        inner = select(row).where(row.id == wanted, self.scope(record.kind, row)).subquery()
        one = aliased(model, inner)
        return select(self.record(record, one, ONE)).select_from(inner).scalar_subquery()

    def connection(self, conn: Connection) -> ColumnElement:
        model = MODELS[conn.kind]
        # A search's order names its row by name (`USING`, which the ORM does not write).
        row = aliased(model, name="searched") if conn.search is not None else aliased(model)
        conditions = [self.scope(conn.kind, row)]
        for name, parameter in conn.filters.items():
            column = getattr(row, FILTER_COLUMNS[name])
            if name == "status":
                value = bindparam(parameter, None, type_=ARRAY(Text))
                conditions.append(or_(value.is_(None), column == func.any(value)))
            else:
                type_: Any = postgresql.UUID(as_uuid=True) if name == "subject_id" else Text
                value = bindparam(parameter, None, type_=type_)
                conditions.append(or_(value.is_(None), column == value))
        # A page after a cursor; a null cursor (no `after` in this request) starts at the top.
        score = None
        if conn.search is not None:
            search_conditions, score, order = self.search(conn, row)
            conditions += search_conditions
        elif conn.kind == "Subject":
            order = (row.reference,)
            if conn.after:
                after = _after_key("Subject")
                conditions.append(or_(after.is_(None), row.reference > after))
        else:
            order = self.newest_first(row)
            if conn.after:
                created = _after_key("Referral")
                ident = bindparam(Param.AFTER_ID, None, type_=postgresql.UUID(as_uuid=True))
                conditions.append(
                    or_(created.is_(None), row.created_at < created, and_(row.created_at == created, row.id < ident))
                )
        first = _count(conn.first)
        position = func.row_number().over(order_by=order).label("position")
        columns = [row, position] if score is None else [row, position, score.label("score")]
        inner = select(*columns).where(*conditions).order_by(*order).limit(first + literal_column("1")).subquery()
        item = aliased(model, inner)
        rank = inner.c.position
        in_page = rank <= first
        cursor = self.cursor(conn.kind, item, None if score is None else inner.c.score)
        parts: list[Any] = []
        for out in conn.outputs:
            parts.append(_key(out.key))
            if isinstance(out, Constant):
                parts.append(_constant(out.value))
            elif isinstance(out, Edges):
                edge: list[Any] = []
                for e in out.outputs:
                    edge.append(_key(e.key))
                    if isinstance(e, Constant):
                        edge.append(_constant(e.value))
                    elif isinstance(e, EdgeCursor):
                        edge.append(cursor)
                    elif isinstance(e, EdgeScore):
                        edge.append(inner.c.score)
                    else:
                        edge.append(self.record(e.node, item, DISTINCT))
                aggregated = func.json_agg(aggregate_order_by(func.json_build_object(*edge), rank)).filter(in_page)
                parts.append(func.coalesce(aggregated, literal_column("'[]'::json")))
            else:
                parts.append(self.page_info(out, conn, cursor, rank, in_page))
        return select(func.json_build_object(*parts)).select_from(inner).scalar_subquery()

    @staticmethod
    def page_info(out: PageInfo, conn: Connection, cursor: ColumnElement, rank: Any, in_page: Any) -> ColumnElement:
        fields: list[Any] = []
        for p in out.outputs:
            fields.append(_key(p.key))
            if isinstance(p, Constant):
                fields.append(_constant(p.value))
            elif p.field == "hasNextPage":
                fields.append(func.count() > _count(conn.first))
            elif p.field == "hasPreviousPage":
                fields.append(_after_key(conn.kind).is_not(None) if conn.after else false())
            else:
                direction = rank if p.field == "startCursor" else rank.desc()
                cursors = type_coerce(func.array_agg(aggregate_order_by(cursor, direction)).filter(in_page), ARRAY(Text))
                fields.append(cursors[1])
        return func.json_build_object(*fields)

    @staticmethod
    def search(conn: Connection, row: Any) -> tuple[list[ColumnElement], ColumnElement, tuple]:
        """searchSubjects' conditions, score and order: domain.search.statement's, with the terms
        as parameters (words the text does not use are null and match everything)."""
        s = conn.search
        if s is None:
            raise Unsupported("a search without its terms")
        prefix, prefix_end = bindparam(s.prefix, None, type_=Text), bindparam(s.prefix_end, None, type_=Text)
        born = bindparam(s.born, None, type_=Date)
        key = inspect(row).selectable.c.search_name

        def spelled(value: ColumnElement) -> ColumnElement:  # once per statement, as in the domain
            return select(func.lower(func.registry_unaccent(value))).scalar_subquery()

        wanted = spelled(bindparam(s.text, None, type_=Text))
        words = [bindparam(word, None, type_=Text) for word in s.words]
        names = and_(prefix.is_(None), *[or_(word.is_(None), spelled(word).op("<%")(key)) for word in words])
        references = and_(prefix.is_not(None), row.reference.op("~>=~")(prefix), row.reference.op("~<~")(prefix_end))
        ranked = cast((3 * func.word_similarity(wanted, key) + func.similarity(wanted, key)) / 4, Float)
        score = case((prefix.is_not(None), literal_column("1.0", Float)), else_=ranked)
        conditions = [or_(names, references), or_(born.is_(None), row.date_of_birth == born)]
        if conn.after:
            last_reference, last_score = _after_key("Subject"), bindparam(Param.AFTER_SCORE, None, type_=Float)
            conditions.append(or_(
                last_reference.is_(None),
                and_(prefix.is_(None), or_(score < last_score, and_(score == last_score, row.reference > last_reference))),
                and_(prefix.is_not(None), row.reference.op("~>~")(last_reference)),
            ))
        by_name = case((prefix.is_(None), row.reference))
        order: tuple[ColumnElement[Any], ...] = (score.desc(), by_name, literal_column("searched.reference USING ~<~"))
        return conditions, score, order

    @staticmethod
    def cursor(kind: str, item: Any, score: ColumnElement | None = None) -> ColumnElement:
        """The same opaque cursor as domain.pages.encode_cursor: url-safe base64 of a JSON list."""
        if score is not None:  # searchSubjects: [score as float8 text, reference]
            key = (
                _sql('["').concat(cast(score, Text)).concat(_sql('", "'))
                .concat(item.reference).concat(_sql('"]'))
            )
        elif kind == "Subject":
            key = _sql('["').concat(item.reference).concat(_sql('"]'))
        else:
            key = (
                _sql('["').concat(timestamp_text(item.created_at)).concat(_sql('", "'))
                .concat(cast(item.id, Text)).concat(_sql('"]'))
            )
        encoded = func.encode(func.convert_to(key, _sql("UTF8")), _sql("base64"))
        return func.translate(encoded, literal_column("E'+/\\n'"), _sql("-_"))

    def statement(self, roots: list[Root]) -> Any:
        parts: list[Any] = []
        for root in roots:
            parts.append(_key(root.key))
            if root.constant is not None:
                parts.append(_constant(root.constant.value))
            elif root.record is not None:
                parts.append(self.by_id(root))
            else:
                assert root.connection is not None, "a root is a constant, a record or a page"
                parts.append(self.connection(root.connection))
        # As text: decoded by orjson, not by the driver's json codec.
        return select(cast(func.json_build_object(*parts), Text).label("data"))


class Unsupported(Exception):
    """The selection cannot be compiled; the caller uses the resolvers instead."""


# ----------------------------------------------------------------------------- compiled form


class _Marker:
    """Stands for a principal attribute in a statement compiled once for many principals."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute


PRINCIPAL_VALUES = ("id", "name", "agency", "unit", "break_glass_subject")


def expected_records(roots: list[Root], params: dict[str, Any], list_estimate: int) -> int:
    """Records a response holds at most, lists without `first` counted as `list_estimate`."""
    total = 0
    for root in roots:
        if root.record is not None:
            total += _records_below(root.record, params, list_estimate)
        elif root.connection is not None:
            nodes = [e.node for edges in root.connection.outputs if isinstance(edges, Edges)
                     for e in edges.outputs if isinstance(e, EdgeNode)]
            total += params[root.connection.first] * sum(_records_below(n, params, list_estimate) for n in nodes)
    return total


def _records_below(node: Record, params: dict[str, Any], list_estimate: int) -> int:
    """A module function, not a closure: a closure calling itself is a reference cycle per call."""
    count = 1
    for out in node.outputs:
        if isinstance(out, Link):
            many = LINKS[(node.kind, out.field)].many
            per_parent = params[out.first] if out.first else list_estimate if many else 1
            count += per_parent * _records_below(out.node, params, list_estimate)
    return count


# A read expected to disclose at most this many records writes its audit event itself, in the
# same statement: one round trip. Past it, reading the tags back in SQL costs more than the read
# (string handling is not PostgreSQL's strength), so Python does that and inserts the event.
ONE_STATEMENT_RECORDS = 100


@dataclass
class Prepared:
    """The read's SQL text with $n placeholders, how to fill each placeholder for one request,
    what each tag position discloses, and the same read writing its own audit event."""

    sql: str  # the response with its tags
    slots: list[tuple[str, Any]]  # ("const", value) | ("principal", attribute) | ("param", name)
    positions: list[tuple[str, tuple[str, ...]]]  # tag position -> (type, fields disclosed, sorted)
    audited_sql: str  # the response, and the records.consulted event written

    def arguments(self, principal: Principal, params: dict[str, Any]) -> list[Any]:
        out = []
        for how, what in self.slots:
            if how == "const":
                out.append(what)
            elif how == "principal":
                out.append(getattr(principal, what))
            else:
                out.append(params[what])
        return out

    def audited_arguments(self, actor: Actor, params: dict[str, Any]) -> list[Any]:
        values = self.arguments(actor.principal, params)
        return [*values, *actor_values(actor)] if self.positions else values

    @staticmethod
    def without_tags(response: bytes) -> bytes:
        return _untagged(response.split(_TAG_START))

    def disclosed(self, response: bytes, disclosure: Disclosure) -> bytes:
        """The response without its tags; the tagged records are added to `disclosure`. Plain
        byte operations, per position rather than per record: a tenth of parsing the JSON."""
        parts = response.split(_TAG_START)
        joined = b"".join([part[:TAG_LENGTH] for part in parts[1:]]).decode("ascii")
        tags = [joined[i:i + TAG_LENGTH] for i in range(0, len(joined), TAG_LENGTH)]
        if joined.count("|") != 2 * len(tags) or joined.count('"') != len(tags):
            raise ValueError("a record tag of the compiled statement is malformed")
        by_position: dict[str, list[str]] = {}
        for tag in set(tags):
            by_position.setdefault(tag[:4], []).append(tag)
        for position, found in by_position.items():
            kind, fields = self.positions[int(position)]
            disclosure.add_many(kind, fields, [tag[5:41] for tag in found], [tag[42:78] for tag in found])
        return _untagged(parts)


def _untagged(parts: list[bytes]) -> bytes:
    """The response from its pieces split at TAG_START: each piece after the first starts with a tag."""
    return parts[0] + b"".join([part[TAG_LENGTH:] for part in parts[1:]])


def prepare(roots: list[Root], principal: Principal) -> Prepared:
    """Compile the statement for this principal's shape (roles, scopes, which values are set)."""
    template = principal.__class__(
        **{
            **{f: getattr(principal, f) for f in principal.__dataclass_fields__},
            **{a: _Marker(a) for a in PRINCIPAL_VALUES if getattr(principal, a, None) is not None},
        }
    )
    builder = _Builder(template)
    statement = builder.statement(roots)
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect(), compile_kwargs={"render_postcompile": True})
    slots: list[tuple[str, Any]] = []
    for name in compiled.positiontup:
        value = compiled.params.get(name)
        if name.startswith(Param.PREFIX):
            slots.append(("param", name))
        elif isinstance(value, _Marker):
            slots.append(("principal", value.attribute))
        else:
            slots.append(("const", value))
    read = str(compiled)
    plain = _as_bytes(f"({read}) AS r(text)")
    if builder.positions:
        audited = _disclosing(read, builder.positions, builder.repeats, first=len(slots) + 1)
    else:  # nothing is disclosed (only __typename or refused fields): no event
        audited = plain
    return Prepared(sql=plain, slots=slots, positions=builder.positions, audited_sql=audited)


def _as_bytes(source: str) -> str:
    """The response text of `source` as UTF-8 bytes, which the driver hands over without decoding."""
    return f"SELECT convert_to(text, 'UTF8') FROM {source}"


def _disclosing(read: str, positions: list[tuple[str, tuple[str, ...]]], repeats: bool, first: int) -> str:
    """The read (its tags kept: Python cuts them out for less) writing the records.consulted
    event they describe: each record once (type, id, the fields disclosed at any of its
    positions), sorted as Disclosure.records sorts them, and the subjects they belong to.
    Unless a record can be met twice (`repeats`), every tag is a record of its own."""

    def by_position(of: str, values: list[str]) -> str:
        return f"CASE {of} " + " ".join(f"WHEN '{p:04d}' THEN {v}" for p, v in enumerate(values)) + " END"

    kinds = by_position("pos", [f"'{_name(kind)}'" for kind, _ in positions])
    fields = ["'[" + ", ".join(f'"{_name(f)}"' for f in names) + "]'" for _, names in positions]
    if repeats:
        per_record = f"SELECT {kinds} AS kind, id, array_agg(DISTINCT pos) AS at FROM tags GROUP BY 1, 2"
        # Most records sit at one position: their fields are that position's list, sorted already.
        union = (
            '(SELECT CAST(jsonb_agg(DISTINCT f.name COLLATE "C" ORDER BY f.name COLLATE "C") AS text)'
            f" FROM unnest(at) AS a(p), jsonb_array_elements_text(CAST({by_position('a.p', fields)} AS jsonb)) AS f(name))"
        )
        disclosed = f"CASE WHEN cardinality(at) = 1 THEN {by_position('at[1]', fields)} ELSE {union} END"
    else:
        per_record = f"SELECT {kinds} AS kind, id, pos FROM tags"
        disclosed = by_position("pos", fields)
    # The list is written as text (kept as written: building it value by value as jsonb cost
    # more than the read itself). Kinds and fields are the statement's own names, and ids are the
    # text of uuids, so nothing in it needs escaping.
    record = f"""'{{"id": "' || id || '", "type": "' || kind || '", "fields": ' || {disclosed} || '}}'"""
    disclosure = (
        "(SELECT ARRAY(SELECT DISTINCT CAST(subject AS uuid) FROM tags ORDER BY 1) AS subject_ids,"
        f" CAST('[' || string_agg({record}, ', ' ORDER BY kind COLLATE \"C\", id COLLATE \"C\") || ']' AS json)"
        f" AS records FROM ({per_record}) AS per_record) AS disclosure WHERE records IS NOT NULL"
    )
    return (
        # Materialized: the read is referred to twice, and would otherwise be run twice.
        f"WITH response(text) AS MATERIALIZED ({read}),"
        " tags AS (SELECT substr(p, 1, 4) AS pos, substr(p, 6, 36) AS id, substr(p, 43, 36) AS subject"
        f" FROM response, unnest((string_to_array(response.text, '{TAG_START}'))[2:]) AS p),"
        f" consulted AS ({consulted_insert(disclosure, first)})"
        f" {_as_bytes('response')}"  # with its tags: Python cuts them out for less than SQL would
    )
