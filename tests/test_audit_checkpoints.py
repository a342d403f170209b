"""Signed checkpoints: `registry audit verify --checkpoints DIR` fails, naming the checkpoint, when the
chain no longer passes through it (its tail cut, its tail rewritten with every hash recomputed as
the database owner could, events removed before it and the chain rebuilt) or when a checkpoint's
signature is wrong; an untouched trail passes, also from the latest checkpoint on."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from audit_support import registry
from registry.app import create_app
from registry.audit import chain, checkpoint, trail
from registry.db.engine import create_engine
from test_audit_chain import ANALYST, TRIGGERS, as_owner, copy, sealed_trail  # noqa: F401 - a sealed trail of 30 events


@pytest.fixture
def key(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "checkpoint.key"
    monkeypatch.setenv("REGISTRY_AUDIT_CHECKPOINT_KEY", str(path))
    return path


async def run(url: str, tmp_path, *args: str) -> tuple[int, str]:
    code, out, err = await registry("audit", *args, database_url=url, data_dir=tmp_path)
    return code, out + err


async def keygen_and_checkpoint(url: str, tmp_path, key: Path) -> Path:
    code, out = await run(url, tmp_path, "keygen")
    assert code == 0 and "BEGIN PUBLIC KEY" in out, out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    directory = tmp_path / "checkpoints"
    code, out = await run(url, tmp_path, "checkpoint", "--dir", str(directory))
    assert code == 0 and "checkpoint of link 30 written" in out, out
    return directory


def sign_old_checkpoint(directory: Path, key: Path, position: int, hash_: bytes) -> None:
    """A checkpoint written when the chain was `position` links long."""
    checkpoint.write(directory, checkpoint.Checkpoint(position, hash_, "2026-11-29T10:00:00+00:00"), checkpoint.load_private(key))


async def seal_hash(url: str, settings, position: int) -> bytes:
    engine = create_engine(url, settings, as_owner=True)
    try:
        async with engine.connect() as conn:
            return bytes(await conn.scalar(text("SELECT hash FROM audit_seal WHERE position = :p"), {"p": position}))
    finally:
        await engine.dispose()


async def rebuild_chain(url: str, settings) -> None:
    """What the database owner can do after tampering: renumber the links in order and recompute
    every digest and hash, so that the chain verifies on its own."""
    engine = create_engine(url, settings, as_owner=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
            for trigger in TRIGGERS:
                await conn.execute(text(f"ALTER TABLE {trigger.rsplit('_append_only')[0]} DISABLE TRIGGER {trigger}"))
            rows = (await conn.execute(text(
                f"SELECT s.event_seq, {chain.EVENT_TEXT} AS event FROM audit_seal s JOIN audit_event e ON e.seq = s.event_seq"
                " ORDER BY s.position"
            ))).all()
            await conn.execute(text("DELETE FROM audit_seal"))
            prev = chain.GENESIS
            for position, row in enumerate(rows, start=1):
                event_digest = chain.digest(row.event)
                current = chain.link(prev, position, event_digest)
                await conn.execute(
                    text("INSERT INTO audit_seal (position, event_seq, event_digest, prev_hash, hash) VALUES (:p, :s, :d, :prev, :h)"),
                    {"p": position, "s": row.event_seq, "d": event_digest, "prev": prev, "h": current},
                )
                prev = current
            for trigger in TRIGGERS:
                await conn.execute(text(f"ALTER TABLE {trigger.rsplit('_append_only')[0]} ENABLE TRIGGER {trigger}"))
    finally:
        await engine.dispose()


async def test_an_untouched_trail_passes_through_its_checkpoints(copy, sealed_trail, tmp_path, key):
    directory = await keygen_and_checkpoint(copy, tmp_path, key)
    sign_old_checkpoint(directory, key, 12, await seal_hash(copy, sealed_trail.settings, 12))
    code, out = await run(copy, tmp_path, "verify", "--checkpoints", str(directory))
    assert code == 0 and "passes through 2 checkpoint(s), the latest at link 30" in out, out
    code, out = await run(copy, tmp_path, "verify", "--checkpoints", str(directory), "--since-checkpoint")
    assert code == 0 and "intact from checkpoint checkpoint-000000000030.json (link 30)" in out, out


async def test_a_checkpoint_printed_to_stdout_is_signed(copy, tmp_path, key):
    await run(copy, tmp_path, "keygen")
    code, out = await run(copy, tmp_path, "checkpoint")
    document = json.loads(out)
    assert code == 0 and document["position"] == document["events"] == 30 and document["signature"]


async def test_a_cut_tail_is_named_by_the_checkpoint(copy, sealed_trail, tmp_path, key):
    directory = await keygen_and_checkpoint(copy, tmp_path, key)
    await as_owner(copy, sealed_trail.settings, "DELETE FROM audit_event WHERE seq IN (SELECT event_seq FROM audit_seal WHERE position > 25)",
                   "DELETE FROM audit_seal WHERE position > 25")
    assert (await run(copy, tmp_path, "verify"))[0] == 0  # the chain alone cannot tell
    for flags in ((), ("--since-checkpoint",)):
        code, out = await run(copy, tmp_path, "verify", "--checkpoints", str(directory), *flags)
        assert code == 1, out
        assert "checkpoint checkpoint-000000000030.json: the chain ends at link 25, before the checkpoint's link 30" in out


async def test_a_tail_rewritten_with_every_hash_recomputed_is_named_by_the_checkpoint(copy, sealed_trail, tmp_path, key):
    directory = await keygen_and_checkpoint(copy, tmp_path, key)
    await as_owner(copy, sealed_trail.settings, "UPDATE audit_event SET justification = 'nothing to see' WHERE seq = 27")
    await rebuild_chain(copy, sealed_trail.settings)
    assert (await run(copy, tmp_path, "verify"))[0] == 0  # the chain alone cannot tell
    for flags in ((), ("--since-checkpoint",)):
        code, out = await run(copy, tmp_path, "verify", "--checkpoints", str(directory), *flags)
        assert code == 1, out
        assert "checkpoint checkpoint-000000000030.json: link 30 has another hash than the checkpoint" in out


async def test_an_event_removed_before_a_checkpoint_is_named_by_it(copy, sealed_trail, tmp_path, key):
    directory = await keygen_and_checkpoint(copy, tmp_path, key)
    sign_old_checkpoint(directory, key, 12, await seal_hash(copy, sealed_trail.settings, 12))
    await as_owner(copy, sealed_trail.settings, "DELETE FROM audit_event WHERE seq = 5")
    await rebuild_chain(copy, sealed_trail.settings)
    assert (await run(copy, tmp_path, "verify"))[0] == 0  # the chain alone cannot tell
    code, out = await run(copy, tmp_path, "verify", "--checkpoints", str(directory))
    assert code == 1, out
    assert "checkpoint checkpoint-000000000012.json: link 12 has another hash than the checkpoint" in out
    assert "checkpoint checkpoint-000000000030.json: the chain ends at link 29" in out


async def test_a_checkpoint_with_a_wrong_signature_is_named(copy, tmp_path, key):
    directory = await keygen_and_checkpoint(copy, tmp_path, key)
    path = directory / "checkpoint-000000000030.json"
    document = json.loads(path.read_text())
    document["hash"] = "00" * 32
    path.write_text(json.dumps(document))
    code, out = await run(copy, tmp_path, "verify", "--checkpoints", str(directory))
    assert code == 1 and "checkpoint checkpoint-000000000030.json: the signature is not valid" in out, out


async def test_a_checkpoint_signed_with_another_key_is_refused(copy, tmp_path, key):
    directory = await keygen_and_checkpoint(copy, tmp_path, key)
    other = tmp_path / "other.key"
    checkpoint.generate_key(other)
    sign_old_checkpoint(directory, other, 30, bytes(32))
    code, out = await run(copy, tmp_path, "verify", "--checkpoints", str(directory))
    assert code == 1 and re.search(r"checkpoint-000000000030\.json: the signature is not valid", out), out


async def test_keygen_never_overwrites_a_key(copy, tmp_path, key):
    assert (await run(copy, tmp_path, "keygen"))[0] == 0
    before = key.read_bytes()
    code, out = await run(copy, tmp_path, "keygen")
    assert code == 1 and "never overwritten" in out and key.read_bytes() == before


async def test_the_sealer_writes_checkpoints_when_configured(settings, services, tmp_path):
    async with services.sessions.begin() as session:  # an event to seal
        await trail.record(session, trail.Actor(ANALYST, request_id="sealer-checkpoint"), "records.consulted")
    key = tmp_path / "sealer.key"
    checkpoint.generate_key(key)
    directory = tmp_path / "sealed"
    app = create_app(settings.model_copy(update={
        "audit_checkpoint_key": key, "audit_checkpoint_dir": directory, "audit_checkpoint_interval_seconds": 0.05,
        "audit_seal_interval_seconds": 0.05,
    }))
    async with app.router.lifespan_context(app):
        for _ in range(200):
            if [p for p in directory.glob("checkpoint-*.json") if not p.name.endswith("-000000000000.json")]:
                break
            await asyncio.sleep(0.05)
    written, problems = checkpoint.read_all(directory, checkpoint.load_public(key))
    assert written and written[-1].position > 0 and not problems
    async with services.engine.connect() as conn:
        there = await conn.scalar(text("SELECT hash FROM audit_seal WHERE position = :p"), {"p": written[-1].position})
    assert bytes(there) == written[-1].hash
