"""One place that turns failures into GraphQL errors with a stable `extensions.code`.

Expected failures keep their message; anything else is masked as INTERNAL with the request
id, and logged on the server by its type, SQLSTATE and stack only: an exception's message can
carry the values it failed on (a name, a date of birth), so it is never logged. No message suggests names ("Did you mean ...?"):
a suggestion could name a field the caller's role may not read.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from graphql import GraphQLError

from registry.db.failures import log_failure
from registry.domain.errors import RegistryError

log = logging.getLogger("registry.errors")

CODES = {
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "PURPOSE_REQUIRED",
    "NOT_FOUND",
    "CONFLICT",
    "BAD_USER_INPUT",
    "QUERY_TOO_COMPLEX",
    "PERSISTED_QUERY_NOT_FOUND",
    "RATE_LIMITED",
    "UNAVAILABLE",
    "OVERLOADED",
    "INTERNAL",
}
# What a client may be told, as the schema's root types say it (README "Errors").
CODES_DESCRIPTION = (
    "Every error carries `extensions.code`: UNAUTHENTICATED (HTTP 401), FORBIDDEN, PURPOSE_REQUIRED, "
    "NOT_FOUND, CONFLICT, BAD_USER_INPUT, QUERY_TOO_COMPLEX, PERSISTED_QUERY_NOT_FOUND, RATE_LIMITED, "
    "UNAVAILABLE (HTTP 503 with Retry-After: the database is out of reach or did not answer in time), "
    "OVERLOADED (HTTP 503 with Retry-After: the service sheds load; nothing was started) or INTERNAL "
    "(with `extensions.requestId`)."
)
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?", re.DOTALL)


def error(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extensions}}


def format_error(err: GraphQLError, request_id: str) -> tuple[dict[str, Any], bool]:
    """The error as sent to the client, and whether it was unexpected (then the change rolls back)."""
    original = err.original_error
    out: dict[str, Any] = {"message": _SUGGESTION.sub("", err.message)}
    if err.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in err.locations]
    if err.path:
        out["path"] = err.path
    if isinstance(original, RegistryError):
        out["message"] = original.message
        out["extensions"] = {"code": original.code, **original.details}
        return out, False
    if original is None or isinstance(original, GraphQLError):
        code = (err.extensions or {}).get("code")
        out["extensions"] = {**(err.extensions or {}), "code": code if code in CODES else "BAD_USER_INPUT"}
        return out, False
    if _cancelled(original):
        log.warning("statement cancelled at statement_timeout (request %s)", request_id)
        out["message"] = "the query ran longer than the statement timeout and was cancelled; ask for less"
        out["extensions"] = {"code": "QUERY_TOO_COMPLEX", "limit": "statement_timeout", "requestId": request_id}
        return out, True  # the transaction is aborted: nothing is kept, nothing is returned
    log_failure(log, "unexpected error", original, request_id)
    out["message"] = f"Internal error; quote request id {request_id} to the registry's operators"
    out["extensions"] = {"code": "INTERNAL", "requestId": request_id}
    return out, True


QUERY_CANCELLED = "57014"  # PostgreSQL's SQLSTATE for a statement cancelled (statement_timeout)


def _cancelled(exc: BaseException | None) -> bool:
    """Whether PostgreSQL cancelled the statement, however the driver and SQLAlchemy wrapped it."""
    seen = 0
    while exc is not None and seen < 5:
        if getattr(exc, "sqlstate", None) == QUERY_CANCELLED or getattr(exc, "pgcode", None) == QUERY_CANCELLED:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__
        seen += 1
    return False


def _position(err: dict[str, Any]) -> tuple:
    """A total order on errors that does not depend on the order resolvers happened to finish."""
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in err.get("path") or ())


def deduplicate(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Errors in a canonical order, with one FORBIDDEN error per refused Type.field per response
    (a list of 100 records hits it 100 times); the one kept is the first in that order."""
    seen: set[str] = set()
    out = []
    for err in sorted(errors, key=_position):
        ext = err.get("extensions") or {}
        if ext.get("code") == "FORBIDDEN" and ext.get("field"):
            if ext["field"] in seen:
                continue
            seen.add(ext["field"])
        out.append(err)
    return out
