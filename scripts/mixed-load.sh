#!/usr/bin/env bash
# Mixed read/write load (90% reads, 10% PATCH by default) from 32 connections
# against `orchardmap serve` on a 1,000,000-tree SQLite database, then a check
# that every acknowledged write is in the database and in the index.
#
#   scripts/mixed-load.sh [DB] [SECONDS] [WRITE_PERCENT]
#
# DB defaults to /tmp/orchardmap-1m.db and is made when missing (about 15 s), with
#   cargo run --release -p orchardmap-store --example synthetic -- DB 1000000
# Load generator: examples/mixed_load.rs. Needs curl.
# PERF=1 also records `perf record -g` on the server for the whole run (perf.data in the temp dir, kept).
# The server's resident memory is sampled every 10 s of the run; the script prints it at the start, each
# minute and the end (the soak test: `scripts/mixed-load.sh /tmp/orchardmap-1m.db 600`).
set -euo pipefail
cd "$(dirname "$0")/.."
DB="${1:-/tmp/orchardmap-1m.db}"
SECONDS_RUN="${2:-30}"
# 11% of loop iterations are edits, which with the ETag reads some of them need
# (counted as reads) makes a little over 10% of all requests PATCH.
WRITE_PERCENT="${3:-11}"
CONNS=32
TREES=1000000

cargo build --release -q -p orchardmap --bin orchardmap
cargo build --release -q --example mixed_load
if [ ! -f "$DB" ]; then
  cargo build --release -q -p orchardmap-store --example synthetic
  rm -f "$DB.partial" "$DB.partial-wal" "$DB.partial-shm"
  target/release/examples/synthetic "$DB.partial" "$TREES"
  mv "$DB.partial" "$DB"
fi

TMP="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -z "${PERF:-}" ]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT

NAME="load-$(date +%Y%m%d-%H%M%S)-$$"
TOKEN=$(target/release/orchardmap user add --name "$NAME" --role volunteer --db "$DB" 2>/dev/null)
echo "account: $NAME (volunteer)"

RUST_LOG=warn target/release/orchardmap serve --db "$DB" --bind 127.0.0.1:0 >"$TMP/serve.out" 2>"$TMP/serve.err" &
SERVER_PID=$!
BASE=""
for _ in $(seq 1 1200); do
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/serve.err" >&2; exit 1; }
  BASE=$(grep -o 'http://[^ ]*' "$TMP/serve.out" 2>/dev/null | sed 's:/$::' || true)
  if [ -n "$BASE" ] && curl -sf "$BASE/healthz" >/dev/null 2>&1; then break; fi
  BASE=""
  sleep 0.1
done
[ -n "$BASE" ] || { echo "server did not become healthy" >&2; cat "$TMP/serve.err" >&2; exit 1; }
cat "$TMP/serve.out"
MAX_ID=$(grep -o 'serving [0-9]* trees' "$TMP/serve.out" | grep -o '[0-9]*')

PERF_PID=""
if [ -n "${PERF:-}" ]; then
  perf record -g -o "$TMP/perf.data" -p "$SERVER_PID" -- sleep "$SECONDS_RUN" >/dev/null 2>&1 &
  PERF_PID=$!
  echo "perf: recording to $TMP/perf.data"
fi

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0; }
( while kill -0 "$SERVER_PID" 2>/dev/null; do echo "$(date +%s) $(rss_kib)"; sleep 10; done ) >"$TMP/rss.log" &
RSS_PID=$!

status=0
target/release/examples/mixed_load --base "$BASE" --token "$TOKEN" --db "$DB" --seconds "$SECONDS_RUN" \
  --connections "$CONNS" --write-percent "$WRITE_PERCENT" --max-id "$MAX_ID" || status=$?
if [ -n "$PERF_PID" ]; then wait "$PERF_PID" || true; fi
kill "$RSS_PID" 2>/dev/null || true
echo "$(date +%s) $(rss_kib)" >>"$TMP/rss.log"
awk 'NR == 1 { t0 = $1; first = $2 } { if ($2 > max) max = $2; last = $2; m = int(($1 - t0) / 60)
       if (!(m in seen)) { seen[m] = 1; printf "server RSS at %4d s: %7.1f MiB\n", $1 - t0, $2 / 1024 } }
     END { printf "server RSS: start %.1f MiB, end %.1f MiB, peak %.1f MiB\n", first / 1024, last / 1024, max / 1024 }' \
  "$TMP/rss.log"
if [ -s "$TMP/serve.err" ]; then echo "server stderr (last lines):"; tail -5 "$TMP/serve.err"; fi
exit "$status"
