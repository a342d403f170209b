"""Subscription delivery benchmark: many WebSocket subscribers, events at a steady rate.

  .venv/bin/python bench/subscriptions.py [--subscribers 500] [--units 100] [--rate 100]
      [--duration 20] [--workers 2] [--server postgresql://postgres@127.0.0.1:5432/postgres]

Creates a fresh database `registry_bench_events` on the server, runs `registry serve --workers N`
on it, registers two subjects per unit and connects the subscribers (caseworkers, spread evenly
over the units, each subscribed to NOTE_ADDED with the note's id and text) over
graphql-transport-ws. A referral officer then adds notes over HTTP at a steady rate (open loop),
on subjects of every unit in turn, so each event is for the caseworkers of one unit.

Reports the delivery latency from commit to message (p50, p95, p99; measured from the moment
the mutation's response, sent after its commit, arrived), messages/s, messages missing, and the
server's peak RSS (all its processes). The figures depend on the machine's other load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from rss import tree  # noqa: E402

REGISTRY = Path(sys.executable).with_name("registry")
DATABASE = "registry_bench_events"
AGENCY = "YOUTH-BENCH"
SUBSCRIPTION = "subscription { registryEvents(types: [NOTE_ADDED]) { cursor type occurredAt note { id body } } }"
ADD_NOTE = "mutation($i: AddNoteInput!) { addNote(input: $i) { note { id } } }"
CREATE_SUBJECT = "mutation($i: CreateSubjectInput!) { createSubject(input: $i) { subject { id } } }"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def fresh_database(server: str) -> str:
    conn = await asyncpg.connect(server)
    await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    await conn.close()
    return server.rsplit("/", 1)[0] + "/" + DATABASE


async def wait_ready(base: str, process: subprocess.Popen) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if process.poll() is not None:
                raise SystemExit("registry serve exited")
            try:
                if (await client.get(f"{base}/readyz", timeout=2)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("registry serve never became ready")


def bis_number(n: int) -> tuple[str, str]:
    """A valid BIS number (birth month + 40) and the birth date it encodes."""
    from datetime import date, timedelta

    from registry.domain.national_number import check_digits

    born = date(2010, 1, 1) + timedelta(days=n // 900)
    body = f"{born:%y}{born.month + 40:02d}{born:%d}{n % 900 + 1:03d}"
    return body + check_digits(body, True), born.isoformat()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()

    url = await fresh_database(args.server)
    data_dir = Path(tempfile.mkdtemp(prefix="registry-bench-events-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(
        REGISTRY_DATABASE_URL=url,
        REGISTRY_DATA_DIR=str(data_dir),
        REGISTRY_LOG_LEVEL="WARNING",
        REGISTRY_SUBSCRIPTIONS_PER_PRINCIPAL="10000",
    )
    log = (data_dir / "server.log").open("w")
    process = subprocess.Popen(
        [str(REGISTRY), "serve", "--port", str(port), "--workers", str(args.workers)], env=env, stdout=log, stderr=log
    )
    try:
        await wait_ready(base, process)
        await run(args, url, base, data_dir, process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


async def run(args, url: str, base: str, data_dir: Path, server_pid: int) -> None:
    from registry.access.identity import DevelopmentIssuer
    from registry.config import Settings

    issuer = DevelopmentIssuer(Settings(data_dir=data_dir, port=int(base.rsplit(":", 1)[1])))
    owner = await asyncpg.connect(url)
    await owner.execute("INSERT INTO agency (code, name) VALUES ($1, 'Youth (bench)') ON CONFLICT DO NOTHING", AGENCY)
    await owner.close()
    officer = issuer.issue(role="referral_officer", agency=AGENCY, name="bench officer", ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {officer}", "Registry-Purpose": "REFERRAL"}
    units = [f"UNIT-{u:03d}" for u in range(args.units)]
    subjects: list[tuple[str, str]] = []  # (subject id, unit)
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as http:
        for n, unit in enumerate(units * 2):
            number, born = bis_number(n)
            variables = {"i": {"givenName": "Bench", "familyName": f"Subject {n}", "dateOfBirth": born,
                               "nationalNumber": number, "institution": unit, "legalStatus": "CONCERN"}}
            body = (await http.post("/graphql", json={"query": CREATE_SUBJECT, "variables": variables})).json()
            assert "errors" not in body, body
            subjects.append((body["data"]["createSubject"]["subject"]["id"], unit))

        # the subscribers: caseworkers spread evenly over the units
        received: dict[int, list[float]] = {}  # note number -> arrival times
        ws_url = base.replace("http://", "ws://") + "/graphql"

        closed: list[str] = []

        async def subscriber(n: int, ready: asyncio.Event) -> None:
            try:
                await _subscriber(n, ready)
            except websockets.ConnectionClosed as exc:
                closed.append(f"{exc.rcvd.code if exc.rcvd else exc.code}")

        async def _subscriber(n: int, ready: asyncio.Event) -> None:
            unit = units[n % len(units)]
            token = issuer.issue(role="caseworker", agency=AGENCY, unit=unit, name=f"caseworker {n}", ttl_seconds=3600)
            async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], max_queue=None, ping_interval=None) as ws:
                init = {"Authorization": f"Bearer {token}", "Registry-Purpose": "CASE_SUPERVISION"}
                await ws.send(json.dumps({"type": "connection_init", "payload": init}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": SUBSCRIPTION}}))
                ready.set()
                async for raw in ws:
                    now = time.perf_counter()
                    message = json.loads(raw)
                    if message["type"] == "next":
                        number = int(message["payload"]["data"]["registryEvents"]["note"]["body"].split()[1])
                        received.setdefault(number, []).append(now)

        readies = [asyncio.Event() for _ in range(args.subscribers)]
        tasks = []
        for n in range(args.subscribers):
            tasks.append(asyncio.create_task(subscriber(n, readies[n])))
            if n % 50 == 49:
                await asyncio.sleep(0.2)
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
        await asyncio.sleep(2)
        idle_rss = rss_mb(server_pid)

        per_unit = {u: sum(1 for n in range(args.subscribers) if units[n % len(units)] == u) for u in units}
        committed: dict[int, float] = {}
        failed: list[int] = []
        expected = 0
        total = int(args.rate * args.duration)
        started = time.perf_counter()
        peak_rss = idle_rss

        async def add(number: int) -> None:
            subject_id, unit = subjects[number % len(subjects)]
            variables = {"i": {"subjectId": subject_id, "body": f"bench {number}", "visibility": "SHARED"}}
            try:
                body = (await http.post("/graphql", json={"query": ADD_NOTE, "variables": variables})).json()
            except httpx.HTTPError:
                failed.append(number)
                return
            committed[number] = time.perf_counter()
            if "errors" in body:
                failed.append(number)

        pending = []
        for number in range(total):
            due = started + number / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(add(number)))
            expected += per_unit[subjects[number % len(subjects)][1]]
            if number % int(args.rate) == 0:
                peak_rss = max(peak_rss, rss_mb(server_pid))
        await asyncio.gather(*pending)
        sent_for = time.perf_counter() - started
        deadline = time.perf_counter() + 30
        while sum(len(v) for v in received.values()) < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)
            peak_rss = max(peak_rss, rss_mb(server_pid))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    latencies = [(t - committed[n]) * 1000 for n, times in received.items() if n in committed for t in times]
    arrivals = [t for times in received.values() for t in times]
    span = (max(arrivals) - started) if arrivals else 1.0
    result = {
        "subscribers": args.subscribers, "units": args.units, "workers": args.workers,
        "events_per_s_target": args.rate, "events": total, "events_per_s_sent": round(total / sent_for, 1),
        "messages_expected": expected, "messages": len(latencies), "messages_per_s": round(len(latencies) / span, 1),
        "p50_ms": round(percentile(latencies, 0.50), 1), "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1), "max_ms": round(max(latencies), 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "server_rss_idle_mb": round(idle_rss), "server_rss_peak_mb": round(peak_rss),
        "mutations_failed": len(failed), "subscribers_closed": len(closed), "close_codes": sorted(set(closed)),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
