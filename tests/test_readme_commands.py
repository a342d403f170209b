"""The README's quick start, as written: `registry serve --demo`, then its curl request with the
caseworker's printed token, which must answer data. (The install command is what CI runs.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from served import Served, registry_env

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start_blocks() -> tuple[str, str]:
    text = README.read_text()
    section = text[text.index("## Quick start") : text.index("## Test it")]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    return blocks[0], blocks[1]


@pytest.fixture
async def demo_database(server_url):
    """A database of its own: the demo's fixed national numbers must not meet other tests' lookups."""
    admin = make_url(server_url.replace("postgres://", "postgresql://", 1)).set(database="postgres")
    name = f"registry_readme_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield admin.set(database=name).render_as_string(hide_password=False)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def test_the_quick_start_answers_the_query(demo_database, tmp_path):
    install, query = quick_start_blocks()
    assert "pip install -e ." in install and ".venv/bin/registry serve --demo" in install
    curl = shutil.which("curl")
    if not curl and not os.environ.get("CI"):
        pytest.skip("no curl here")
    env = registry_env(database_url=demo_database, data_dir=str(tmp_path / "data"))
    served = Served(tmp_path, "serve", env, "--demo").wait_ready()
    try:
        token = re.search(r"^  caseworker\s+(\S+)$", served.out.read_text(), re.MULTILINE).group(1)
        command = query.replace("http://127.0.0.1:8000", served.base)
        result = subprocess.run(["bash", "-c", command], env={**os.environ, "TOKEN": token}, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        edges = json.loads(result.stdout)["data"]["subjects"]["edges"]
        assert len(edges) == 2 and all(e["node"]["reference"].startswith("S-") for e in edges)
    finally:
        assert served.stop() == 0, served.logs()
