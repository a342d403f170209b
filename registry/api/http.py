"""The /graphql endpoint: authenticate, bound the request, execute in one transaction, answer.

Nothing is executed for a request without a valid bearer token (HTTP 401), a body that is not
JSON (415), over the size limit (413) or too slow to arrive (408), a batch over the batch
limit, or a document that is not trusted (in trusted-documents mode, api.documents); a request
whose execution hit an unexpected error writes nothing. A worker running and queueing all it
may answers OVERLOADED, and a database that is gone or does not answer in time UNAVAILABLE
(both 503 with Retry-After, api.admission and db.health), in bounded time. The other limits are checked by the schema before execution (api.limits).
A read the compiler has learned runs as one statement on a plain driver connection, which writes
the audit event too unless the read is large (api.compiler); everything else through the
resolvers. Either way the audit events are written in the same transaction, and the answer is
sent only once they are committed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import Response

from registry.access.identity import InvalidToken
from registry.access.principal import Principal
from registry.access.purpose import PURPOSES
from registry.api.admission import Overloaded
from registry.api.compiler import Bound
from registry.api.context import Context
from registry.api.documents import Refused
from registry.api.errors import deduplicate, error, format_error
from registry.api.operation_name import executed_operation
from registry.api.services import RequestServices
from registry.audit import trail
from registry.db.failures import NOT_CHANGED, DatabaseUnavailable, log_failure, unreachable
from registry.domain import outbox

log = logging.getLogger("registry.http")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")  # a GraphQL name: anything else is not logged

PATH = "/graphql"
JSON = b"application/json"
# GraphiQL and its assets ship in the package (app mounts them at /graphiql): no CDN, no internet.
GRAPHIQL_ASSETS = Path(__file__).parent / "static" / "graphiql"
GRAPHIQL_PAGE = (GRAPHIQL_ASSETS / "index.html").read_bytes()


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


class Answer(Exception):
    """An HTTP answer that replaces the operations' results (401, 405, 408, 413, 415, 503, a
    malformed body)."""

    def __init__(
        self, status: int, message: str, code: str, headers: dict[str, str] | None = None, **extensions: Any
    ) -> None:
        super().__init__(message)
        self.status, self.headers, self.code = status, headers or {}, code
        self.body = orjson.dumps({"errors": [error(message, code, **extensions)]})


def unavailable(code: str, message: str, rid: str, retry_after: int) -> Answer:
    """503 for a request the service could not serve now: nothing it knows of was changed."""
    return Answer(503, message, code, {"Retry-After": str(retry_after)}, requestId=rid, retryAfter=retry_after)


def internal(rid: str) -> Answer:
    return Answer(500, f"Internal error; quote request id {rid} to the registry's operators", "INTERNAL", requestId=rid)


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
        services: RequestServices = scope["app"].state.services
        if scope["method"] == "GET" and "text/html" in headers.get("accept", "") and services.limits.introspection:
            await _send(send, 200, GRAPHIQL_PAGE, b"text/html; charset=utf-8")  # where introspection is on
            return
        rid = scope.setdefault("state", {}).setdefault("request_id", uuid.uuid4().hex)
        try:
            status, body, extra = 200, await _answer(scope, receive, headers, services, rid), {}
        except Answer as answer:
            status, body, extra = answer.status, answer.body, answer.headers
            _note(scope)["code"] = answer.code
        except Exception as exc:  # noqa: BLE001 - the contract holds for what nobody foresaw too
            log_failure(log, "request failed", exc, rid)
            failed = internal(rid)
            status, body, extra = failed.status, failed.body, failed.headers
            _note(scope)["code"] = failed.code
        await _send(send, status, body, JSON, extra)


async def _send(send: Any, status: int, body: bytes, content_type: bytes, extra: dict[str, str] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _note(scope: dict) -> dict:
    """What app.RequestLog writes in the request's log line (a throwaway dict when it is absent)."""
    return scope.get("state", {}).get("log", {})


def _logged(note: dict, operation: Any, answer: dict) -> dict:
    """`answer`, its operation's name (the one executed, from the document when the client sent
    none) and code noted for the request's log line (the last one's, in a batch)."""
    name = note.pop("executed", None) or (operation.get("operationName") if isinstance(operation, dict) else None)
    note["operation"] = name if isinstance(name, str) and _NAME.fullmatch(name) else None
    errors = answer.get("errors")
    note["code"] = (errors[0].get("extensions") or {}).get("code", "ERROR") if errors else "OK"
    note.setdefault("compiled", False)  # set by _execute when the operation ran compiled
    return answer


