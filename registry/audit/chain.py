"""The hash chain over audit events, sealed after commit so that it never serialises requests.

Requests only INSERT events (each gets a sequence number). The sealer, one at a time across
all processes (an advisory lock), links committed, not yet sealed events in sequence order:
hash = sha256(previous hash || position || sha256(event as JSON)). An event that commits late
(its transaction began earlier) is simply sealed in a later round. `verify` recomputes every
link, names the first broken one, and reports the unsealed tail. An unsealed event that the
service cannot have written when it claims (older than the sealer's horizon, or dated after the
seal of an event with a later sequence number) was slipped in afterwards: verify names it too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from registry.db.failures import log_failure

log = logging.getLogger(__name__)

SEALER_LOCK = 727_275
GENESIS = bytes(32)
# How far back a late commit can land: longer than any request transaction can last.
LATE_COMMIT_WINDOW = timedelta(minutes=10)
# ... and how many events later: a request writes its event just before it commits, so a late
# commit trails by a few events. Bounding both keeps a sealing round cheap at any volume.
LATE_COMMIT_EVENTS = 10_000
BATCH = 5000
# The sealed content of an event, its columns named one by one: a column a later migration adds
# (NULL in old rows) would otherwise change the digest of every event sealed before it.
EVENT_COLUMNS = (
    "seq", "id", "occurred_at", "action", "outcome", "actor_id", "actor_name", "actor_agency", "actor_roles",
    "purpose", "justification", "operation", "request_id", "break_glass", "subject_ids", "records", "detail",
)
# An event as one JSON object: its columns in the order jsonb keeps keys (shorter first, then
# bytewise), ", " and ": " between, each value as PostgreSQL writes it as JSON and `records` as
# stored (migration 0004), put together in one concat(). Its sha256 is the event's digest,
# taken in Python: PostgreSQL's own sha256 and string building cost four times as much.
_JSON_TEXT = {"seq": "e.seq::text", "records": "e.records::text", "detail": "e.detail::text",
              "actor_roles": "to_jsonb(e.actor_roles)::text", "subject_ids": "to_jsonb(e.subject_ids)::text"}
EVENT_TEXT = "concat('{', " + ", ', ', ".join(
    f"""'"{c}": ', {_JSON_TEXT.get(c, f"coalesce(to_json(e.{c})::text, 'null')")}"""
    for c in sorted(EVENT_COLUMNS, key=lambda c: (len(c), c))
) + ", '}')"


def digest(event_text: str) -> bytes:
    """The digest of an event from its EVENT_TEXT."""
    return hashlib.sha256(event_text.encode()).digest()


def link(prev_hash: bytes, position: int, event_digest: bytes) -> bytes:
    return hashlib.sha256(prev_hash + position.to_bytes(8, "big") + event_digest).digest()


@dataclass(frozen=True)
class Seen:
    """What one process's last sealing round read: every event up to `highest` was sealed then,
    except the sequence numbers in `gaps`, which no committed event had yet (a transaction still
    open, or one that rolled back). Only those and the numbers above `highest` can be new."""

    highest: int
    gaps: tuple[int, ...] = ()


@dataclass(frozen=True)
class Round:
    sealed: int
    seen: Seen | None  # for the next round of the same process
    more: bool  # a full batch was read: there may be more


async def seal(conn: AsyncConnection, batch: int = BATCH, seen: Seen | None = None, wait: bool = False) -> Round:
    """Seal up to `batch` committed events. Call inside a transaction. Unless told to `wait`
    for it, a round that finds another process sealing leaves it to that one."""
    if wait:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEALER_LOCK})
    elif not await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SEALER_LOCK}):
        return Round(0, seen, more=False)
    await conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
    last = (
        await conn.execute(
            text(
                "SELECT position, hash, sealed_at, (SELECT max(event_seq) FROM audit_seal) AS last_seq"
                " FROM audit_seal ORDER BY position DESC LIMIT 1"
            )
        )
    ).first()
    position, prev = (last.position, last.hash) if last else (0, GENESIS)
    lowest = max((last.last_seq if last else 0) - LATE_COMMIT_EVENTS, 0)  # a late commit lands above this
    highest = max(seen.highest, lowest) if seen else lowest  # without a previous round: the whole window
    gaps = [gap for gap in seen.gaps if gap > lowest] if seen else []
    rows = (
        await conn.execute(
            text(
                # Every candidate row, with the text of those not sealed yet: the gaps left
                # among them are what the next round has to look at again, besides what is new.
                f"""
                SELECT e.seq, CASE WHEN NOT EXISTS (SELECT 1 FROM audit_seal s WHERE s.event_seq = e.seq)
                                   THEN {EVENT_TEXT} END AS event
                FROM audit_event e
                WHERE (e.seq > :highest OR e.seq = ANY(:gaps))
                  AND e.seq > :lowest
                  AND e.occurred_at > :since
                ORDER BY e.seq
                LIMIT :batch
                """
            ),
            {
                "since": last.sealed_at - LATE_COMMIT_WINDOW if last else datetime.min.replace(tzinfo=timezone.utc),
                "lowest": lowest,
                "highest": highest,
                "gaps": gaps,
                "batch": batch,
            },
        )
    ).all()
    found = {row.seq for row in rows}
    top = rows[-1].seq if len(rows) == batch else max(found | {highest})  # read up to here
    missing = [gap for gap in gaps if gap not in found and gap <= top]
    missing += [n for n in range(highest + 1, top + 1) if n not in found]
    columns: dict[str, list[Any]] = {"position": [], "seq": [], "digest": [], "prev": [], "hash": []}
    for row in rows:
        if row.event is None:
            continue  # sealed already, by another process
        position += 1
        event_digest = digest(row.event)
        current = link(prev, position, event_digest)
        for name, value in zip(columns, (position, row.seq, event_digest, prev, current)):
            columns[name].append(value)
        prev = current
    if columns["seq"]:
        await conn.execute(
            text(
                # One statement per round. clock_timestamp(), not now(): later than the commit of
                # every event sealed here, which lets `verify` tell a late commit from a forgery.
                "INSERT INTO audit_seal (position, event_seq, event_digest, prev_hash, hash, sealed_at)"
                " SELECT *, clock_timestamp() FROM unnest("
                "CAST(:position AS bigint[]), CAST(:seq AS bigint[]), CAST(:digest AS bytea[]),"
                " CAST(:prev AS bytea[]), CAST(:hash AS bytea[]))"
            ),
            columns,
        )
    return Round(len(columns["seq"]), Seen(top, tuple(missing)), more=len(rows) == batch)


async def seal_all(engine: AsyncEngine) -> int:
    """Seal until nothing committed is left unsealed (waiting for a sealer at work); returns how many."""
    total, _ = await _seal_rounds(engine, None, wait=True)
    return total


async def _seal_rounds(engine: AsyncEngine, seen: Seen | None, wait: bool = False) -> tuple[int, Seen | None]:
    total = 0
    while True:
        async with engine.begin() as conn:
            done = await seal(conn, seen=seen, wait=wait)
        total, seen = total + done.sealed, done.seen
        if not done.more:
            return total, seen


async def run_sealer(engine: AsyncEngine, interval: float, checkpoints: Any = None) -> None:
    """Background task of each server process: each round reads only what it has not seen; with
    `checkpoints` (audit.checkpoint.Periodic), it writes a signed checkpoint of the head now and then."""
    seen = None
    while True:
        try:
            _, seen = await _seal_rounds(engine, seen)
            if checkpoints is not None:
                await checkpoints.maybe_write(engine)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep sealing; verify reports the unsealed tail meanwhile
            log_failure(log, "audit sealer round failed", exc)
            seen = None  # read the whole window again
        await asyncio.sleep(interval)


@dataclass
class Verification:
    sealed: int
    unsealed: int
    broken_at: int | None = None  # position of the first broken link
    reason: str | None = None
    head: bytes = GENESIS  # hash of the last link verified: recorded elsewhere, it pins the chain
    at: dict[int, bytes] = field(default_factory=dict)  # the hash of each link asked for, as recomputed

    @property
    def ok(self) -> bool:
        return self.broken_at is None


# Verify reads the chain in up to VERIFY_PARTS ranges of links at once, each on a connection of
# its own: the database builds the events' text in as many processes while Python hashes, and
# the ranges are joined where one ends and the next begins. Rows come in batches of VERIFY_BATCH.
VERIFY_PARTS = 4
VERIFY_PART_MIN = 20_000  # links; a shorter chain is read in one range
VERIFY_BATCH = 2_000
_VERIFY = f"""
SELECT s.position, s.event_seq, s.event_digest, s.prev_hash, s.hash, ev.event
FROM audit_seal s
LEFT JOIN LATERAL (SELECT {EVENT_TEXT} AS event FROM audit_event e WHERE e.seq = s.event_seq OFFSET 0) ev ON true
WHERE s.position BETWEEN $1 AND $2
ORDER BY s.position
"""  # the event's text built per link in chain order (OFFSET 0): not built first and then sorted


@dataclass
class _Range:
    """What one range of links showed: its first row's stored link to the range before, the hash
    it ends with, and its first problem (position, reason, the hash before it)."""

    first: int
    last: int
    first_seq: int | None = None
    first_prev: bytes | None = None
    end: bytes | None = None
    problem: tuple[int, str, bytes | None] | None = None
    at: dict[int, bytes] = field(default_factory=dict)


async def _verify_range(dsn: str, part: _Range, at: frozenset[int]) -> _Range:
    """Verify one range on a driver connection of its own (the engine's pool may hold only one)."""
    sha256, to_bytes = hashlib.sha256, int.to_bytes
    raw = await asyncpg.connect(dsn)
    try:
        async with raw.transaction(readonly=True):
            await raw.execute("SET LOCAL TimeZone = 'UTC'")
            cursor = await raw.cursor(_VERIFY, part.first, part.last)
            expected, prev = part.first, None
            while rows := await cursor.fetch(VERIFY_BATCH):
                for position, seq, event_digest, prev_hash, hash_, event in rows:
                    problem = None
                    if position != expected:
                        problem = f"link {expected} is missing (next is {position})"
                    elif event is None:
                        problem = f"event {seq} was removed"
                    elif sha256(event.encode()).digest() != event_digest:
                        problem = f"event {seq} was altered"
                    elif (prev is not None and prev_hash != prev) or hash_ != sha256(
                        prev_hash + to_bytes(position, 8, "big") + event_digest
                    ).digest():
                        problem = f"the seal of event {seq} does not follow from the previous one"
                    if problem:
                        part.problem = (expected, problem, prev)
                        return part
                    if prev is None:
                        part.first_seq, part.first_prev = seq, prev_hash
                    prev, expected = hash_, expected + 1
                    if position in at:
                        part.at[position] = hash_
            if expected <= part.last:  # the links from `expected` on are missing in this range
                after = await raw.fetchval("SELECT min(position) FROM audit_seal WHERE position > $1", part.last)
                part.problem = (expected, f"link {expected} is missing (next is {after})", prev)
            part.end = prev
    finally:
        await raw.close()
    return part


async def verify(conn: AsyncConnection, at: frozenset[int] = frozenset(), start: tuple[int, bytes] | None = None) -> Verification:
    """Recompute the chain (from the link `start` names, whose hash it takes as given, or the
    whole chain); stop at the first broken link. Reports the hash of the links in `at`."""
    await conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
    first, prev = start or (0, GENESIS)
    hashes = {first: prev} if first in at else {}
    last = await conn.scalar(text("SELECT coalesce(max(position), 0) FROM audit_seal"))
    links = max(last - first, 0)
    parts = max(1, min(VERIFY_PARTS, links // VERIFY_PART_MIN))
    size = -(-links // parts) if links else 0
    ranges = [_Range(first + 1 + i * size, min(first + (i + 1) * size, last)) for i in range(parts)] if links else []
    dsn = conn.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    done = await asyncio.gather(*(_verify_range(dsn, r, at) for r in ranges))
    count = first
    for part in done:
        problem = part.problem
        if part.first_prev is not None and part.first_prev != prev and not (problem and problem[0] == part.first):
            problem = (part.first, f"the seal of event {part.first_seq} does not follow from the previous one", prev)
        if problem:
            position, reason, before = problem
            hashes.update({p: h for p, h in part.at.items() if p < position})
            head: bytes = before if before is not None else prev
            return Verification(position - 1, await _unsealed(conn), broken_at=position, reason=reason, head=head, at=hashes)
        hashes.update(part.at)
        count = part.last
        if part.end is not None:  # every range holds links: it has an end
            prev = part.end
    stray = await _stray(conn)
    if stray:
        return Verification(count, await _unsealed(conn), broken_at=stray[0] or count + 1, reason=stray[1], head=prev, at=hashes)
    return Verification(sealed=count, unsealed=await _unsealed(conn), head=prev, at=hashes)


async def _stray(conn: AsyncConnection) -> tuple[int | None, str] | None:
    """The first unsealed event that cannot be a late commit: the link it sits in front of, and why.

    A late commit's transaction began before its sequence number was drawn, hence before every
    later-numbered event committed and was sealed; and the sealer never seals an event older
    than its horizon (LATE_COMMIT_WINDOW before the last seal), so such an event is not late.
    """
    row = (
        await conn.execute(
            text(
                """
                WITH horizon AS (SELECT sealed_at - CAST(:window AS interval) AS at FROM audit_seal ORDER BY position DESC LIMIT 1)
                SELECT e.seq, e.occurred_at <= horizon.at AS too_old,
                       (SELECT min(s.position) FROM audit_seal s WHERE s.event_seq > e.seq) AS link
                FROM audit_event e, horizon
                WHERE NOT EXISTS (SELECT 1 FROM audit_seal s WHERE s.event_seq = e.seq)
                  AND (e.occurred_at <= horizon.at
                       OR EXISTS (SELECT 1 FROM audit_seal s WHERE s.event_seq > e.seq AND s.sealed_at < e.occurred_at))
                ORDER BY e.seq
                LIMIT 1
                """
            ),
            {"window": LATE_COMMIT_WINDOW},
        )
    ).first()
    if row is None:
        return None
    why = "is older than the sealed chain" if row.too_old else "is dated after the seal of a later event"
    return row.link, f"event {row.seq} {why} but not in it: it was inserted afterwards"


async def _unsealed(conn: AsyncConnection) -> int:
    count = await conn.scalar(
        text("SELECT count(*) FROM audit_event e WHERE NOT EXISTS (SELECT 1 FROM audit_seal s WHERE s.event_seq = e.seq)")
    )
    return int(count)


@dataclass
class SealStatus:
    """For monitoring: how far the sealer is behind (cheap enough to ask at every scrape)."""

    sealed: int  # links in the chain
    unsealed: int  # events past the last one sealed
    lag_seconds: float  # age of the oldest of those; 0 when there is none


async def seal_status(conn: AsyncConnection) -> SealStatus:
    """Counted from the last sealed event on, by index: no walk over the whole trail."""
    row = (
        await conn.execute(
            text(
                """
                WITH head AS (SELECT coalesce(max(position), 0) AS sealed, coalesce(max(event_seq), 0) AS seq FROM audit_seal)
                SELECT head.sealed, count(e.seq) AS unsealed,
                       coalesce(extract(epoch FROM clock_timestamp() - min(e.occurred_at)), 0) AS lag
                FROM head LEFT JOIN audit_event e ON e.seq > head.seq
                GROUP BY head.sealed
                """
            )
        )
    ).one()
    return SealStatus(sealed=row.sealed, unsealed=row.unsealed, lag_seconds=float(row.lag))
