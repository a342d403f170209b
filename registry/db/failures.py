"""Database failures: which ones mean "the database is not there", and how any failure is logged.

An exception's message can quote the value it failed on (PostgreSQL's DETAIL of a unique
violation holds the key, a cast error the text it could not cast), so the log gets the
exception's types down its cause chain, their SQLSTATEs and the code's frames, never a message.
"""

from __future__ import annotations

import logging
import traceback

import asyncpg

# SQLSTATE classes and codes that mean "the database is not there to answer", not "the request
# is wrong": connection exceptions, shutdown or start-up in progress, no connection slot left.
_UNAVAILABLE_CLASSES = ("08",)
_UNAVAILABLE_STATES = {"57P01", "57P02", "57P03", "53300", "53400"}
_CHAIN = 6  # causes followed at most


NOT_CHANGED = "the database is unavailable; nothing was changed; retry after the delay given"


class DatabaseUnavailable(Exception):
    """The database did not answer in time, or not at all."""


def _chain(exc: BaseException | None):
    seen = 0
    while exc is not None and seen < _CHAIN:
        yield exc
        exc = getattr(exc, "orig", None) or exc.__cause__
        seen += 1


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return state if isinstance(state, str) else None


def unreachable(exc: BaseException | None) -> bool:
    """Whether `exc` (however the driver and SQLAlchemy wrapped it) says the database is gone."""
    for current in _chain(exc):
        if isinstance(current, (DatabaseUnavailable, OSError, TimeoutError)):
            return True
        state = _sqlstate(current)
        if state and (state in _UNAVAILABLE_STATES or state.startswith(_UNAVAILABLE_CLASSES)):
            return True
        if isinstance(current, asyncpg.InterfaceError) and "closed" in str(current):
            return True
        if getattr(current, "connection_invalidated", False):  # SQLAlchemy saw the connection die
            return True
    return False


def describe(exc: BaseException) -> str:
    """Types and SQLSTATEs down the cause chain, then the last frames of the code."""
    kinds = [type(c).__qualname__ + (f" (SQLSTATE {_sqlstate(c)})" if _sqlstate(c) else "") for c in _chain(exc)]
    frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)[-8:]))
    return " <- ".join(kinds) + ("\n" + frames.rstrip() if frames else "")


def log_failure(logger: logging.Logger, what: str, exc: BaseException, request_id: str | None = None) -> None:
    """Log a failure without anything it carried: see the module's docstring."""
    where = f" (request {request_id})" if request_id else ""
    logger.error("%s%s: %s", what, where, describe(exc))