async def _answer(scope: dict, receive: Any, headers: dict[str, str], services: RequestServices, rid: str) -> bytes:
    if scope["method"] != "POST":
        raise Answer(405, "send GraphQL operations with POST", "BAD_USER_INPUT", {"Allow": "POST"})
    principal = await _authenticate(headers.get("authorization", ""), services)
    note = _note(scope)
    purpose = headers.get("registry-purpose")  # free text from the client: logged only if it is a known code
    note.update(subject=principal.id, roles=sorted(principal.roles), purpose=purpose if purpose in PURPOSES else None)
    if headers.get("content-type", "").partition(";")[0].strip().lower() != "application/json":
        raise Answer(415, "send the GraphQL request as Content-Type: application/json", "BAD_USER_INPUT")
    settings = services.settings
    body = await _read_body(receive, headers.get("content-length"), services.limits.max_body_bytes,
                            settings.body_timeout_seconds)
    try:
        async with services.admission.turn():
            await bind_agency(principal, services, rid)
            return await _operations(body, headers, services, principal, rid, note)
    except Overloaded:
        message = "the service is at capacity; retry after the delay given"
        raise unavailable("OVERLOADED", message, rid, settings.retry_after_seconds) from None
    except DatabaseUnavailable as exc:
        raise unavailable("UNAVAILABLE", str(exc), rid, settings.retry_after_seconds) from None


async def _operations(
    body: Any, headers: dict[str, str], services: RequestServices, principal: Principal, rid: str, note: dict
) -> bytes:
    limits = services.limits
    if isinstance(body, list):
        if not body:
            return orjson.dumps({"errors": [error("the batch is empty", "BAD_USER_INPUT")]})
        if len(body) > limits.max_batch:  # refused whole, before any operation runs
            message = f"a batch holds at most {limits.max_batch} operations; this one has {len(body)}"
            return orjson.dumps(
                {"errors": [error(message, "QUERY_TOO_COMPLEX", limit="batch", max=limits.max_batch, found=len(body))]}
            )
        return orjson.dumps([_logged(note, op, await _execute(headers, services, principal, op, rid, note)) for op in body])
    return orjson.dumps(_logged(note, body, await _execute(headers, services, principal, body, rid, note)))


async def _authenticate(header: str, services: RequestServices) -> Principal:
    """The token's principal: verified against the issuer's keys, no database involved."""
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


