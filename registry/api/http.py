"""The /graphql endpoint: authenticate, bound the request, execute in one transaction, answer.

Nothing is executed for a request without a valid bearer token (HTTP 401), a body over the
size limit (HTTP 413), a batch over the batch limit, or a document that is not trusted (in
trusted-documents mode, api.documents); a request whose execution hit an unexpected error
writes nothing. The other limits are checked by the schema before execution (api.limits).
A read the compiler has learned runs as one statement on a plain driver connection that also
writes its audit event (api.compiler); everything else through the resolvers. Either way the
audit events are written in the same transaction, and the answer is sent only once they are
committed.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.http.ides import get_graphql_ide_html

from registry.access.identity import InvalidToken
from registry.api.context import Context
from registry.api.documents import Refused
from registry.api.errors import deduplicate, error, format_error
from registry.audit import trail

log = logging.getLogger("registry.http")


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


def _errors(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"errors": [error(message, code)]}, status, headers)


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex


async def graphql_endpoint(request: Request) -> Response:
    services = request.app.state.services
    limits = services.limits
    if request.method == "GET":
        if "text/html" in request.headers.get("accept", "") and limits.introspection:  # GraphiQL: development
            return HTMLResponse(get_graphql_ide_html())
        return _errors(405, "send GraphQL operations with POST", "BAD_USER_INPUT", {"Allow": "POST"})

    principal = await _authenticate(request, services)
    if isinstance(principal, Response):
        return principal

    body = await _read_body(request, limits.max_body_bytes)
    if isinstance(body, Response):
        return body
    rid = request_id(request)
    if isinstance(body, list):
        if not body:
            return json_response({"errors": [error("the batch is empty", "BAD_USER_INPUT")]})
        if len(body) > limits.max_batch:  # refused whole, before any operation runs
            message = f"a batch holds at most {limits.max_batch} operations; this one has {len(body)}"
            return json_response(
                {"errors": [error(message, "QUERY_TOO_COMPLEX", limit="batch", max=limits.max_batch, found=len(body))]}
            )
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


async def _read_body(request: Request, max_bytes: int):
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        return _errors(413, f"request body larger than {max_bytes} bytes", "QUERY_TOO_COMPLEX")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            return _errors(413, f"request body larger than {max_bytes} bytes", "QUERY_TOO_COMPLEX")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _errors(400, "the body is not valid JSON", "BAD_USER_INPUT")
    if not isinstance(body, (dict, list)):
        return _errors(400, "the body must be a GraphQL request object", "BAD_USER_INPUT")
    return body


async def _resolve(services: Any, ctx: Context, query: str, operation_name: str | None, variables: dict) -> tuple:
    """Data and errors from the resolvers; a read they ran within the limits is then compiled."""
    result = await services.schema.execute(
        query, variable_values=variables, context_value=ctx, operation_name=operation_name
    )
    errors = result.errors or []
    if all(err.path for err in errors):  # the document passed validation and the limits
        services.compiler.learn(query, operation_name, ctx)
    return result.data, errors


async def _execute(request: Request, services: Any, principal: Any, op: Any, rid: str) -> dict[str, Any]:
    """One operation, one transaction: committed only if nothing unexpected happened."""
    if not isinstance(op, dict):
        return {"errors": [error("the request has no query", "BAD_USER_INPUT")]}
    try:
        query = services.documents.query(op)
    except Refused as refused:  # not executed: no transaction, nothing read
        return {"errors": [refused.body]}
    variables = op.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return {"errors": [error("variables must be an object", "BAD_USER_INPUT")]}
    operation_name = op.get("operationName") if isinstance(op.get("operationName"), str) else None
    ctx = Context(
        principal=principal,
        policy=services.policy,
        session=None,
        request_id=rid,
        purpose=request.headers.get("registry-purpose"),
        justification=request.headers.get("registry-justification"),
        lookups=services.lookups,
        operation=operation_name,
    )
    compiled = services.compiler.bind(query, operation_name, ctx, variables or {})
    if compiled is not None:  # one statement that writes its records.consulted event, on a driver connection
        async with services.reads.acquire() as connection:
            # Refusals are events of their own, written after the read: then both in one transaction.
            transaction = connection.transaction() if compiled.plan.refuses else _OneStatement()
            await transaction.start()
            try:
                data, errors = await compiled.run(ctx, connection)
            except Exception as exc:  # noqa: BLE001 - reported like a resolver's failure
                data, errors = None, [GraphQLError(str(exc), original_error=exc)]
            return await _finish(ctx, connection, transaction, data, errors)
    async with services.sessions() as session:
        ctx.session = session
        data, errors = await _resolve(services, ctx, query, operation_name, variables or {})
        return await _finish(ctx, session, session, data, errors)


class _OneStatement:
    """The transaction of a request that is a single statement: PostgreSQL's implicit one."""

    async def start(self) -> None:
        pass

    async def commit(self) -> None:
        pass

    async def rollback(self) -> None:
        pass


async def _finish(ctx: Context, statements: Any, transaction: Any, data: Any, errors: list) -> dict[str, Any]:
    """Write the audit events and commit, or roll back: the response only if the events are in."""
    rid = ctx.request_id
    formatted, unexpected = [], False
    for err in errors:
        out, bad = format_error(err, rid)
        formatted.append(out)
        unexpected |= bad
    formatted = deduplicate(formatted)
    try:
        if unexpected:
            await transaction.rollback()
        else:
            await trail.record_request(
                statements,
                ctx.actor(),
                disclosure=ctx.disclosure,
                changes=ctx.changes,
                lookups=ctx.lookups_answered,
                errors=formatted,
                break_glass=ctx.break_glass,
            )
            await transaction.commit()
    except Exception:  # audit or commit failed: nothing was written, nothing is returned
        log.exception("audit write or commit failed (request %s)", rid)
        await transaction.rollback()
        return {"data": None, "errors": [error(f"Internal error; quote request id {rid}", "INTERNAL", requestId=rid)]}
    # A request that failed unexpectedly wrote no audit event, so it returns no data either.
    response: dict[str, Any] = {"data": None if unexpected else data}
    if formatted:
        response["errors"] = formatted
    return response
