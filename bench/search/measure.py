"""Measures searchSubjects over HTTP: latency one request at a time, then throughput under load.

  python bench/search/measure.py URL QUERIES.jsonl --passes 3 --concurrency 16 --seconds 20 [--wrk]

1. Sequential: every request of QUERIES.jsonl, `passes` times (after one warm-up pass): p50,
   p95, p99 in ms, and whether each answer holds its subject in the top 3 (recall@3 at scale).
2. Load at `concurrency`: with wrk (bench/post.lua) when --wrk is given and wrk is installed,
   else with as many Python clients in this process (a bounded load: the client itself takes
   CPU from the server on a small machine; say which one was used). Prints one JSON line.
Environment: TOKEN (bearer), PURPOSE (Registry-Purpose).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {os.environ['TOKEN']}", "Registry-Purpose": os.environ.get("PURPOSE", "CASE_SUPERVISION"),
            "Content-Type": "application/json"}


async def sequential(url: str, requests: list[dict], passes: int) -> dict:
    latencies, hits, errors = [], 0, 0
    async with httpx.AsyncClient(headers=headers(), timeout=30) as client:
        for round_ in range(passes + 1):
            for item in requests:
                t0 = time.perf_counter()
                response = await client.post(url, content=json.dumps(item["body"]))
                elapsed = (time.perf_counter() - t0) * 1000
                answer = response.json()
                if response.status_code != 200 or answer.get("errors"):
                    errors += 1
                    continue
                if round_ == 0:  # warm-up pass: quality counted once
                    ids = [e["node"]["id"] for e in answer["data"]["searchSubjects"]["edges"][:3]]
                    hits += item["expect"] in ids
                else:
                    latencies.append(elapsed)
    return {"mode": "sequential", "requests": len(latencies), "p50_ms": round(percentile(latencies, 50), 2),
            "p95_ms": round(percentile(latencies, 95), 2), "p99_ms": round(percentile(latencies, 99), 2),
            "mean_ms": round(statistics.mean(latencies), 2), "errors": errors, "recall_at_3": round(hits / len(requests), 3)}


async def python_load(url: str, requests: list[dict], concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    bodies = [json.dumps(item["body"]) for item in requests]

    async def client_loop(offset: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(headers=headers(), timeout=30) as client:
            i = offset
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                response = await client.post(url, content=bodies[i % len(bodies)])
                latencies.append((time.perf_counter() - t0) * 1000)
                if response.status_code != 200 or b'"errors"' in response.content:
                    errors += 1
                i += concurrency

    t0 = time.perf_counter()
    await asyncio.gather(*(client_loop(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return {"mode": f"python c={concurrency}", "requests": len(latencies), "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(percentile(latencies, 50), 2), "p95_ms": round(percentile(latencies, 95), 2),
            "p99_ms": round(percentile(latencies, 99), 2), "errors": errors}


def wrk_load(url: str, requests: list[dict], concurrency: int, seconds: float, work: Path) -> dict:
    bodies = work / "search-bodies.jsonl"
    bodies.write_text("".join(json.dumps(item["body"], ensure_ascii=False) + "\n" for item in requests))
    env = {**os.environ, "BODIES": str(bodies), "PURPOSE": os.environ.get("PURPOSE", "CASE_SUPERVISION")}
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "--timeout", "30s",
                          "-s", str(HERE.parent / "post.lua"), url], env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"mode": f"wrk c={concurrency}", **{k: result[k] for k in ("requests", "rps", "p50_ms", "p95_ms", "p99_ms", "errors")}}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("queries")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--wrk", action="store_true")
    args = parser.parse_args()
    requests = [json.loads(line) for line in Path(args.queries).read_text().splitlines()]
    print(json.dumps(await sequential(args.url, requests, args.passes)), flush=True)
    if args.wrk and shutil.which("wrk"):
        print(json.dumps(wrk_load(args.url, requests, args.concurrency, args.seconds, Path(args.queries).parent)))
    else:
        print(json.dumps(await python_load(args.url, requests, args.concurrency, args.seconds)))


if __name__ == "__main__":
    asyncio.run(main())
