#!/usr/bin/env bash
# Time from launching `orchardmap serve` to the first successful GET /healthz, and the server's RSS then.
#
#   scripts/startup.sh DB [RUNS]
#
# Make a 1,000,000-tree SQLite database first (about 20 s):
#   cargo run --release -p orchardmap-store --example synthetic -- /tmp/big.db 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
DB="${1:?usage: scripts/startup.sh DB [RUNS]}"
RUNS="${2:-3}"
[ -f "$DB" ] || { echo "$DB: no such file (see the header of this script)" >&2; exit 1; }
cargo build --release -q -p orchardmap --bin orchardmap
LOG="$(mktemp)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -f "$LOG"' EXIT
for run in $(seq 1 "$RUNS"); do
  start=$(date +%s.%N)
  RUST_LOG=info target/release/orchardmap serve --db "$DB" --bind 127.0.0.1:18090 2>"$LOG" >/dev/null &
  pid=$!
  until health=$(curl -sf http://127.0.0.1:18090/healthz 2>/dev/null); do
    kill -0 "$pid" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
    sleep 0.02
  done
  end=$(date +%s.%N)
  rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  timings=$(grep -o 'read_ms=[0-9]*\|index_ms=[0-9]*' "$LOG" | tr '\n' ' ')
  python3 -c 'import sys; r, s, e, kb, t, h = sys.argv[1:]; print(f"run {r}: /healthz after {float(e) - float(s):.2f} s, RSS {int(kb) / 1024:.0f} MiB, {t}{h}")' \
    "$run" "$start" "$end" "$rss_kb" "$timings" "$health"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
