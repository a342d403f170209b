"""The /graphql endpoint: authenticate, bound the request, execute in one transaction, answer.

Nothing is executed for a request without a valid bearer token (HTTP 401), a body over the
size limit (HTTP 413), a batch over the batch limit, or a document that is not trusted (in
trusted-documents mode, api.documents); a request whose execution hit an unexpected error
writes nothing. The other limits are checked by the schema before execution (api.limits).
A read the compiler has learned runs as one statement on a plain driver connection, which writes
the audit event too unless the read is large (api.compiler); everything else through the
resolvers. Either way the audit events are written in the same transaction, and the answer is
sent only once they are committed.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.responses import Response
from strawberry.http.ides import get_graphql_ide_html

from registry.access.identity import InvalidToken
from registry.api.context import Context
from registry.api.documents import Refused
from registry.api.errors import deduplicate, error, format_error
from registry.audit import trail
from registry.domain import outbox

log = logging.getLogger("registry.http")

PATH = "/graphql"
JSON = b"application/json"


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


class Answer(Exception):
    """An HTTP answer decided before any operation runs (401, 405, 413, a malformed body)."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}
        self.body = orjson.dumps({"errors": [error(message, code)]})


class GraphQLRoute:
    """POST /graphql as a plain ASGI app, in front of the framework's router: every client's
    requests take this path, and the router's request and response objects cost more than
    the rest of a compiled read in Python. Other paths go on to `app`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        services = scope["app"].state.services
        if scope["method"] == "GET" and "text/html" in headers.get("accept", "") and services.limits.introspection:
            await _send(send, 200, get_graphql_ide_html().encode(), b"text/html; charset=utf-8")  # development only
            return
        try:
            status, body, extra = 200, await _answer(scope, receive, headers, services), {}
        except Answer as answer:
            status, body, extra = answer.status, answer.body, answer.headers
        await _send(send, status, body, JSON, extra)


async def _send(send: Any, status: int, body: bytes, content_type: bytes, extra: dict[str, str] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _answer(scope: dict, receive: Any, headers: dict[str, str], services: Any) -> bytes:
    limits = services.limits
    if scope["method"] != "POST":
        raise Answer(405, "send GraphQL operations with POST", "BAD_USER_INPUT", {"Allow": "POST"})
    principal = await _authenticate(headers.get("authorization", ""), services)
    body = await _read_body(receive, headers.get("content-length"), limits.max_body_bytes)
    rid = scope.get("state", {}).get("request_id") or uuid.uuid4().hex
    if isinstance(body, list):
        if not body:
            return orjson.dumps({"errors": [error("the batch is empty", "BAD_USER_INPUT")]})
        if len(body) > limits.max_batch:  # refused whole, before any operation runs
            message = f"a batch holds at most {limits.max_batch} operations; this one has {len(body)}"
            return orjson.dumps(
                {"errors": [error(message, "QUERY_TOO_COMPLEX", limit="batch", max=limits.max_batch, found=len(body))]}
            )
        return orjson.dumps([await _execute(headers, services, principal, op, rid) for op in body])
    return orjson.dumps(await _execute(headers, services, principal, body, rid))


async def _authenticate(header: str, services: Any):
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        challenge = {"WWW-Authenticate": 'Bearer realm="registry"'}
        raise Answer(401, "a bearer token is required", "UNAUTHENTICATED", challenge)
    try:
        return await services.verifier.verify(token.strip())
    except InvalidToken as exc:
        log.info("token refused: %s", exc)
        raise Answer(
            401, f"invalid token: {exc}", "UNAUTHENTICATED", {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None


def _too_large(max_bytes: int) -> Answer:
    return Answer(413, f"request body larger than {max_bytes} bytes", "QUERY_TOO_COMPLEX")


async def _read_body(receive: Any, declared: str | None, max_bytes: int) -> Any:
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    raw = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Answer(400, "the client went away", "BAD_USER_INPUT")
        raw += message.get("body", b"")
        if len(raw) > max_bytes:
            raise _too_large(max_bytes)
        if not message.get("more_body", False):
            break
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Answer(400, "the body is not valid JSON", "BAD_USER_INPUT") from None
    if not isinstance(body, (dict, list)):
        raise Answer(400, "the body must be a GraphQL request object", "BAD_USER_INPUT")
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


async def _execute(headers: dict[str, str], services: Any, principal: Any, op: Any, rid: str) -> dict[str, Any]:
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
        purpose=headers.get("registry-purpose"),
        justification=headers.get("registry-justification"),
        lookups=services.lookups,
        operation=operation_name,
    )
    compiled = services.compiler.bind(query, operation_name, ctx, variables or {})
    if compiled is not None:  # one statement (and the audit insert), on a plain driver connection
        async with services.reads.acquire() as connection:
            transaction = _OneStatement() if compiled.one_statement else connection.transaction()
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
    """The transaction of a request that is one statement: PostgreSQL's implicit one."""

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
            await outbox.publish(statements, ctx.changes)  # events of the changes: last, it orders the commits
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
