#!/usr/bin/env bash
# searchSubjects benchmark, end to end:  bash bench/search/run.sh
#
# For each size in SIZES: a database of the benchmark's own PostgreSQL (bench/pg.py, under
# $BENCH_D) migrated with `registry migrate` and seeded with that many subjects
# (bench/search/seed.py, once, kept between runs); 200 realistic search requests built from
# the seeded names (bench/search/queries.py); `registry serve` (authorization, purpose and audit
# on) queried as a referral officer of the agency, whose row scope holds every subject (the
# worst case: nothing is left out before ranking). bench/search/measure.py then measures
# latency one request at a time (p50/p95/p99 over PASSES passes, recall@3 of the 200 requests)
# and throughput at CONC concurrent connections (wrk and bench/post.lua when wrk is installed;
# apt-get installs it when possible; else a bounded Python load, named in the results).
# Results: bench/results/search-<UTC time>/results.jsonl and versions.txt (git-ignored).
#
# Knobs (environment), defaults in brackets: SIZES ["20000 200000"]  PASSES [3]  CONC [16]
#   DURATION [20] seconds of load  WORKERS [2]  POOL [10] (REGISTRY_DB_POOL_SIZE per worker)
#   FORCE_SEED [0]  1: drop the databases, migrate and seed them again
#   BENCH_D [/tmp/registry-search-bench]  PG_PORT [25452] (below the ephemeral port range: a client socket cannot hold it)  OUR_PORT [5075]  VENV [<repo>/.venv]
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BENCH_D="${BENCH_D:-/tmp/registry-search-bench}"
PG_PORT="${PG_PORT:-25452}"
OUR_PORT="${OUR_PORT:-5075}"
SIZES="${SIZES:-20000 200000}"
PASSES="${PASSES:-3}"
CONC="${CONC:-16}"
DURATION="${DURATION:-20}"
WORKERS="${WORKERS:-2}"
POOL="${POOL:-10}"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
RES="$ROOT/bench/results/search-$(date -u +%Y%m%dT%H%M%SZ)"
DATA="$BENCH_D/registry-data"
mkdir -p "$BENCH_D" "$DATA" "$RES"
log() { echo "[search-bench $(date +%H:%M:%S)] $*"; }

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null 2>&1 || true
WRK_FLAG=""; command -v wrk >/dev/null && WRK_FLAG="--wrk"

OUR_PID=""
cleanup() {
  if [ -n "$OUR_PID" ] && kill -0 "$OUR_PID" 2>/dev/null; then kill "$OUR_PID"; wait "$OUR_PID" 2>/dev/null || true; fi
  "$PY" "$ROOT/bench/pg.py" stop "$BENCH_D/pgdata" || true
}
trap cleanup EXIT

log "PostgreSQL on 127.0.0.1:$PG_PORT ($BENCH_D/pgdata)"
"$PY" "$ROOT/bench/pg.py" start "$BENCH_D/pgdata" "$PG_PORT" >/dev/null 2>&1
{
  echo "started: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) x $(nproc)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "registry: workers=$WORKERS pool=$POOL; load: ${WRK_FLAG:-python} c=$CONC for ${DURATION}s; passes=$PASSES"
} > "$RES/versions.txt"

for size in $SIZES; do
  dsn="postgresql://postgres@127.0.0.1:$PG_PORT/registry_search_$size"
  reg_env=(REGISTRY_DATABASE_URL="$dsn" REGISTRY_DATA_DIR="$DATA" REGISTRY_ENV=development
           REGISTRY_HOST=127.0.0.1 REGISTRY_PORT="$OUR_PORT" REGISTRY_DB_POOL_SIZE="$POOL")
  if [ "${FORCE_SEED:-0}" = 1 ]; then "$PY" "$ROOT/bench/pg.py" ensure-db "$dsn" --recreate; else "$PY" "$ROOT/bench/pg.py" ensure-db "$dsn"; fi
  env "${reg_env[@]}" "$VENV/bin/registry" migrate 2>&1 | tail -1
  (cd "$ROOT" && "$PY" "$HERE/seed.py" "$dsn" "$size")
  "$PY" "$HERE/queries.py" "$dsn" "$BENCH_D/queries-$size.jsonl"
  ( cd "$ROOT" && exec env "${reg_env[@]}" "$VENV/bin/registry" serve --host 127.0.0.1 --port "$OUR_PORT" \
      --workers "$WORKERS" ) > "$RES/registry-$size.log" 2>&1 &
  OUR_PID=$!
  for _ in $(seq 240); do curl -sf -o /dev/null "http://127.0.0.1:$OUR_PORT/readyz" && break; sleep 0.5; done
  TOKEN="$(env "${reg_env[@]}" "$VENV/bin/registry" token --role referral_officer --agency YOUTH 2>/dev/null)"
  log "$size subjects: measuring"
  TOKEN="$TOKEN" PURPOSE=CASE_SUPERVISION "$PY" "$HERE/measure.py" "http://127.0.0.1:$OUR_PORT/graphql" \
      "$BENCH_D/queries-$size.jsonl" --passes "$PASSES" --concurrency "$CONC" --seconds "$DURATION" $WRK_FLAG \
    | while read -r line; do echo "{\"subjects\": $size, ${line#\{}"; done | tee -a "$RES/results.jsonl"
  kill "$OUR_PID"; wait "$OUR_PID" 2>/dev/null || true; OUR_PID=""
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RES/versions.txt"
log "results in $RES"
