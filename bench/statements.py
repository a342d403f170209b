"""SQL statements per request, counted by pg_stat_statements.

  python bench/statements.py DSN GRAPHQL_URL BODIES TARGET QUERY [--warmup N] [--requests N]
                             [--round R] [--detail FILE]
Environment: TOKEN, PURPOSE (sent like post.lua sends them).

Sends --warmup requests (default 10), resets pg_stat_statements, sends --requests requests
(default 10), all one after the other (bodies round-robin; nothing is in flight at the reset),
and sums the `calls` of every statement run in the benchmark database, except those about
pg_stat_statements itself. The warm-up opens the connections and fills the statement caches
the counted requests use, so one-off per-connection set-up statements do not count. Prints
one JSON line, per request:
  statements     statements that are not transaction control and not the audit insert
  audit_inserts  INSERT INTO audit_event
  audit_in_statement  of `statements`, those that write the audit event themselves (a CTE)
  tx_control     BEGIN / COMMIT / ROLLBACK / SAVEPOINT / RELEASE of the requests
  background     the audit sealer's statements, BEGIN/COMMIT of its rounds included (one
                 round per pg_try_advisory_xact_lock call): not caused by the request
The target "at most 2 SQL statements per read request plus the audit insert" reads
`statements <= 2` and `audit_inserts + audit_in_statement == 1`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
import urllib.request
from pathlib import Path

import asyncpg

STATS = "bench_stats"  # the schema that bench/pg.py creates the extension in
TX_CONTROL = re.compile(r"^\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)
AUDIT_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+\"?audit_event\"?", re.I)
# the sealer (registry/audit/chain.py) runs in the background of each server process; asyncpg
# looks up a type's codec once per new connection (typeinfo_tree, with JIT off meanwhile)
BACKGROUND = re.compile(r"audit_seal|pg_try_advisory|SET\s+LOCAL\s+TimeZone|typeinfo_tree|set_config\('jit'", re.I)
# a read that writes its own audit event: a data-modifying CTE
AUDIT_IN_STATEMENT = re.compile(r"\bINSERT\s+INTO\s+\"?audit_event\"?", re.I)


def post(url: str, body: bytes) -> int:
    headers = {"Content-Type": "application/json"}
    if os.environ.get("TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["TOKEN"]
    if os.environ.get("PURPOSE"):
        headers["Registry-Purpose"] = os.environ["PURPOSE"]
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        return response.status


async def main(args: argparse.Namespace) -> None:
    bodies = [line.encode() for line in Path(args.bodies).read_text().splitlines() if line.strip()]
    conn = await asyncpg.connect(args.dsn)
    try:
        for i in range(args.warmup):
            await asyncio.to_thread(post, args.url, bodies[i % len(bodies)])
        await conn.execute(f"SELECT {STATS}.pg_stat_statements_reset()")
        for i in range(args.requests):
            await asyncio.to_thread(post, args.url, bodies[i % len(bodies)])
        time.sleep(0.2)
        rows = await conn.fetch(
            f"""SELECT s.calls, s.query FROM {STATS}.pg_stat_statements s
                JOIN pg_database d ON d.oid = s.dbid AND d.datname = current_database()
                WHERE s.query NOT ILIKE '%pg_stat_statements%'
                ORDER BY s.calls DESC, s.query"""
        )
    finally:
        await conn.close()
    kinds = {"statements": 0, "audit_inserts": 0, "audit_in_statement": 0, "tx_control": 0, "background": 0}
    lines, sealer_rounds = [], 0
    for calls, query in rows:
        kind = ("tx_control" if TX_CONTROL.match(query) else "audit_inserts" if AUDIT_INSERT.match(query)
                else "background" if BACKGROUND.search(query) else "statements")
        kinds[kind] += calls
        if kind == "statements" and AUDIT_IN_STATEMENT.search(query):
            kinds["audit_in_statement"] += calls
        sealer_rounds += calls if "pg_try_advisory_xact_lock" in query else 0
        lines.append(f"  {calls / args.requests:6.2f}  {kind:13}  {' '.join(query.split())[:160]}")
    # each sealer round is one transaction: its BEGIN and COMMIT are background too
    moved = min(2 * sealer_rounds, kinds["tx_control"])
    kinds["tx_control"] -= moved
    kinds["background"] += moved
    if moved:
        lines.append(f"  (BEGIN/COMMIT of {sealer_rounds} sealer rounds moved from tx_control to background)")
    n = args.requests
    result = {"target": args.target, "round": args.round, "query": args.query, "stmt_requests": n,
              **{k: round(v / n, 2) for k, v in kinds.items()}}
    if args.detail:
        with open(args.detail, "a") as out:
            out.write(f"round {args.round} {args.target} {args.query}: per request over {n} requests\n" + "\n".join(lines) + "\n\n")
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("url")
    parser.add_argument("bodies")
    parser.add_argument("target")
    parser.add_argument("query")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--round", type=int, default=1)
    parser.add_argument("--detail")
    asyncio.run(main(parser.parse_args()))
