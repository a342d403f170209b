"""The `registry` command: serve, migrate, demo, token, audit verify/keygen/checkpoint, export-subject, retention,
export-schema, trusted-documents."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import asyncpg

from registry.config import Settings, get_settings

log = logging.getLogger("registry")


class Misconfigured(Exception):
    """A setting or option that stops a command before it starts anything: said in one line."""


def _configure_logging(settings: Settings) -> None:
    from registry import logs

    logs.configure(settings.log_level)


def _settings() -> Settings:
    """The settings from the environment; an invalid value is one line naming its variable."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return get_settings()
    except SettingsError as exc:  # a value that is not even parsed, such as a list that is not JSON
        raise Misconfigured(f"invalid setting: {exc}") from None
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "REGISTRY_" + "_".join(str(part) for part in err["loc"][:1]).upper()
            problems.append(f"{name}={err.get('input')!r}: {err['msg']}")
        raise Misconfigured("invalid setting " + "; ".join(problems)) from None


def _check_data_dir(settings: Settings) -> None:
    """The embedded database's directory must be a directory this process can write to."""
    where = Path(settings.data_dir)
    try:
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError as exc:
        raise Misconfigured(f"REGISTRY_DATA_DIR={str(where)!r} is not a writable directory: {exc.strerror}") from None


