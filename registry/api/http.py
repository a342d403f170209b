"""The /graphql endpoint: authenticate, bound the request, execute in one transaction, answer.

Nothing is executed for a request without a valid bearer token (HTTP 401), and a request
whose execution hit an unexpected error writes nothing.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.http.ides import get_graphql_ide_html

from registry.access.identity import InvalidToken
from registry.api.context import Context
from registry.audit import trail
from registry.api.errors import deduplicate, error, format_error

log = logging.getLogger("registry.http")

MAX_BODY_BYTES = 256 * 1024
MAX_BATCH = 10


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def _errors(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"errors": [error(message, code)]}, status, headers)


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex


async def graphql_endpoint(request: Request) -> Response:
    if request.method == "GET":
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(get_graphql_ide_html())
        return _errors(405, "send GraphQL operations with POST", "BAD_USER_INPUT", {"Allow": "POST"})

    services = request.app.state.services
    principal = await _authenticate(request, services)
    if isinstance(principal, Response):
        return principal

    body = await _read_body(request)
    if isinstance(body, Response):
        return body
    rid = request_id(request)
    if isinstance(body, list):
        if not body or len(body) > MAX_BATCH:
            return _errors(400, f"a batch holds 1 to {MAX_BATCH} operations", "QUERY_TOO_COMPLEX")
        return json_response([await _execute(request, services, principal, op, rid) for op in body])
    return json_response(await _execute(request, services, principal, body, rid))


async def _authenticate(request: Request, services: Any):
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="registry"'}
    if scheme.lower() != "bearer" or not token.strip():
        return _errors(401, "a bearer token is required", "UNAUTHENTICATED", challenge)
    try:
        return await services.verifier.verify(token.strip())
    except InvalidToken as exc:
        log.info("token refused: %s", exc)
        return _errors(401, f"invalid token: {exc}", "UNAUTHENTICATED", {"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def _read_body(request: Request):
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _errors(413, f"request body larger than {MAX_BODY_BYTES} bytes", "QUERY_TOO_COMPLEX")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            return _errors(413, f"request body larger than {MAX_BODY_BYTES} bytes", "QUERY_TOO_COMPLEX")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _errors(400, "the body is not valid JSON", "BAD_USER_INPUT")
    if not isinstance(body, (dict, list)):
        return _errors(400, "the body must be a GraphQL request object", "BAD_USER_INPUT")
    return body


async def _execute(request: Request, services: Any, principal: Any, op: Any, rid: str) -> dict[str, Any]:
    """One operation, one transaction: committed only if nothing unexpected happened."""
    if not isinstance(op, dict) or not isinstance(op.get("query"), str):
        return {"errors": [error("the request has no query", "BAD_USER_INPUT")]}
    variables = op.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return {"errors": [error("variables must be an object", "BAD_USER_INPUT")]}
    operation_name = op.get("operationName")
    async with services.sessions() as session:
        ctx = Context(
            principal=principal,
            policy=services.policy,
            session=session,
            request_id=rid,
            purpose=request.headers.get("registry-purpose"),
            justification=request.headers.get("registry-justification"),
            lookups=services.lookups,
            operation=operation_name if isinstance(operation_name, str) else None,
        )
        result = await services.schema.execute(
            op["query"],
            variable_values=variables,
            context_value=ctx,
            operation_name=operation_name if isinstance(operation_name, str) else None,
        )
        formatted, unexpected = [], False
        for err in result.errors or []:
            out, bad = format_error(err, rid)
            formatted.append(out)
            unexpected |= bad
        formatted = deduplicate(formatted)
        try:
            if unexpected:
                await session.rollback()
            else:
                await trail.record_request(
                    session,
                    ctx.actor(),
                    disclosure=ctx.disclosure,
                    changes=ctx.changes,
                    lookups=ctx.lookups_answered,
                    errors=formatted,
                    break_glass=ctx.break_glass,
                )
                await session.commit()
        except Exception:  # audit or commit failed: nothing was written, nothing is returned
            log.exception("audit write or commit failed (request %s)", rid)
            await session.rollback()
            return {"data": None, "errors": [error(f"Internal error; quote request id {rid}", "INTERNAL", requestId=rid)]}
    # A request that failed unexpectedly wrote no audit event, so it returns no data either.
    response: dict[str, Any] = {"data": None if unexpected else result.data}
    if formatted:
        response["errors"] = formatted
    return response
