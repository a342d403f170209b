"""`registry serve` as a subprocess on the test database, for tests of what only whole processes show
(several workers and instances, logs, metrics). Its output is kept in files: a full pipe would block it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

READY_TIMEOUT, STOP_TIMEOUT = 90, 30
REGISTRY = Path(sys.executable).with_name("registry")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def registry_env(**settings: str) -> dict[str, str]:
    """The environment without the caller's REGISTRY_* settings, plus `settings` (as REGISTRY_<NAME>)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update({f"REGISTRY_{name.upper()}": value for name, value in settings.items()})
    return env


class Served:
    """One `registry serve` process."""

    def __init__(self, workdir: Path, name: str, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.out, self.err = workdir / f"{name}.out", workdir / f"{name}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                [str(REGISTRY), "serve", "--port", str(self.port), *args], env=env, stdout=out, stderr=err
            )

    def logs(self) -> str:
        return f"--- stdout\n{self.out.read_text()[-3000:]}\n--- stderr (tail)\n{self.err.read_text()[-3000:]}"

    def wait_ready(self) -> "Served":
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "registry serve exited early\n" + self.logs()
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError("/readyz never answered 200\n" + self.logs())

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def token(env: dict[str, str], *args: str) -> str:
    """A development token made by `registry token` in `env`."""
    made = subprocess.run([str(REGISTRY), "token", *args], env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()
