"""One place that turns failures into GraphQL errors with a stable `extensions.code`.

Expected failures keep their message; anything else is masked as INTERNAL with the request
id, and logged in full on the server only.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError

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
    "INTERNAL",
}


def error(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extensions}}


def format_error(err: GraphQLError, request_id: str) -> tuple[dict[str, Any], bool]:
    """The error as sent to the client, and whether it was unexpected (then the change rolls back)."""
    original = err.original_error
    out: dict[str, Any] = {"message": err.message}
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
    log.error("unexpected error (request %s)", request_id, exc_info=original)
    out["message"] = f"Internal error; quote request id {request_id} to the registry's operators"
    out["extensions"] = {"code": "INTERNAL", "requestId": request_id}
    return out, True
