"""Results: one JSON line per measurement, and the markdown tables made from them.

  python bench/report.py record --wrk F --rss F --statements F --target T --round N --config C \
                                --query Q --concurrency C          -> prints one results.jsonl line
  python bench/report.py table RESULTS_JSONL                       -> markdown (results.md)

A record merges wrk's line (post.lua), the RSS sampler's line (rss.py) and the statement
counts of that target and query (statements.py, same round). The ratio table pairs each
round's registry measurements with PostGraphile's of the same round (measured alternately,
minutes apart) and checks them against the issue's targets:
  Q1 and Q2 req/s at concurrency 16 >= 1.5 x PostGraphile's;
  p99 at concurrency 64 <= PostGraphile's;
  at most 2 SQL statements per read request, plus the audit insert.
"""

from __future__ import annotations

import argparse
import json
import sys

RPS_TARGET, STATEMENTS_TARGET = 1.5, 2
REFERENCE = "postgraphile"


def last_json_line(path: str) -> dict:
    lines = [line for line in open(path) if line.strip().startswith("{")]
    if not lines:
        sys.exit(f"report: no JSON result in {path}")
    return json.loads(lines[-1])


def record(args: argparse.Namespace) -> None:
    row = {"target": args.target, "round": args.round, "config": args.config, "query": args.query,
           "concurrency": args.concurrency}
    row.update(last_json_line(args.wrk))
    row.update(last_json_line(args.rss))
    for line in open(args.statements):
        s = json.loads(line)
        if s["target"] == args.target and s["query"] == args.query and s.get("round") == args.round:
            row.update({k: s.get(k, 0) for k in ("statements", "audit_inserts", "audit_in_statement", "tx_control", "background", "stmt_requests")})
    print(json.dumps(row))


def fmt(value, digits=1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def statements_cell(r: dict) -> str:
    if "statements" not in r:
        return "–"
    cell = f"{r['statements']:g}"
    if r.get("audit_in_statement"):
        cell += " (audit insert inside)" if r["audit_in_statement"] == r["statements"] else f" ({r['audit_in_statement']:g} with the audit insert inside)"
    if r["audit_inserts"]:
        cell += f" + {r['audit_inserts']:g} audit"
    if r["tx_control"]:
        cell += f" (+{r['tx_control']:g} tx)"
    return cell


def table(path: str) -> None:
    rows = [json.loads(line) for line in open(path) if line.strip()]
    print("## Measurements\n")
    print("Statements per request: reads (the audit insert inside, or + audit inserts) (+ BEGIN/COMMIT/ROLLBACK); "
          "RSS: the server's process tree during the measurement.\n")
    print("| round | target | config | query | conc | req/s | p50 ms | p95 ms | p99 ms | max ms | requests "
          "| errors | statements/request | RSS peak MB | RSS mean MB |")
    print("|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        errors = str(r["errors"])
        if r["errors"]:
            errors += f" (sock {r['socket_errors']}, timeout {r['timeouts']}, http {r['non2xx']}, gql {r['gql_errors']})"
        print(f"| {r['round']} | {r['target']} | {r['config']} | {r['query']} | {r['concurrency']} | {r['rps']:.1f} "
              f"| {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['requests']} "
              f"| {errors} | {statements_cell(r)} | {fmt(r.get('rss_peak_mb'))} | {fmt(r.get('rss_mean_mb'))} |")

    print("\n## Ratios against PostGraphile (same round)\n")
    print(f"Targets: req/s at c=16 >= {RPS_TARGET}x PostGraphile's; p99 at c=64 <= PostGraphile's; "
          f"<= {STATEMENTS_TARGET} statements per read request + 1 audit insert.\n")
    print("| round | target | config | query | req/s c=16 ours / PG | ratio | p99 c=64 ours / PG ms | ratio "
          "| statements/request | meets targets |")
    print("|---:|---|---|---|---|---:|---|---:|---|---|")
    index = {(r["round"], r["target"], r["query"], r["concurrency"]): r for r in rows}
    seen = []
    for r in rows:
        key = (r["round"], r["target"], r["query"])
        if r["target"] == REFERENCE or key in seen:
            continue
        seen.append(key)
        rnd, target, query = key
        ours16, pg16 = index.get((rnd, target, query, 16)), index.get((rnd, REFERENCE, query, 16))
        ours64, pg64 = index.get((rnd, target, query, 64)), index.get((rnd, REFERENCE, query, 64))
        verdicts, rps_cell, rps_ratio, p99_cell, p99_ratio = [], "–", "–", "–", "–"
        if ours16 and pg16 and pg16["rps"]:
            ratio = ours16["rps"] / pg16["rps"]
            rps_cell, rps_ratio = f"{ours16['rps']:.1f} / {pg16['rps']:.1f}", f"{ratio:.2f}x"
            verdicts.append(ratio >= RPS_TARGET)
        if ours64 and pg64 and pg64["p99_ms"]:
            ratio = ours64["p99_ms"] / pg64["p99_ms"]
            p99_cell, p99_ratio = f"{ours64['p99_ms']:.0f} / {pg64['p99_ms']:.0f}", f"{ratio:.2f}x"
            verdicts.append(ratio <= 1.0)
        any_row = ours16 or ours64
        if any_row and "statements" in any_row:
            audits = any_row["audit_inserts"] + any_row.get("audit_in_statement", 0)
            verdicts.append(any_row["statements"] <= STATEMENTS_TARGET and audits <= 1)
        errors = sum(index[k]["errors"] for k in index if k[:3] == key)
        if errors:
            verdicts.append(False)
        verdict = ("yes" if all(verdicts) else "**no**") if verdicts else "–"
        if errors:
            verdict += f" ({errors} errors)"
        print(f"| {rnd} | {target} | {r['config']} | {query} | {rps_cell} | {rps_ratio} | {p99_cell} | {p99_ratio} "
              f"| {statements_cell(any_row) if any_row else '–'} | {verdict} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    for name in ("wrk", "rss", "statements", "target", "config", "query"):
        rec.add_argument(f"--{name}", required=True)
    rec.add_argument("--round", type=int, required=True)
    rec.add_argument("--concurrency", type=int, required=True)
    tab = sub.add_parser("table")
    tab.add_argument("results")
    args = parser.parse_args()
    record(args) if args.command == "record" else table(args.results)