async def _check_database(url: str) -> None:
    """Connect once, briefly, so an unreachable server is one line rather than a traceback."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from registry.db.engine import sync_url

    try:
        target = make_url(sync_url(url))
    except ArgumentError:
        raise Misconfigured("REGISTRY_DATABASE_URL is not a database URL (postgresql://user@host:port/name)") from None
    where = f"{target.host or 'localhost'}:{target.port or 5432}/{target.database or ''}"
    try:
        conn = await asyncpg.connect(target.render_as_string(hide_password=False), timeout=5)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise Misconfigured(f"cannot connect to the database at {where} (REGISTRY_DATABASE_URL): {reason}") from None
    await conn.close()


async def _database_url(settings: Settings, *, exclusive: bool = False):
    """The configured database, checked reachable; or the embedded one, started (with the server to
    stop; `exclusive`: refused when another live process owns it)."""
    from registry.db.embedded import EmbeddedInUse
    from registry.db.server import embedded_database

    if settings.database_url:
        await _check_database(settings.database_url)
        return None, settings.database_url
    _check_data_dir(settings)
    try:
        return await embedded_database(settings, exclusive=exclusive)
    except EmbeddedInUse as exc:
        raise Misconfigured(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any failure to start it is told in one line
        log.debug("embedded PostgreSQL did not start", exc_info=True)
        pgdata = Path(settings.data_dir).resolve() / "pgdata"
        raise Misconfigured(
            f"the embedded PostgreSQL in {pgdata} did not start ({type(exc).__name__}); see {pgdata / 'server.log'}"
        ) from None


async def _with_database(settings: Settings, work) -> None:
    """Run `work(engine)` as the database owner on the configured or the embedded database."""
    from registry.db.engine import create_engine

    embedded, url = await _database_url(settings)
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
    # The issuer the server names itself: REGISTRY_PUBLIC_URL, else http://host:port as served.
    settings = settings.model_copy(update={"host": args.host, "port": args.port})
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


def _check_port(host: str, port: int) -> None:
    """The listening address must be free now, not found taken after the database has started."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        raise Misconfigured(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _metrics_dir() -> str | None:
    """Where the workers keep their metrics: PROMETHEUS_MULTIPROC_DIR if the operator set it (to be
    emptied between runs), else a fresh directory made here and returned, to be removed at the end.
    Set before anything imports prometheus_client, which reads it once."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        return None
    made = tempfile.mkdtemp(prefix="registry-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    metrics_dir = _metrics_dir()
    try:
        return _serve(args, settings)
    finally:
        if metrics_dir:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from registry.api.protocol import PATH as BOUNDED_HTTP
    from registry.logs import logging_config

    # SIGTERM ends like Ctrl-C: uvicorn re-raises it after its graceful shutdown, and its default
    # action would kill the process before the embedded server below is stopped. SIGHUP (the
    # terminal closed) ends like SIGTERM. (With --workers, uvicorn's supervisor takes SIGHUP to
    # restart its workers; the embedded server's reaper stops it whenever this process is gone.)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGHUP, lambda *_: signal.raise_signal(signal.SIGTERM))
    settings = settings.model_copy(update={"host": args.host, "port": args.port})
    if settings.production and not settings.oidc_issuer:
        raise Misconfigured("REGISTRY_ENV=production needs REGISTRY_OIDC_ISSUER: the development token issuer is refused")
    refusal = _access_refusal(settings)
    if refusal:
        print(f"registry: refusing to start: {refusal}", file=sys.stderr)
        return 2
    _check_port(args.host, args.port)
    os.environ["REGISTRY_HOST"], os.environ["REGISTRY_PORT"] = args.host, str(args.port)
    # Started here, once, so that every worker process shares the one server (and no other serve).
    embedded, url = asyncio.run(_database_url(settings, exclusive=True))
    if embedded:
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
            log_config=logging_config(settings.log_level),  # JSON lines in every worker too
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


def _checkpoint_key(settings: Settings) -> Path:
    if settings.audit_checkpoint_key is None:
        raise SystemExit("set REGISTRY_AUDIT_CHECKPOINT_KEY to the checkpoint key file")
    return settings.audit_checkpoint_key


def cmd_audit_keygen(args: argparse.Namespace, settings: Settings) -> int:
    from registry.audit.checkpoint import CheckpointError, generate_key

    path = Path(args.key) if args.key else _checkpoint_key(settings)
    try:
        public = generate_key(path)
    except CheckpointError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"checkpoint key written to {path} (mode 0600); its public half, for whoever verifies:")
    print(public, end="")
    return 0


def cmd_audit_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    from registry.audit import checkpoint

    key = checkpoint.load_private(_checkpoint_key(settings))
    found = {}

    async def work(engine) -> None:
        async with engine.connect() as conn:
            found["head"] = await checkpoint.head(conn)

    asyncio.run(_with_database(settings, work))
    if args.dir:
        path = checkpoint.write(Path(args.dir), found["head"], key)
        print(f"checkpoint of link {found['head'].position} written to {path}")
    else:
        sys.stdout.write(checkpoint.signed(found["head"], key))
    return 0


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import text

    from registry.audit import checkpoint
    from registry.audit.chain import seal_all, verify

    pins: list = []
    if args.checkpoints:
        try:
            pins, problems = checkpoint.read_all(Path(args.checkpoints), checkpoint.load_public(_checkpoint_key(settings)))
        except checkpoint.CheckpointError as exc:
            problems = [str(exc)]
        if not pins and not problems:
            problems = [f"no checkpoint in {args.checkpoints}"]
        if problems:
            for problem in problems:
                print(f"audit checkpoints BROKEN: {problem}")
            return 1
    elif args.since_checkpoint:
        raise SystemExit("--since-checkpoint needs --checkpoints DIR")
    start = pins[-1] if args.since_checkpoint else None
    outcome: dict[str, Any] = {}

    async def work(engine) -> None:
        if args.seal:
            await seal_all(engine)
        async with engine.begin() as conn:
            if start is not None:  # the chain must pass through it to start from it
                there = await conn.scalar(text("SELECT hash FROM audit_seal WHERE position = :p"), {"p": start.position})
                sealed = await conn.scalar(text("SELECT coalesce(max(position), 0) FROM audit_seal"))
                outcome["start"] = checkpoint.problem(start, sealed, bytes(there) if there is not None else None)
                if outcome["start"]:
                    return
            outcome["result"] = await verify(
                conn, at=frozenset(c.position for c in pins), start=(start.position, start.hash) if start else None
            )

    asyncio.run(_with_database(settings, work))
    if outcome.get("start"):
        print(f"audit checkpoints BROKEN: {outcome['start']}")
        return 1
    result = outcome["result"]
    failed = 0
    if not result.ok:
        print(f"audit chain BROKEN at link {result.broken_at}: {result.reason}")
        print(f"{result.sealed} links verified intact; {result.unsealed} events not yet sealed")
        failed = 1
    reached = result.sealed if result.ok else result.broken_at - 1
    for pin in [start] if start else pins:
        if result.ok or pin.position <= reached:
            off_chain = checkpoint.problem(pin, reached, result.at.get(pin.position))
            if off_chain:
                print(f"audit checkpoints BROKEN: {off_chain}")
                failed = 1
    if failed:
        return 1
    first = f" from checkpoint {start.name} (link {start.position})" if start else ""
    print(f"audit chain intact{first}: {result.sealed} events sealed and verified; {result.unsealed} not yet sealed")
    if pins:
        print(f"the chain passes through {1 if start else len(pins)} checkpoint(s), the latest at link {pins[-1].position}")
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


class _HelpWithDefaults(argparse.HelpFormatter):
    """Every option's help ends with its default, when it has one worth stating."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _defaults() -> Settings:
    """The environment's settings as the options' defaults; the built-in ones when they are invalid
    (so that --help still answers; the command itself then says what is wrong)."""
    try:
        return _settings()
    except Misconfigured:
        return Settings.model_construct()


