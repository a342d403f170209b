"""The hash chain over audit events, sealed after commit so that it never serialises requests.

Requests only INSERT events (each gets a sequence number). The sealer, one at a time across
all processes (an advisory lock), links committed, not yet sealed events in sequence order:
hash = sha256(previous hash || position || sha256(event as JSON)). An event that commits late
(its transaction began earlier) is simply sealed in a later round. `verify` recomputes every
link, names the first broken one, and reports the unsealed tail.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

SEALER_LOCK = 727_275
GENESIS = bytes(32)
# How far back a late commit can land: longer than any request transaction can last.
LATE_COMMIT_WINDOW = timedelta(minutes=10)
EVENT_DIGEST = "sha256(convert_to(to_jsonb(e)::text, 'UTF8'))"


def link(prev_hash: bytes, position: int, event_digest: bytes) -> bytes:
    return hashlib.sha256(prev_hash + position.to_bytes(8, "big") + event_digest).digest()


async def seal(conn: AsyncConnection, batch: int = 5000) -> int:
    """Seal up to `batch` committed events; returns how many. Call inside a transaction."""
    if not await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SEALER_LOCK}):
        return 0  # another process is sealing
    await conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
    last = (
        await conn.execute(text("SELECT position, hash, sealed_at FROM audit_seal ORDER BY position DESC LIMIT 1"))
    ).first()
    position, prev = (last.position, last.hash) if last else (0, GENESIS)
    rows = (
        await conn.execute(
            text(
                f"""
                SELECT e.seq, {EVENT_DIGEST} AS digest
                FROM audit_event e
                WHERE e.occurred_at > :since
                  AND NOT EXISTS (SELECT 1 FROM audit_seal s WHERE s.event_seq = e.seq)
                ORDER BY e.seq
                LIMIT :batch
                """
            ),
            {"since": last.sealed_at - LATE_COMMIT_WINDOW if last else datetime.min.replace(tzinfo=timezone.utc), "batch": batch},
        )
    ).all()
    seals = []
    for row in rows:
        position += 1
        digest = bytes(row.digest)
        current = link(prev, position, digest)
        seals.append({"position": position, "seq": row.seq, "digest": digest, "prev": prev, "hash": current})
        prev = current
    if seals:
        await conn.execute(
            text(
                "INSERT INTO audit_seal (position, event_seq, event_digest, prev_hash, hash) "
                "VALUES (:position, :seq, :digest, :prev, :hash)"
            ),
            seals,
        )
    return len(seals)


async def seal_all(engine: AsyncEngine) -> int:
    """Seal until nothing committed is left unsealed."""
    total = 0
    while True:
        async with engine.begin() as conn:
            sealed = await seal(conn)
        total += sealed
        if sealed < 5000:
            return total


async def run_sealer(engine: AsyncEngine, interval: float) -> None:
    """Background task of each server process."""
    while True:
        try:
            await seal_all(engine)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep sealing; verify reports the unsealed tail meanwhile
            log.exception("audit sealer round failed")
        await asyncio.sleep(interval)


@dataclass
class Verification:
    sealed: int
    unsealed: int
    broken_at: int | None = None  # position of the first broken link
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


async def verify(conn: AsyncConnection) -> Verification:
    """Recompute the whole chain; stop at the first broken link."""
    await conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
    prev, expected, count = GENESIS, 1, 0
    result = await conn.stream(
        text(
            f"""
            SELECT s.position, s.event_seq, s.event_digest, s.prev_hash, s.hash, {EVENT_DIGEST} AS actual
            FROM audit_seal s LEFT JOIN audit_event e ON e.seq = s.event_seq
            ORDER BY s.position
            """
        )
    )
    async for row in result:
        problem = None
        if row.position != expected:
            problem = f"link {expected} is missing (next is {row.position})"
        elif row.actual is None:
            problem = f"event {row.event_seq} was removed"
        elif bytes(row.actual) != bytes(row.event_digest):
            problem = f"event {row.event_seq} was altered"
        elif bytes(row.prev_hash) != prev or bytes(row.hash) != link(prev, row.position, bytes(row.event_digest)):
            problem = f"the seal of event {row.event_seq} does not follow from the previous one"
        if problem:
            await result.close()
            return Verification(sealed=count, unsealed=await _unsealed(conn), broken_at=expected, reason=problem)
        prev, expected, count = bytes(row.hash), expected + 1, count + 1
    return Verification(sealed=count, unsealed=await _unsealed(conn))


async def _unsealed(conn: AsyncConnection) -> int:
    return await conn.scalar(
        text("SELECT count(*) FROM audit_event e WHERE NOT EXISTS (SELECT 1 FROM audit_seal s WHERE s.event_seq = e.seq)")
    )
