"""Finding a subject's file by name or reference: ranked matches, within the caller's row scope.

PostgreSQL does the matching: the names' search key (the column `search_name`, migration 0005:
lower case, accents removed, the family name once more without spaces and hyphens) against the
search text through `pg_trgm`'s word similarity, served by a GIN trigram index. A text that
looks like a reference (`S-...`) matches reference prefixes instead. The row scope is part of
the statement's WHERE clause, so a subject outside it is never ranked, let alone returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Float, Select, and_, cast, func, literal, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.access.principal import Principal
from registry.access.scopes import subject_scope
from registry.db.tables import Subject
from registry.domain.errors import BadUserInput
from registry.domain.pages import Page, check_first, decode_cursor, encode_cursor
from registry.domain.text import NAME_MAX, clean

MIN_TEXT = 3  # characters: below that, trigrams say nothing and every file would match
MAX_WORDS = 6  # words of the text each matched through the index
_WORD = re.compile(r"[^\W_]{3,}")
_REFERENCE = re.compile(r"S-[A-Z0-9-]*", re.IGNORECASE | re.ASCII)


@dataclass
class SearchSubjects:
    text: str
    date_of_birth: date | None = None


@dataclass
class Match:
    subject: Subject
    score: float


def _key(text: str):
    """The text as the names' search key is spelled (lower case, unaccented). A sub-select:
    computed once per statement, also under a generic plan (a function of a parameter would be
    computed again for every candidate)."""
    return select(func.lower(func.registry_unaccent(text))).scalar_subquery()


def _text(raw: str) -> str:
    text = clean(raw, "text", limit=NAME_MAX, required=True) or ""  # required: never None
    if len(text) < MIN_TEXT:
        raise BadUserInput(f"text must have at least {MIN_TEXT} characters", field="text")
    return text


@dataclass
class Terms:
    """What a search text asks for: a reference prefix (and the end of its byte-wise range), or
    the words each matched through the index. Shared by this module's statement and the compiled
    read's (db.json_query), so both paths match alike."""

    text: str
    prefix: str | None
    prefix_end: str | None
    words: list[str]


def terms(raw: str, date_of_birth: date | None) -> Terms:
    text = _text(raw)
    if _REFERENCE.fullmatch(text):
        prefix = text.upper()
        return Terms(text, prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1), [])
    # Without a date of birth, every word typed (of 3 letters or more: particles such as "de"
    # and "el" only rank) must be like a word of the names: candidates are the intersection of
    # the words' index lookups, not every subject who shares one common given name with the
    # text. A date of birth leaves few candidates: then the text as a whole must be like the
    # names, which forgives a typo that spoils one short word ("tyeo" for "Théo").
    words = _WORD.findall(text)[:MAX_WORDS] if date_of_birth is None else []
    return Terms(text, None, None, words or [text])


def cursor_key(score: float) -> str:
    """A score as PostgreSQL writes a float8 (shortest exact digits, no trailing `.0`), so a
    compiled read's cursors are the resolvers' cursors."""
    written = repr(score)
    return written[:-2] if written.endswith(".0") else written


def statement(principal: Principal, command: SearchSubjects, first: int, after: str | None) -> Select:
    """The one SELECT of a search: (Subject, score) rows in scope, best first, `first` + 1 of them."""
    asked = terms(command.text, command.date_of_birth)
    check_first(first)
    prefix = asked.prefix
    if prefix:
        # A reference prefix: every match is as good as the others, in reference order.
        score: ColumnElement[float] = literal(1.0, Float)
        # A byte-wise range, served by the reference's text_pattern_ops index.
        matches = and_(Subject.reference.op("~>=~")(prefix), Subject.reference.op("~<~")(asked.prefix_end))
    else:
        key = Subject.__table__.c.search_name
        # Word similarity finds a name in the key whatever else it holds (a given name alone, the
        # family name alone, either order); plain similarity ranks the closer full name higher.
        wanted = _key(asked.text)
        score = cast((3 * func.word_similarity(wanted, key) + func.similarity(wanted, key)) / 4, Float)
        matches = and_(*(_key(word).op("<%")(key) for word in asked.words))  # trigram index; threshold: db.engine
    query = select(Subject, score.label("score")).where(matches, subject_scope(principal))
    if command.date_of_birth is not None:
        query = query.where(Subject.date_of_birth == command.date_of_birth)
    last_score, last_reference = decode_cursor(after, 2) if after else (None, None)
    if prefix:
        # Byte-wise order too, so the same index serves the range and the order.
        if after:
            query = query.where(Subject.reference.op("~>~")(last_reference))
        return query.order_by(literal_column("subject.reference USING ~<~")).limit(first + 1)
    if after:
        try:
            last = float(last_score or "")
        except ValueError:
            raise BadUserInput("after is not a valid cursor", field="after") from None
        query = query.where(or_(score < last, and_(score == last, Subject.reference > last_reference)))
    return query.order_by(score.desc(), Subject.reference).limit(first + 1)


async def search(
    session: AsyncSession, principal: Principal, command: SearchSubjects, first: int, after: str | None
) -> Page[Match]:
    """Subjects in scope matching `command`, best first, then by reference."""
    rows = (await session.execute(statement(principal, command, first, after))).all()
    page = [Match(row.Subject, row.score) for row in rows[:first]]
    return Page(rows=page, has_next=len(rows) > first, has_previous=after is not None)


def cursor(match: Match) -> str:
    return encode_cursor(cursor_key(match.score), match.subject.reference)
