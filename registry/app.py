"""Starlette app factory: routes, middleware, and a lifespan that owns engine, keys and policy."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, MutableMapping

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from registry import logs, metrics
from registry.access.agency_binding import AgencyBinding
from registry.access.identity import DevelopmentIssuer, TokenVerifier, build_verifier
from registry.access.policy import POLICY_PATH, Policy
from registry.api.admission import Admission
from registry.api.compiler import Compiler
from registry.api.http import GRAPHIQL_ASSETS, GraphQLRoute, internal, json_response
from registry.api.documents import TrustedDocuments
from registry.api.limits import QueryLimits
from registry.api.schema import RegistrySchema, build_schema
from registry.api import subscriptions
from registry.api.services import RequestServices
from registry.api.strawberry_internals import graphql_schema
from registry.api.websocket import graphql_websocket
from registry.audit.chain import run_sealer, seal_status
from registry.audit.checkpoint import Periodic
from registry.config import Settings, get_settings
from registry.domain.budget import RateLimiter
from registry.db.engine import ReadPool, connector, create_engine, create_read_pool, create_sessionmaker
from registry.db.failures import log_failure
from registry.db.health import DatabaseHealth
from registry.db.migrate import migration_heads, upgrade

log = logging.getLogger("registry.app")


@dataclass
class Services:
    """What every request shares; built once per process by the lifespan."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    policy: Policy
    schema: RegistrySchema
    verifier: TokenVerifier
    binding: AgencyBinding
    dev_issuer: DevelopmentIssuer | None
    lookups: RateLimiter
    limits: QueryLimits
    documents: TrustedDocuments
    compiler: Compiler
    reads: ReadPool
    health: DatabaseHealth
    admission: Admission
    migration_heads: str
    events: subscriptions.Hub | None = None  # subscriptions over WebSocket, fed by the outbox listener


_SERVES_REQUESTS: type[RequestServices] = Services  # mypy checks that api.http gets what it uses


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


READY_TIMEOUT = 0.5  # seconds: a probe answers within one second, whatever the database does
_CURRENT = "SELECT string_agg(version_num, ',' ORDER BY version_num) FROM alembic_version"


async def readyz(request: Request) -> Response:
    """Ready when the database answers within the probe's time and its schema is current; never
    waits on the request pools (they may be full of requests waiting on a frozen database)."""
    services: Services = request.app.state.services
    try:
        if not services.health.available:
            raise TimeoutError
        current = await services.health.fetchval(_CURRENT, min(READY_TIMEOUT, services.health.timeout))
    except Exception:  # noqa: BLE001 - any failure means not ready
        return json_response({"status": "unavailable", "database": "unreachable"}, 503)
    if current != services.migration_heads:
        return json_response({"status": "unavailable", "database": "migrations pending"}, 503)
    return json_response({"status": "ready"})


async def render_metrics(services: Services) -> bytes:
    """Every worker's metrics, with the audit trail's figures when the database answers."""
    async def read_status():
        async with services.engine.connect() as conn:
            return await seal_status(conn)

    try:  # never longer than the database timeout: a scrape must not hang on a frozen database
        status = await services.health.within(read_status(), services.health.timeout)
    except Exception:  # noqa: BLE001 - the process's own figures are still worth a scrape
        log.warning("metrics: the audit trail's figures could not be read")
        status = None
    return metrics.exposition(status)


async def metrics_endpoint(request: Request) -> Response:
    return Response(await render_metrics(request.app.state.services), media_type=metrics.CONTENT_TYPE)


async def dev_discovery(request: Request) -> Response:
    issuer = request.app.state.services.dev_issuer
    return json_response(issuer.discovery()) if issuer else json_response({}, 404)


async def dev_jwks(request: Request) -> Response:
    issuer = request.app.state.services.dev_issuer
    return json_response(issuer.jwks()) if issuer else json_response({}, 404)


