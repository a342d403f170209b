"""Starlette app factory: routes, middleware, and a lifespan that owns engine, keys and policy."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, MutableMapping

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.access.identity import DevelopmentIssuer, TokenVerifier, build_verifier
from registry.access.policy import POLICY_PATH, Policy
from registry.api.admission import Admission
from registry.api.compiler import Compiler
from registry.api.http import GraphQLRoute, internal, json_response
from registry.api.documents import TrustedDocuments
from registry.api.limits import QueryLimits, RateLimiter
from registry.api.schema import RegistrySchema, build_schema
from registry.api.services import RequestServices
from registry.api.strawberry_internals import graphql_schema
from registry.audit.chain import run_sealer
from registry.config import Settings, get_settings
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
    dev_issuer: DevelopmentIssuer | None
    lookups: RateLimiter
    limits: QueryLimits
    documents: TrustedDocuments
    compiler: Compiler
    reads: ReadPool
    health: DatabaseHealth
    admission: Admission
    migration_heads: str


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


async def dev_discovery(request: Request) -> Response:
    issuer = request.app.state.services.dev_issuer
    return json_response(issuer.discovery()) if issuer else json_response({}, 404)


async def dev_jwks(request: Request) -> Response:
    issuer = request.app.state.services.dev_issuer
    return json_response(issuer.jwks()) if issuer else json_response({}, 404)


class RequestLog:
    """Gives every request an id (echoed in X-Request-Id) and logs one line: no bodies, no tokens.
    It is also the last resort: an exception that escaped everything inside becomes a JSON
    INTERNAL answer with the request id, never the ASGI server's bare 500."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
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
            if log.isEnabledFor(logging.INFO):
                ms = round((time.perf_counter() - started) * 1000, 1)
                line = {"request_id": rid, "method": scope["method"], "path": scope["path"], "status": status, "ms": ms}
                log.info(orjson.dumps(line).decode())


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
                    dev_issuer=dev_issuer,
                    lookups=RateLimiter(settings.lookups_per_minute),
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
                # The sealer has its own connection: it never waits for, nor delays, a request.
                sealer_engine = create_engine(url, settings, pool_size=1)
                sealer = asyncio.create_task(run_sealer(sealer_engine, settings.audit_seal_interval_seconds))
                # What start-up loaded lives as long as the process: kept out of the collector's
                # sight, a full collection no longer walks it (it stalled every request for 0.2 s).
                gc.collect()
                gc.freeze()
                try:
                    yield
                finally:
                    gc.unfreeze()
                    sealer.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sealer
                    await sealer_engine.dispose()
                    await services.health.close()
                    await services.reads.close()
            finally:
                await engine.dispose()
                if embedded:
                    embedded.stop()

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/dev-issuer/.well-known/openid-configuration", dev_discovery),
            Route("/dev-issuer/jwks.json", dev_jwks),
        ],
        middleware=[Middleware(RequestLog), Middleware(GraphQLRoute)],
        lifespan=lifespan,
    )
