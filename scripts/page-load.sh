#!/usr/bin/env bash
# Throughput of the public tree page, /t/{code}?lang=vi&8030={signature}, on random trees: what a
# scan of a trunk tag costs once the resolver has sent the phone to the page in its language. Also
# the resolver's redirect alone (/t/{code} without lang) and the QR PNG of a tag.
#
#   scripts/page-load.sh [DB] [SECONDS]
#
# DB defaults to /tmp/orchardmap-1m.db (1,000,000 synthetic trees, made on first use). `wrk -t2 -c32`
# on the same 2-core machine as the server. Needs wrk and python3 (wrk installed with apt-get when
# missing).
set -euo pipefail
cd "$(dirname "$0")/.."
DB="${1:-/tmp/orchardmap-1m.db}"
SECONDS_RUN="${2:-20}"
if ! command -v wrk >/dev/null; then
  { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
fi
cargo build --release -q -p orchardmap --bin orchardmap
if [ ! -f "$DB" ]; then
  cargo build --release -q -p orchardmap-store --example synthetic
  target/release/examples/synthetic "$DB.partial" 1000000
  mv "$DB.partial" "$DB"
fi

TMP="$(mktemp -d)"
PID=""
cleanup() {
  [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
  rm -rf "$TMP"
}
trap cleanup EXIT

PORT=18090
RUST_LOG=warn target/release/orchardmap serve --db "$DB" --bind 127.0.0.1:$PORT --keys "$TMP/keys.json" \
  --rate-limit 0 >"$TMP/serve.out" &
PID=$!
for _ in $(seq 1 1200); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null 2>&1 && break; sleep 0.1; done
echo "page-load: $(curl -s http://127.0.0.1:$PORT/healthz)"

# 20,000 random trees and the signed path of each one's tag.
python3 - "$DB" "$TMP/codes.txt" <<'PY'
import random, sqlite3, sys
con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
(n,) = con.execute("SELECT MAX(id) FROM trees").fetchone()
random.seed(7)
ids = random.sample(range(1, n + 1), min(20000, n))
with open(sys.argv[2], "w") as out:
    for i in ids:
        row = con.execute("SELECT code FROM trees WHERE id = ?", (i,)).fetchone()
        if row:
            out.write(row[0] + "\n")
PY
: > "$TMP/paths.txt"
head -n 2000 "$TMP/codes.txt" | while read -r code; do
  url=$(curl -s -D- -o /dev/null "http://127.0.0.1:$PORT/api/trees/$code/qr.svg" | tr -d '\r' | sed -n 's/^x-qr-content: //p')
  echo "${url#http://127.0.0.1:$PORT}" >> "$TMP/paths.txt"
done
echo "page-load: $(wc -l < "$TMP/paths.txt") signed tag links"

lua() {
  cat > "$TMP/$1.lua" <<LUA
local paths = {}
for line in io.lines("$2") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i] .. "$3")
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %s %.0f req/s p50 %.2f ms p99 %.2f ms errors %d non2xx3xx %d\n", "$1",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))
end
LUA
}
sed 's|^|/t/|' "$TMP/codes.txt" > "$TMP/bare.txt"
sed 's|^|/api/trees/|; s|$|/qr.png|' "$TMP/codes.txt" > "$TMP/png.txt"
lua page "$TMP/paths.txt" "&lang=vi"
lua redirect "$TMP/bare.txt" ""
lua qrpng "$TMP/png.txt" ""
for run in page redirect qrpng; do
  wrk -t2 -c32 -d"${SECONDS_RUN}s" -s "$TMP/$run.lua" http://127.0.0.1:$PORT | grep RESULT
done
echo "page-load: server RSS $(ps -o rss= -p "$PID" | awk '{printf "%.0f MiB", $1/1024}')"