async def bind_agency(principal: Principal, services: RequestServices, rid: str) -> None:
    """Refuse a genuine token whose roles its agency may not hold (401, audited). The agencies'
    kinds are cached; reading them, or auditing a refusal, is bounded like any database work."""
    binding, health = services.binding, services.health
    try:
        check = binding.refusal(principal)
        refusal = await (check if binding.known(principal) else health.within(check, health.timeout * 2))
        if refusal is None:
            return
        log.info("token refused: %s", refusal)
        await health.within(_record_refusal(services, principal, rid, refusal), health.timeout * 2)
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        if not unreachable(exc):
            raise
        health.suspect()
        raise DatabaseUnavailable(NOT_CHANGED) from None
    raise Answer(401, f"token refused: {refusal}", "UNAUTHENTICATED", {"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def _record_refusal(services: RequestServices, principal: Principal, rid: str, refusal: str) -> None:
    """The DPO sees who tried."""
    async with services.sessions.begin() as session:
        detail = {"refusals": [{"code": "UNAUTHENTICATED", "reason": refusal}]}
        await trail.record(session, trail.Actor(principal, rid), "access.refused", outcome="refused", detail=detail)


def _too_large(max_bytes: int) -> Answer:
    return Answer(413, f"request body larger than {max_bytes} bytes", "QUERY_TOO_COMPLEX")


async def _read_body(receive: Any, declared: str | None, max_bytes: int, timeout: float) -> Any:
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    raw = b""
    try:
        async with asyncio.timeout(timeout):  # a client that dribbles its body holds nothing long
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Answer(400, "the client went away", "BAD_USER_INPUT")
                raw += message.get("body", b"")
                if len(raw) > max_bytes:
                    raise _too_large(max_bytes)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise Answer(408, f"the body did not arrive within {timeout:g} s", "BAD_USER_INPUT",
                     {"Connection": "close"}) from None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Answer(400, "the body is not valid JSON", "BAD_USER_INPUT") from None
    if not isinstance(body, (dict, list)):
        raise Answer(400, "the body must be a GraphQL request object", "BAD_USER_INPUT")
    return body


async def _resolve(services: RequestServices, ctx: Context, query: str, operation_name: str | None, variables: dict) -> tuple:
    """Data and errors from the resolvers; a read they ran within the limits is then compiled."""
    result = await services.schema.execute(
        query, variable_values=variables, context_value=ctx, operation_name=operation_name
    )
    errors = result.errors or []
    if all(err.path for err in errors):  # the document passed validation and the limits
        services.compiler.learn(query, operation_name, ctx)
    return result.data, errors


async def _execute(
    headers: dict[str, str], services: RequestServices, principal: Principal, op: Any, rid: str, note: dict
) -> dict[str, Any]:
    """One operation, one transaction: committed only if nothing unexpected happened, and within
    the request deadline (DatabaseUnavailable past it, or as soon as the database is found down)."""
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

    def context() -> Context:
        return Context(
            principal=principal,
            policy=services.policy,
            session=None,
            request_id=rid,
            purpose=headers.get("registry-purpose"),
            justification=headers.get("registry-justification"),
            lookups=services.lookups,
            operation=executed_operation(query, operation_name),
        )

    ctx = context()
    note["executed"] = ctx.operation
    deadline = services.settings.request_deadline_seconds
    try:
        compiled = services.compiler.bind(query, operation_name, ctx, variables or {})
        if compiled is None:
            work = _run_resolvers(services, ctx, query, operation_name, variables or {})
            return await services.health.within(work, deadline)
        note["compiled"] = True
        async with services.health.deadline(deadline):  # a driver connection cleans up without waiting
            try:
                return await _run_compiled(services, ctx, compiled)
            except _ConnectionLost:  # before any answer came back: once more, on a new connection
                services.health.suspect()
                return await _run_compiled(services, context(), compiled, fresh=True)
    except (DatabaseUnavailable, _ConnectionLost):
        raise
    except PoolTimeout:
        raise Overloaded("no database connection free in time") from None
    except Exception as exc:
        if not unreachable(exc):  # e.g. no connection could be made: the database is gone
            raise
        services.health.suspect()
        raise DatabaseUnavailable(NOT_CHANGED) from None


class _ConnectionLost(Exception):
    """A compiled read's connection failed under it; the read can be tried again."""


def _lost(errors: list) -> bool:
    """Whether an error says the database, not the request, failed (then it is not reported as is)."""
    return any(err.original_error is not None and unreachable(err.original_error) for err in errors)


async def _run_compiled(services: RequestServices, ctx: Context, compiled: Bound, *, fresh: bool = False) -> dict[str, Any]:
    """One statement (and the audit insert), on a plain driver connection."""
    async with services.reads.acquire(fresh=fresh) as connection:
        transaction = _OneStatement() if compiled.one_statement else connection.transaction()
        try:
            await transaction.start()
            data, errors = await compiled.run(ctx, connection)
        except Exception as exc:  # noqa: BLE001 - reported like a resolver's failure
            data, errors = None, [GraphQLError(str(exc), original_error=exc)]
        if _lost(errors):  # leaving by an exception: the pool closes this connection
            if fresh:
                raise DatabaseUnavailable(NOT_CHANGED)
            raise _ConnectionLost()
        return await _finish(ctx, connection, transaction, data, errors)


async def _run_resolvers(services: RequestServices, ctx: Context, query: str, operation_name: str | None,
                         variables: dict) -> dict[str, Any]:
    """Through the resolvers, on an ORM session. A session whose database failed or did not
    answer in time is discarded in the background: closing it could wait on that database."""
    session = services.sessions()
    try:
        ctx.session = session
        data, errors = await _resolve(services, ctx, query, operation_name, variables)
        if _lost(errors):
            services.health.suspect()
            raise DatabaseUnavailable(NOT_CHANGED)
        response = await _finish(ctx, session, session, data, errors)
    except BaseException:
        _discard(session)
        raise
    await session.close()
    return response


_discarding: set[asyncio.Task] = set()


def _discard(session: Any) -> None:
    task = asyncio.get_running_loop().create_task(session.invalidate())
    _discarding.add(task)
    task.add_done_callback(_discarding.discard)


COMMIT_UNKNOWN = (
    "the database failed while the change was being committed: read the record back before retrying"
)


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
                duplicates=ctx.duplicates_refused,
                searches=ctx.searches,
                errors=formatted,
                break_glass=ctx.break_glass,
            )
            await transaction.commit()
    except Exception as exc:  # audit or commit failed: nothing was written, nothing is returned
        if unreachable(exc):
            raise DatabaseUnavailable(COMMIT_UNKNOWN) from None
        log_failure(log, "audit write or commit failed", exc, rid)
        await transaction.rollback()
        return {"data": None, "errors": [error(f"Internal error; quote request id {rid}", "INTERNAL", requestId=rid)]}
    # A request that failed unexpectedly wrote no audit event, so it returns no data either.
    response: dict[str, Any] = {"data": None if unexpected else data}
    if formatted:
        response["errors"] = formatted
    return response
