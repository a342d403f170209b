"""The hash chain: `registry audit verify` accepts an intact trail and names the first broken link of
a tampered one (an event altered, removed or forged, a seal removed or rewritten), exiting 1; and
concurrent writers with concurrent sealers never break or fork the chain (DESIGN section 6).

Each case runs on a database of its own, copied from one sealed trail of events of an hour ago."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from audit_support import registry, separate_database
from registry.access.principal import Principal
from registry.audit import chain, trail
from registry.config import Settings
from registry.db.engine import create_engine, create_sessionmaker
from registry.db.migrate import upgrade

EVENTS = 30
GAP_AFTER = 15  # the 16th sequence number is taken by a transaction that rolls back
ANALYST = Principal(id="analyst-7", name="Alex Analyst", agency="CUTA", roles=frozenset({"analyst"}))
TRIGGERS = ("audit_event_append_only", "audit_seal_append_only")
EVENT_DIGEST = f"sha256(convert_to({chain.EVENT_TEXT}, 'UTF8'))"  # an event's digest, as an intruder takes it in SQL


@dataclass
class Trail:
    template: str
    settings: Settings
    gap: int  # a sequence number no committed event has


async def write_events(url: str, settings: Settings, count: int, *, gap_after: int | None = None) -> int | None:
    """`count` committed events; returns the sequence number of the rolled-back one, if asked for."""
    engine = create_engine(url, settings)
    sessions = create_sessionmaker(engine)
    gap = None
    try:
        for i in range(count):
            if i == gap_after:
                async with sessions() as session:
                    await trail.record(session, trail.Actor(ANALYST, request_id="rolled-back"), "records.consulted")
                    gap = await session.scalar(text("SELECT max(seq) FROM audit_event"))
                    await session.rollback()
            async with sessions.begin() as session:
                await trail.record(
                    session,
                    trail.Actor(ANALYST, request_id=uuid.uuid4().hex, operation="Subject", purpose="THREAT_ASSESSMENT"),
                    "records.consulted",
                    subject_ids=[uuid.uuid4()],
                    records=[{"type": "Subject", "id": str(uuid.uuid4()), "fields": ["givenName", "id"]}],
                )
    finally:
        await engine.dispose()
    return gap


async def as_owner(url: str, settings: Settings, *statements: str, **params) -> None:
    """Run `statements` as the database owner with the append-only triggers off, as an intruder would."""
    engine = create_engine(url, settings, as_owner=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
            for trigger in TRIGGERS:
                await conn.execute(text(f"ALTER TABLE {trigger.rsplit('_append_only')[0]} DISABLE TRIGGER {trigger}"))
            for statement in statements:
                await conn.execute(text(statement), params)
            for trigger in TRIGGERS:
                await conn.execute(text(f"ALTER TABLE {trigger.rsplit('_append_only')[0]} ENABLE TRIGGER {trigger}"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def sealed_trail(server_url, tmp_path_factory):
    """A migrated database holding EVENTS events of an hour ago, with a gap, all sealed."""
    name = f"registry_chain_{os.getpid()}"
    async with separate_database(server_url, name) as url:
        settings = Settings(database_url=url, data_dir=tmp_path_factory.mktemp("chain"))
        owner = create_engine(url, settings, as_owner=True)
        await upgrade(owner)
        await owner.dispose()
        gap = await write_events(url, settings, EVENTS, gap_after=GAP_AFTER)
        await as_owner(url, settings, "UPDATE audit_event SET occurred_at = occurred_at - interval '1 hour'")
        owner = create_engine(url, settings, as_owner=True)
        assert await chain.seal_all(owner) == EVENTS
        await owner.dispose()
        yield Trail(name, settings, gap)


@pytest.fixture
async def copy(sealed_trail, server_url):
    """A fresh copy of the sealed trail, for one test to damage."""
    async with separate_database(server_url, f"{sealed_trail.template}_{uuid.uuid4().hex[:8]}", template=sealed_trail.template) as url:
        yield url


async def verify(url: str, tmp_path, *flags: str) -> tuple[int, str]:
    code, out, err = await registry("audit", "verify", *flags, database_url=url, data_dir=tmp_path)
    assert not err.strip() or code != 0, err
    return code, out


def broken_at(out: str) -> tuple[int, str]:
    found = re.search(r"audit chain BROKEN at link (\d+): (.*)", out)
    assert found, out
    return int(found.group(1)), found.group(2)


async def test_an_intact_chain_verifies(copy, tmp_path):
    code, out = await verify(copy, tmp_path)
    assert code == 0, out
    assert f"audit chain intact: {EVENTS} events sealed and verified; 0 not yet sealed" in out
    # And it prints the head, to be recorded out of the database owner's reach
    engine = create_engine(copy, Settings(database_url=copy), as_owner=True)
    async with engine.connect() as conn:
        head = await conn.scalar(text("SELECT hash FROM audit_seal ORDER BY position DESC LIMIT 1"))
    await engine.dispose()
    assert f"chain head: link {EVENTS} {bytes(head).hex()}" in out


async def test_verifying_takes_as_long_as_the_trail_needs(copy, tmp_path, monkeypatch):
    # given a statement timeout far shorter than reading the trail takes (it is the requests' limit)
    monkeypatch.setenv("REGISTRY_STATEMENT_TIMEOUT_MS", "1")
    # then the operator's verification is not cancelled
    code, out = await verify(copy, tmp_path)
    assert code == 0, out
    assert f"audit chain intact: {EVENTS} events sealed and verified" in out


async def test_events_sealed_before_their_records_were_kept_as_written_still_verify(server_url, tmp_path):
    # given events written and sealed while the records were stored as jsonb (before migration 0004)
    async with separate_database(server_url, f"registry_chain_0003_{os.getpid()}") as url:
        settings = Settings(database_url=url, data_dir=tmp_path)
        owner = create_engine(url, settings, as_owner=True)
        await upgrade(owner, "0003")
        await write_events(url, settings, 5)
        assert await chain.seal_all(owner) == 5
        # when the database is migrated to keep records as written
        await upgrade(owner)
        await owner.dispose()
        # then the chain sealed before still verifies
        code, out = await verify(url, tmp_path)
    assert code == 0, out
    assert "audit chain intact: 5 events sealed and verified" in out


async def test_the_unsealed_tail_is_reported_and_sealed_on_request(copy, sealed_trail, tmp_path):
    # Given events written since the last seal
    await write_events(copy, sealed_trail.settings, 3)

    # When verifying, then verifying with --seal
    code, out = await verify(copy, tmp_path)
    sealed_code, sealed_out = await verify(copy, tmp_path, "--seal")

    # Then the first reports the unsealed tail, the second seals and verifies it
    assert code == 0 and f"{EVENTS} events sealed and verified; 3 not yet sealed" in out
    assert sealed_code == 0 and f"{EVENTS + 3} events sealed and verified; 0 not yet sealed" in sealed_out


async def test_a_column_added_by_a_later_migration_leaves_the_chain_valid(copy, sealed_trail, tmp_path):
    # Given a later migration that adds a column to the events (old rows hold NULL in it)
    await as_owner(copy, sealed_trail.settings, "ALTER TABLE audit_event ADD COLUMN client_address text")

    # Then the events sealed before it still verify
    code, out = await verify(copy, tmp_path)
    assert code == 0, out
    assert f"audit chain intact: {EVENTS} events sealed and verified" in out


class Stored(str):
    """JSON text kept as written (an event's records): taken as it is."""


def canonical(value) -> str:
    """An event as the chain hashes it, rebuilt here: keys shorter first, then by bytes."""
    if isinstance(value, Stored):
        return value
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(f"{canonical(k)}: {canonical(value[k])}" for k in keys) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(canonical(v) for v in value) + "]"
    if isinstance(value, datetime):
        moment = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
        return f'"{moment}+00:00"'
    if isinstance(value, uuid.UUID):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


async def test_an_events_digest_can_be_recomputed_outside_the_database(copy, sealed_trail):
    # given an event with quotes, a backslash, a line break and non-ASCII text, nulls and lists
    engine = create_engine(copy, sealed_trail.settings)
    actor = trail.Actor(
        Principal(id="dpo-1", name='Dana "DPO" Ørsted\\n', agency=None, roles=frozenset({"dpo", "analyst"})),
        request_id="digest-check", justification="line one\nline two \u00e9\t\u2603",
    )
    async with create_sessionmaker(engine).begin() as session:
        await trail.record(session, actor, "records.consulted", subject_ids=[uuid.uuid4(), uuid.uuid4()], break_glass=True,
                           records=[{"type": "Subject", "id": str(uuid.uuid4()), "fields": ["givenName", "id"]}],
                           detail={"versionBefore": None, "versionAfter": 3, "a": [1, {"bb": True, "c": "x"}]})
    async with engine.connect() as conn:
        await conn.execute(text("SET TimeZone = 'UTC'"))
        row = (await conn.execute(
            text(f"SELECT e.*, e.records::text AS stored, {chain.EVENT_TEXT} AS event"
                 " FROM audit_event e WHERE request_id = 'digest-check'")
        )).mappings().one()
    await engine.dispose()
    # then the text the chain seals is the event as one JSON object, which anyone can rebuild
    event = {column: row[column] for column in chain.EVENT_COLUMNS} | {"records": Stored(row["stored"])}
    assert row["event"] == canonical(event)
    assert chain.digest(row["event"]) == hashlib.sha256(canonical(event).encode()).digest()


EVENT_10 = "seq = 10"


async def test_an_altered_event_is_detected(copy, sealed_trail, tmp_path):
    await as_owner(copy, sealed_trail.settings, f"UPDATE audit_event SET actor_name = 'Someone Else' WHERE {EVENT_10}")
    code, out = await verify(copy, tmp_path)
    assert code == 1 and broken_at(out) == (10, "event 10 was altered")


async def test_an_altered_field_deep_in_an_event_is_detected(copy, sealed_trail, tmp_path):
    await as_owner(copy, sealed_trail.settings, f"UPDATE audit_event SET records = '[]' WHERE {EVENT_10}")
    code, out = await verify(copy, tmp_path)
    assert code == 1 and broken_at(out) == (10, "event 10 was altered")


async def test_a_removed_event_is_detected(copy, sealed_trail, tmp_path):
    await as_owner(copy, sealed_trail.settings, f"DELETE FROM audit_event WHERE {EVENT_10}")
    code, out = await verify(copy, tmp_path)
    assert code == 1 and broken_at(out) == (10, "event 10 was removed")


async def test_a_removed_seal_is_detected(copy, sealed_trail, tmp_path):
    await as_owner(copy, sealed_trail.settings, "DELETE FROM audit_seal WHERE position = 10")
    code, out = await verify(copy, tmp_path)
    assert code == 1 and broken_at(out) == (10, "link 10 is missing (next is 11)")


async def test_an_event_removed_with_its_seal_is_detected(copy, sealed_trail, tmp_path):
    await as_owner(copy, sealed_trail.settings, f"DELETE FROM audit_event WHERE {EVENT_10}", "DELETE FROM audit_seal WHERE event_seq = 10")
    code, out = await verify(copy, tmp_path)
    assert code == 1 and broken_at(out) == (10, "link 10 is missing (next is 11)")


async def test_an_altered_event_with_a_recomputed_seal_is_detected(copy, sealed_trail, tmp_path):
    # The intruder alters the event and rewrites its seal to match: the next link no longer follows
    await as_owner(
        copy,
        sealed_trail.settings,
        f"UPDATE audit_event SET justification = 'nothing to see' WHERE {EVENT_10}",
        f"""UPDATE audit_seal s SET event_digest = {EVENT_DIGEST},
                   hash = sha256(s.prev_hash || int8send(s.position) || {EVENT_DIGEST})
            FROM audit_event e WHERE e.seq = s.event_seq AND e.{EVENT_10}""",
    )
    code, out = await verify(copy, tmp_path)
    assert code == 1 and broken_at(out) == (11, "the seal of event 11 does not follow from the previous one")


FORGE = """
INSERT INTO audit_event (seq, id, occurred_at, action, outcome, actor_id, actor_name, actor_agency, actor_roles,
                         purpose, break_glass, subject_ids, records, detail)
SELECT CAST(:gap AS bigint), gen_random_uuid(), {occurred_at}, 'records.consulted', 'ok', actor_id, actor_name, actor_agency,
       actor_roles, purpose, false, subject_ids, records, detail
FROM audit_event WHERE seq = CAST(:gap AS bigint) - 1
"""


@pytest.mark.parametrize("dated", ["like_its_neighbours", "now"])
async def test_a_forged_event_slipped_into_the_middle_is_detected(copy, sealed_trail, tmp_path, dated):
    # Given a forged event in the gap between two sealed ones (dated like them, or now)
    occurred_at = "occurred_at" if dated == "like_its_neighbours" else "now()"
    await as_owner(copy, sealed_trail.settings, FORGE.format(occurred_at=occurred_at), gap=sealed_trail.gap)

    # Then verify names the link it was slipped in front of
    code, out = await verify(copy, tmp_path)
    assert code == 1, out
    why = "is older than the sealed chain" if dated == "like_its_neighbours" else "is dated after the seal of a later event"
    assert broken_at(out) == (GAP_AFTER + 1, f"event {sealed_trail.gap} {why} but not in it: it was inserted afterwards")


async def test_a_forged_event_spliced_into_the_chain_with_a_seal_is_detected(copy, sealed_trail, tmp_path):
    # Given a forged event in the gap, and a seal for it spliced in at its place, linked to the previous one
    gap, at = sealed_trail.gap, GAP_AFTER + 1
    await as_owner(
        copy,
        sealed_trail.settings,
        FORGE.format(occurred_at="occurred_at"),
        "UPDATE audit_seal SET position = position + 1000000 WHERE position >= CAST(:at AS bigint)",
        "UPDATE audit_seal SET position = position - 1000000 + 1 WHERE position >= 1000000",
        f"""INSERT INTO audit_seal (position, event_seq, event_digest, prev_hash, hash)
            SELECT CAST(:at AS bigint), e.seq, {EVENT_DIGEST}, p.hash, sha256(p.hash || int8send(CAST(:at AS bigint)) || {EVENT_DIGEST})
            FROM audit_event e, audit_seal p WHERE e.seq = CAST(:gap AS bigint) AND p.position = CAST(:at AS bigint) - 1""",
        gap=gap,
        at=at,
    )

    # Then its own link holds, and the next one breaks
    code, out = await verify(copy, tmp_path)
    assert code == 1 and broken_at(out) == (at + 1, f"the seal of event {gap + 1} does not follow from the previous one")


async def test_concurrent_writers_and_sealers_build_one_chain(server_url, tmp_path):
    """Many transactions commit events out of order while three sealers run: every committed event
    is sealed exactly once, in one unbroken chain."""
    async with separate_database(server_url, f"registry_chain_load_{os.getpid()}") as url:
        settings = Settings(database_url=url, data_dir=tmp_path)
        owner = create_engine(url, settings, as_owner=True)
        await upgrade(owner)
        await owner.dispose()
        writers_engine = create_engine(url, settings, pool_size=20)
        sealer_engines = [create_engine(url, settings, pool_size=1) for _ in range(3)]
        sessions = create_sessionmaker(writers_engine)
        committed: list[str] = []
        rng = random.Random(7)

        async def writer(n: int) -> None:
            for i in range(8):
                rid = f"w{n}-{i}"
                async with sessions() as session:
                    for _ in range(rng.randint(1, 3)):
                        await trail.record(session, trail.Actor(ANALYST, request_id=rid), "records.consulted")
                        await asyncio.sleep(rng.random() * 0.02)  # commits land out of sequence order
                    if rng.random() < 0.2:
                        await session.rollback()
                    else:
                        await session.commit()
                        committed.append(rid)

        sealers = [asyncio.create_task(chain.run_sealer(engine, 0.005)) for engine in sealer_engines]
        try:
            await asyncio.gather(*(writer(n) for n in range(40)))
            async with writers_engine.connect() as conn:
                sealed_while_writing = await conn.scalar(text("SELECT count(*) FROM audit_seal"))
            for _ in range(100):  # more rounds, each reading only what its process has not seen yet
                await asyncio.sleep(0.1)
                async with writers_engine.connect() as conn:
                    left_by_the_sealers = await conn.scalar(
                        text("SELECT count(*) FROM audit_event e WHERE NOT EXISTS (SELECT 1 FROM audit_seal s WHERE s.event_seq = e.seq)")
                    )
                if left_by_the_sealers == 0:
                    break
        finally:
            for task in sealers:
                task.cancel()
            await asyncio.gather(*sealers, return_exceptions=True)
        await chain.seal_all(writers_engine)

        async with writers_engine.begin() as conn:
            result = await chain.verify(conn)
            events = await conn.scalar(text("SELECT count(*) FROM audit_event"))
            requests = {r for (r,) in await conn.execute(text("SELECT DISTINCT request_id FROM audit_event"))}
            seals = (
                await conn.execute(text("SELECT count(*), count(DISTINCT event_seq), min(position), max(position) FROM audit_seal"))
            ).one()
            unsealed = await conn.scalar(
                text("SELECT count(*) FROM audit_event e WHERE NOT EXISTS (SELECT 1 FROM audit_seal s WHERE s.event_seq = e.seq)")
            )
        for engine in (writers_engine, *sealer_engines):
            await engine.dispose()

        assert requests == set(committed)
        assert sealed_while_writing > 0 and left_by_the_sealers == 0
        assert result.ok and (result.sealed, result.unsealed) == (events, 0), result
        assert tuple(seals) == (events, events, 1, events) and unsealed == 0


async def test_a_round_that_reads_only_what_is_new_still_seals_a_late_commit(server_url, tmp_path):
    async with separate_database(server_url, f"registry_chain_late_{os.getpid()}") as url:
        settings = Settings(database_url=url, data_dir=tmp_path)
        owner = create_engine(url, settings, as_owner=True)
        await upgrade(owner)
        engine = create_engine(url, settings)
        sessions = create_sessionmaker(engine)
        try:
            # Given an event whose transaction is still open while two later ones commit and are sealed
            async with sessions() as late:
                await trail.record(late, trail.Actor(ANALYST, request_id="late"), "records.consulted")
                late_seq = await late.scalar(text("SELECT max(seq) FROM audit_event"))
                await write_events(url, settings, 2)
                async with owner.begin() as conn:
                    first = await chain.seal(conn)
                assert first.sealed == 2 and first.seen.gaps == (late_seq,)
                await late.commit()

            # When the next round reads only the gaps and what is above them
            async with owner.begin() as conn:
                second = await chain.seal(conn, seen=first.seen)

            # Then the late event is sealed, and the whole chain verifies with nothing left over
            assert second.sealed == 1 and second.seen.gaps == ()
            async with owner.begin() as conn:
                result = await chain.verify(conn)
            assert result.ok and (result.sealed, result.unsealed) == (3, 0), result
        finally:
            await engine.dispose()
            await owner.dispose()


@pytest.mark.parametrize("seq, broken", [(None, None), (7, (8, "the seal of event 8 does not follow from the previous one")),
                                          (8, (9, "the seal of event 9 does not follow from the previous one"))])
async def test_a_chain_read_in_several_ranges_is_joined_where_they_meet(copy, sealed_trail, monkeypatch, seq, broken):
    # Given verify reading the 30 links in four ranges (1-8, 9-16, 17-24, 25-30)
    monkeypatch.setattr(chain, "VERIFY_PART_MIN", 7)
    if seq is not None:  # an event altered with its seal recomputed, at the end of a range or just before it
        await as_owner(
            copy, sealed_trail.settings,
            f"UPDATE audit_event SET justification = 'nothing to see' WHERE seq = {seq}",
            f"""UPDATE audit_seal s SET event_digest = {EVENT_DIGEST},
                       hash = sha256(s.prev_hash || int8send(s.position) || {EVENT_DIGEST})
                FROM audit_event e WHERE e.seq = s.event_seq AND e.seq = {seq}""",
        )
    engine = create_engine(copy, sealed_trail.settings, as_owner=True)
    try:
        async with engine.begin() as conn:
            result = await chain.verify(conn, at=frozenset({8, 9, 30}))
    finally:
        await engine.dispose()
    if broken is None:
        assert result.ok and result.sealed == EVENTS and set(result.at) == {8, 9, 30} and result.head == result.at[30]
    else:
        assert (result.broken_at, result.reason) == broken and result.sealed == broken[0] - 1
