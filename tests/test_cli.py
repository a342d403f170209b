"""The `registry` command as an operator meets it: described options, a version, and each common
misconfiguration told in one line on stderr with a non-zero exit, before anything is started."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REGISTRY = Path(sys.executable).with_name("registry")
QUICK = 20  # seconds: well under what starting the embedded PostgreSQL takes on a cold data directory


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    return subprocess.run([str(REGISTRY), *args], env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60)


def one_line_refusal(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("registry: ")
    assert "Traceback" not in result.stderr
    for part in expected:
        assert part in lines[0]


def test_every_command_and_option_is_described_with_its_default():
    top = run("--help")
    assert top.returncode == 0
    for name in ("serve", "migrate", "demo", "token", "audit", "export-subject", "retention", "export-schema"):
        assert name in top.stdout
    serve = run("serve", "--help").stdout
    assert "address to listen on (REGISTRY_HOST) (default: 127.0.0.1)" in serve
    assert "(default: 8000)" in serve and "(default: 1)" in serve
    token = run("token", "--help").stdout
    assert "lifetime in seconds (default: 28800)" in token
    assert "REGISTRY_PUBLIC_URL" in token
    # the help answers even when the environment is misconfigured
    assert run("serve", "--help", env={"REGISTRY_ENV": "prod"}).returncode == 0


def test_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("registry ") and result.stdout.split()[1][0].isdigit()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["audit", "verify"]])
def test_database_on_a_closed_port_is_one_line(command):
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/registry"
    started = time.monotonic()
    result = run(*command, env={"REGISTRY_DATABASE_URL": url})
    one_line_refusal(result, "cannot connect to the database", "REGISTRY_DATABASE_URL")
    assert time.monotonic() - started < QUICK


def test_data_dir_that_is_not_a_directory_is_one_line(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    result = run("serve", env={"REGISTRY_DATA_DIR": str(a_file / "data")})
    one_line_refusal(result, "REGISTRY_DATA_DIR", "not a writable directory")


def test_invalid_environment_value_is_one_line(tmp_path):
    result = run("serve", env={"REGISTRY_ENV": "prod", "REGISTRY_DATA_DIR": str(tmp_path)})
    one_line_refusal(result, "REGISTRY_ENV='prod'", "development", "production")
    assert not (tmp_path / "pgdata").exists()


def test_production_without_issuer_is_one_line_before_the_database_starts(tmp_path):
    result = run("serve", env={"REGISTRY_ENV": "production", "REGISTRY_DATA_DIR": str(tmp_path)})
    one_line_refusal(result, "REGISTRY_OIDC_ISSUER")
    assert not (tmp_path / "pgdata").exists()


def test_port_in_use_is_one_line_before_the_database_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = run("serve", "--port", str(port), env={"REGISTRY_DATA_DIR": str(tmp_path)})
    one_line_refusal(result, f"127.0.0.1:{port}", "in use")
    assert time.monotonic() - started < QUICK
    assert not (tmp_path / "pgdata").exists()


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_token_names_the_issuer_of_the_server_it_is_for(tmp_path):
    env = {"REGISTRY_DATA_DIR": str(tmp_path)}
    made = run("token", "--role", "analyst", "--agency", "CUTA", "--port", "18021", env=env)
    assert made.returncode == 0, made.stderr
    assert _claims(made.stdout.strip())["iss"] == "http://127.0.0.1:18021/dev-issuer"
    public = {**env, "REGISTRY_PUBLIC_URL": "https://registry.example.org/"}
    made = run("token", "--role", "analyst", "--agency", "CUTA", "--port", "18021", env=public)
    assert _claims(made.stdout.strip())["iss"] == "https://registry.example.org/dev-issuer"


@pytest.mark.parametrize(
    "setting, value, expected",
    [("REGISTRY_PORT", "abc", "REGISTRY_PORT='abc'"), ("REGISTRY_OIDC_ALGORITHMS", "RS256", "oidc_algorithms")],
)
def test_a_value_that_does_not_parse_is_one_line(setting, value, expected):
    one_line_refusal(run("migrate", env={setting: value}), "invalid setting", expected)