def build_parser() -> argparse.ArgumentParser:
    defaults = _defaults()
    parser = argparse.ArgumentParser(
        prog="registry",
        description=__doc__,
        epilog="Settings are read from REGISTRY_* environment variables (see the README's settings table).",
        formatter_class=_HelpWithDefaults,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, handler=None, **kwargs) -> argparse.ArgumentParser:
        made = sub.add_parser(name, help=help, description=help, formatter_class=_HelpWithDefaults, **kwargs)
        if handler:
            made.set_defaults(handler=handler)
        return made

    serve = command("serve", "run the GraphQL service (on the embedded PostgreSQL unless REGISTRY_DATABASE_URL is set)", cmd_serve)
    serve.add_argument("--host", default=defaults.host, help="address to listen on (REGISTRY_HOST)")
    serve.add_argument("--port", type=int, default=defaults.port, help="port to listen on (REGISTRY_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes, each with its own connection pools")
    serve.add_argument("--demo", action="store_true", help="seed fictional demo data and print a token per role")

    command("migrate", "apply the database migrations (as the connecting, owner user)", cmd_migrate)
    command("demo", "apply the migrations and seed deterministic fictional demo data", cmd_demo)

    token = command(
        "token",
        "print a bearer token signed by the development issuer, for the server at --host/--port "
        "(or REGISTRY_PUBLIC_URL when set)",
        cmd_token,
    )
    token.add_argument("--role", required=True, action="append", help="role the token carries; repeat for several")
    token.add_argument("--agency", required=True, help="agency of the holder: YOUTH, CUTA or POLICE")
    token.add_argument("--unit", help="unit of the holder (caseworkers: the unit whose cases they see)")
    token.add_argument("--name", help="display name of the holder (default: none)")
    token.add_argument("--subject", help="token subject, its pseudonymous id (default: derived from role and agency)")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")
    token.add_argument("--host", default=defaults.host, help="host the server listens on, as in `serve --host`")
    token.add_argument("--port", type=int, default=defaults.port, help="port the server listens on, as in `serve --port`")

    audit = command("audit", "the audit trail").add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = audit.add_parser(
        "verify", help="verify the audit hash chain; exit 1 on damage", formatter_class=_HelpWithDefaults
    )
    verify.add_argument("--seal", action="store_true", help="seal committed events first")
    verify.add_argument("--checkpoints", metavar="DIR", help="the chain must pass through every signed checkpoint of DIR")
    verify.add_argument("--since-checkpoint", action="store_true", help="verify from the latest checkpoint of --checkpoints on")
    verify.set_defaults(handler=cmd_audit_verify)
    keygen = audit.add_parser("keygen", help="generate the Ed25519 checkpoint key; prints its public half")
    keygen.add_argument("key", nargs="?", help="key file to create (default: REGISTRY_AUDIT_CHECKPOINT_KEY)")
    keygen.set_defaults(handler=cmd_audit_keygen)
    point = audit.add_parser("checkpoint", help="write the chain head, signed with REGISTRY_AUDIT_CHECKPOINT_KEY")
    point.add_argument("--dir", help="write checkpoint-<link>.json into DIR (default: print it)")
    point.set_defaults(handler=cmd_audit_checkpoint)

    export = command("export-subject", "everything held on one subject, as JSON (recorded in the audit trail)", cmd_export_subject)
    export.add_argument("subject", help="subject id or reference")
    export.add_argument("--output", "-o", help="write to this file (mode 0600) instead of standard output")

    keep = command("retention", "due reviews, and erasure of subjects past retainUntil", cmd_retention)
    mode = keep.add_mutually_exclusive_group(required=True)
    mode.add_argument("--list", action="store_true", help="list subjects due for review")
    mode.add_argument("--erase", action="store_true", help="erase subjects past retainUntil")
    keep.add_argument("--dry-run", action="store_true", help="with --erase: show what would go, erase nothing")
    keep.add_argument("--today", help=argparse.SUPPRESS)

    schema = command("export-schema", "write the GraphQL schema (SDL) built from the code and the policy", cmd_export_schema)
    schema.add_argument("--output", "-o", default=SCHEMA_PATH, help="file to write, - for standard output")
    schema.add_argument("--check", action="store_true", help="write nothing; exit 1 when the file differs from the code")

    command("trusted-documents", "print the trusted documents as JSON: documentId -> text", cmd_trusted_documents)
    return parser


def _version() -> str:
    try:
        return version("shared-information-registry")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings()
        _configure_logging(settings)
        return args.handler(args, settings)
    except Misconfigured as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
