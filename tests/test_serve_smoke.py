"""The README's first command works on a fresh machine: `registry serve --demo` starts the embedded
PostgreSQL, seeds, prints working tokens, stops cleanly on a signal, and a second start reuses the data."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

READY_TIMEOUT, STOP_TIMEOUT = 90, 30
REGISTRY = Path(sys.executable).with_name("registry")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postmaster_alive(pgdata: Path) -> bool:
    try:
        os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


class Served:
    """One `registry serve --demo` process, its output kept in files (a full pipe would block it)."""

    def __init__(self, data_dir: Path, run: int) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.out, self.err = data_dir.parent / f"out-{run}.log", data_dir.parent / f"err-{run}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env["REGISTRY_DATA_DIR"] = str(data_dir)
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                [str(REGISTRY), "serve", "--demo", "--port", str(self.port)], env=env, stdout=out, stderr=err
            )

    def logs(self) -> str:
        return f"--- stdout\n{self.out.read_text()}\n--- stderr (tail)\n{self.err.read_text()[-3000:]}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "registry serve exited early\n" + self.logs()
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError("/readyz never answered 200\n" + self.logs())

    def token(self, role: str) -> str:
        match = re.search(rf"^  {role}\s+(\S+)$", self.out.read_text(), re.MULTILINE)
        assert match, "no token printed for " + role + "\n" + self.logs()
        return match.group(1)

    def gql(self, token: str, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(
            f"{self.base}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}", "Registry-Purpose": "CASE_SUPERVISION"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def subject_count(self, token: str) -> int:
        query = "query($after: String) { subjects(first: 100, after: $after) { edges { cursor } pageInfo { hasNextPage endCursor } } }"
        count, after = 0, None
        while True:
            page = self.gql(token, query, {"after": after})["subjects"]
            count += len(page["edges"])
            if not page["pageInfo"]["hasNextPage"]:
                return count
            after = page["pageInfo"]["endCursor"]

    def stop(self, sig: int) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError("registry serve did not stop\n" + self.logs()) from None


def _serve_and_stop(data_dir: Path, run: int, sig: int) -> int:
    """Start, check tokens and data, stop with `sig`; the number of subjects the referral officer sees."""
    served = Served(data_dir, run)
    try:
        served.wait_ready()
        caseworker = served.token("caseworker")
        subjects = served.gql(caseworker, "{ subjects(first: 5) { edges { node { reference givenName institution } } } }")
        nodes = [edge["node"] for edge in subjects["subjects"]["edges"]]
        assert len(nodes) == 5 and {n["institution"] for n in nodes} == {"IPPJ-BRAINE"}
        assert all(n["reference"].startswith("S-2026-") and n["givenName"] for n in nodes)
        assert served.gql(caseworker, "{ me { roles } }") == {"me": {"roles": ["caseworker"]}}
        count = served.subject_count(served.token("referral_officer"))
    finally:
        if served.process.poll() is None:
            served.stop(sig)
    assert served.process.returncode == 0, served.logs()
    assert not _postmaster_alive(data_dir / "pgdata"), "the embedded PostgreSQL is still running\n" + served.logs()
    return count


@pytest.fixture
def data_dir():
    """Not under pytest's tmp_path: any pytest run starting meanwhile resets that tree to mode 0700,
    which the embedded server's system user (when run as root) then cannot traverse."""
    path = Path(tempfile.mkdtemp(prefix="registry-smoke-"))
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def test_serve_demo_starts_stops_and_restarts(data_dir):
    try:
        first = _serve_and_stop(data_dir, 1, signal.SIGINT)
        assert first == 300  # every demo subject, owned by YOUTH
        assert _serve_and_stop(data_dir, 2, signal.SIGTERM) == first
        assert "already present" in (data_dir.parent / "out-2.log").read_text()
    finally:  # never leave a server behind, even when an assertion failed
        pgdata = data_dir / "pgdata"
        if _postmaster_alive(pgdata):
            os.kill(int((pgdata / "postmaster.pid").read_text().split()[0]), signal.SIGINT)