class RequestLog:
    """Gives every request an id (echoed in X-Request-Id, carried by every record logged meanwhile)
    and logs one line: who by pseudonymous subject, roles, purpose, operation, outcome, duration.
    No bodies, no tokens, no names, no client address. It is also the last resort: an exception
    that escaped everything inside becomes a JSON INTERNAL answer with the request id, never the
    ASGI server's bare 500."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        note: dict[str, Any] = {}  # filled in by the GraphQL endpoint (api.http)
        state = scope.setdefault("state", {})
        state["request_id"], state["log"] = rid, note
        bound = logs.bind_request(rid)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - see the class docstring
            log_failure(log, "request failed", exc, rid)
            if status:  # the answer had begun: the server can only close the connection
                raise
            answer = internal(rid)
            await Response(answer.body, answer.status, media_type="application/json")(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            if "code" in note:  # a GraphQL request
                metrics.observe_request(note, elapsed)
            if log.isEnabledFor(logging.INFO):
                ms = round(elapsed * 1000, 1)
                logs.request(method=scope["method"], path=scope["path"], status=status, duration_ms=ms, **note)
            logs.unbind_request(bound)


def cors_options(origins: list[str]) -> dict[str, Any]:
    """What a browser front-end on one of `origins` may send: bearer tokens in a header, never cookies."""
    return {
        "allow_origins": origins,
        "allow_methods": ["GET", "POST"],
        "allow_headers": ["Authorization", "Content-Type", "Registry-Purpose", "Registry-Justification"],
        "expose_headers": ["X-Request-Id", "Retry-After"],
        "allow_credentials": False,
        "max_age": 600,
    }


def load_access(settings: Settings) -> tuple[Policy, RegistrySchema]:
    """The policy and the schema it is checked against; PolicyError names the culprit."""
    policy = Policy.load(settings.policy_path or POLICY_PATH)
    return policy, build_schema(policy, QueryLimits.from_settings(settings))


def create_app(settings: Settings | None = None, *, migrate: bool | None = None) -> Starlette:
    """The ASGI app. Without a configured database it runs on the embedded PostgreSQL."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # First, before any resource: a policy that does not match the schema stops the start.
        policy, schema = load_access(settings)
        documents = TrustedDocuments.load(settings.operations_dir, enforce=settings.trusted_documents_only)
        embedded = None
        url = settings.database_url
        if not url:
            from registry.db.server import embedded_database

            embedded, url = await embedded_database(settings)
        if migrate if migrate is not None else not settings.production:
            owner = create_engine(url, settings, as_owner=True)
            try:
                await upgrade(owner)
            finally:
                await owner.dispose()
        engine = create_engine(url, settings)
        async with httpx.AsyncClient(timeout=10) as http_client:
            try:
                verifier, dev_issuer = await build_verifier(settings, http_client)
                limits = QueryLimits.from_settings(settings)
                app.state.services = Services(
                    settings=settings,
                    engine=engine,
                    sessions=create_sessionmaker(engine),
                    policy=policy,
                    schema=schema,
                    verifier=verifier,
                    binding=AgencyBinding(policy, engine),
                    dev_issuer=dev_issuer,
                    lookups=RateLimiter(create_engine(url, settings, pool_size=2), settings.lookups_per_minute),
                    limits=limits,
                    documents=documents,
                    compiler=Compiler(graphql_schema(schema), limits, enabled=settings.compile_queries),
                    reads=await create_read_pool(url, settings),
                    health=DatabaseHealth(connector(url, settings), settings.database_timeout_seconds),
                    admission=Admission(
                        settings.running_requests, settings.waiting_requests, settings.queue_timeout_seconds
                    ),
                    migration_heads=migration_heads(),
                )
                services = app.state.services
                services.health.on_down(services.reads.clear)
                services.health.start()
                services.events = await subscriptions.start(services, url)
                # The sealer has its own connection: it never waits for, nor delays, a request.
                sealer_engine = create_engine(url, settings, pool_size=1)
                sealer = asyncio.create_task(
                    run_sealer(sealer_engine, settings.audit_seal_interval_seconds, Periodic.from_settings(settings))
                )
                pools = asyncio.create_task(metrics.sample_pools(app.state.services))
                metrics_listener = None
                if settings.metrics_port:
                    render = functools.partial(render_metrics, app.state.services)
                    metrics_listener = await metrics.listen(settings.host, settings.metrics_port, render)
                # What start-up loaded lives as long as the process: kept out of the collector's
                # sight, a full collection no longer walks it (it stalled every request for 0.2 s).
                gc.collect()
                gc.freeze()
                try:
                    yield
                finally:
                    gc.unfreeze()
                    await services.events.listener.stop()
                    if metrics_listener:
                        metrics_listener.close()
                    for task in (sealer, pools):
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                    metrics.worker_stopped()
                    await sealer_engine.dispose()
                    await services.health.close()
                    await services.reads.close()
                    await services.lookups.engine.dispose()
            finally:
                await engine.dispose()
                if embedded:
                    embedded.stop()

    metrics_route = [] if settings.metrics_port else [Route("/metrics", metrics_endpoint)]
    graphiql = [Mount("/graphiql", StaticFiles(directory=GRAPHIQL_ASSETS))] if settings.introspection_allowed else []
    # Only when origins are configured: without them the middleware is not there at all.
    cors = [Middleware(CORSMiddleware, **cors_options(settings.cors_origin_list))] if settings.cors_origin_list else []
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/dev-issuer/.well-known/openid-configuration", dev_discovery),
            Route("/dev-issuer/jwks.json", dev_jwks),
            *metrics_route,
            *graphiql,
            WebSocketRoute("/graphql", graphql_websocket),  # POST /graphql is api.http's, before the router
        ],
        middleware=[*cors, Middleware(RequestLog), Middleware(GraphQLRoute)],
        lifespan=lifespan,
    )
