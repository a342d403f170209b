"""Events reach subscribers on every instance and worker, and survive a database restart.

Two `registry serve` processes with two workers each run on the test database; a third test runs
one instance on a PostgreSQL server of its own (the embedded one), which it stops and starts
while clients are subscribed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import shutil
import tempfile
from pathlib import Path
from typing import AsyncIterator

import asyncpg
import httpx

from helpers import ADD_NOTE, CREATE_SUBJECT, actor, create_subject, subject_input
from registry.db.embedded import EmbeddedPostgres
from subscription_support import free_port, serve, subscribed

REGISTRY = Path(sys.executable).with_name("registry")
NOTES = """
subscription($after: String) {
  registryEvents(types: [NOTE_ADDED], after: $after) { cursor type note { id body } }
}"""


@contextlib.asynccontextmanager
async def registry_serve(settings, database_url: str, workers: int, log: Path) -> AsyncIterator[str]:
    """`registry serve --workers N` on the test database; yields its base URL once ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(
        REGISTRY_DATABASE_URL=database_url,
        REGISTRY_DATA_DIR=str(settings.data_dir),  # the test's development issuer key
        REGISTRY_PUBLIC_URL=settings.base_url(),  # and its issuer name
        REGISTRY_LOG_LEVEL="WARNING",
        REGISTRY_DB_POOL_SIZE="4",
    )
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(REGISTRY), "serve", "--port", str(port), "--workers", str(workers)], env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                assert process.poll() is None, log.read_text()[-3000:]
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{base}/readyz", timeout=2)).status_code == 200:
                        break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("registry serve never became ready\n" + log.read_text()[-3000:])
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(process.wait, 20)
        except subprocess.TimeoutExpired:
            process.kill()


async def _add_note(base: str, token: str, subject_id: str, body: str) -> str:
    async with httpx.AsyncClient() as client:
        for _ in range(100):  # after a database restart, the first requests may meet a closed connection
            response = await client.post(
                f"{base}/graphql",
                json={"query": ADD_NOTE, "variables": {"input": {"subjectId": subject_id, "body": body, "visibility": "SHARED"}}},
                headers={"Authorization": f"Bearer {token}", "Registry-Purpose": "REFERRAL"},
                timeout=10,
            )
            body_json = response.json()
            if "errors" not in body_json:
                return body_json["data"]["addNote"]["note"]["id"]
            await asyncio.sleep(0.2)
    raise AssertionError(body_json)


async def test_events_reach_subscribers_on_every_instance_and_worker(world, settings, database_url, tmp_path):
    # given two instances of two workers each on one database, three subscribers on each
    token = world.token("referral_officer", name="fan-out officer")
    subject = await create_subject(world)
    async with (
        registry_serve(settings, database_url, 2, tmp_path / "a.log") as a,
        registry_serve(settings, database_url, 2, tmp_path / "b.log") as b,
    ):
        urls = [base.replace("http://", "ws://") + "/graphql" for base in (a, a, a, b, b, b)]
        async with contextlib.AsyncExitStack() as stack:
            subscribers = [await stack.enter_async_context(subscribed(u, token, "REFERRAL", NOTES)) for u in urls]
            # when a note is added through each instance
            first = await _add_note(a, token, subject["id"], "through a")
            second = await _add_note(b, token, subject["id"], "through b")
            for subscriber in subscribers:
                await subscriber.wait_for(2, timeout=20)
            await asyncio.sleep(0.3)
    # then every subscriber, wherever it is connected, got both, once each, in commit order
    for subscriber in subscribers:
        assert [e["note"]["id"] for e in subscriber.data()] == [first, second]


async def test_a_database_restart_while_subscribed_loses_no_event(world, settings):
    # given an instance on a PostgreSQL server of its own, and a subscriber told of one note
    data_dir = tempfile.mkdtemp(prefix="registry-restart-pg-")
    port = free_port()
    server = EmbeddedPostgres(Path(data_dir), port=port)
    url = await asyncio.to_thread(server.start)
    try:
        async with serve(settings, database_url=url, delivery_retry_seconds=30) as ws_url:
            base = ws_url.replace("ws://", "http://").removesuffix("/graphql")
            owner = await asyncpg.connect(url)
            await owner.execute(
                "INSERT INTO agency (code, name, kind) VALUES ($1, 'Youth (restart test)', 'youth') ON CONFLICT DO NOTHING", world.agency
            )
            await owner.close()
            token = world.token("referral_officer", name="restart officer")
            officer = actor(world, "referral_officer")
            created = await _create_subject(base, officer.token, world)
            async with subscribed(ws_url, token, "REFERRAL", NOTES) as subscriber:
                before = await _add_note(base, token, created, "before the restart")
                await subscriber.wait_for(1)
                # when the database restarts, and notes are added once it is back
                await asyncio.to_thread(server.stop)
                await asyncio.sleep(0.5)
                await asyncio.to_thread(server.start)  # on the same port, with the same data
                after = [await _add_note(base, token, created, f"after the restart {n}") for n in range(2)]
                await subscriber.wait_for(3, timeout=20)
                await subscriber.quiet(0.3)
            # then the subscriber was kept, and told of each, once
            assert subscriber.ended is None
            assert [e["note"]["id"] for e in subscriber.data()] == [before, *after]
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(data_dir, ignore_errors=True)


async def _create_subject(base: str, token: str, world) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{base}/graphql",
            json={"query": CREATE_SUBJECT, "variables": {"input": subject_input(world)}},
            headers={"Authorization": f"Bearer {token}", "Registry-Purpose": "CASE_SUPERVISION"},
            timeout=10,
        )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["createSubject"]["subject"]["id"]
