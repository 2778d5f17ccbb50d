#!/usr/bin/env bash
# Throughput of GET /api/trees/nearest against a minimal axum handler, same machine, same run.
#
#   scripts/load.sh [DB] [DURATION]
#
# DB defaults to a demo database made in a temp dir (the 10,000-tree sample);
# pass a bigger SQLite file to load it with more trees, e.g. one made by
#   cargo run --release -p orchardmap-store --example synthetic -- /tmp/big.db 1000000
# Needs wrk, curl and python3; installs wrk with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${2:-15s}"
CONNS=32
THREADS=2
if ! command -v wrk >/dev/null; then
  { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
fi

cargo build --release -q -p orchardmap --bin orchardmap
cargo build --release -q -p orchardmap-api --example baseline

TMP="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
DB="${1:-$TMP/load.db}"

target/release/examples/baseline 127.0.0.1:18081 >/dev/null &
RUST_LOG=warn target/release/orchardmap serve --demo --db "$DB" --bind 127.0.0.1:18080 >"$TMP/serve.out" &
for _ in $(seq 1 600); do
  curl -sf http://127.0.0.1:18080/healthz >/dev/null 2>&1 && curl -sf http://127.0.0.1:18081/ >/dev/null 2>&1 && break
  sleep 0.1
done
TREES=$(curl -s http://127.0.0.1:18080/healthz)
echo "server: $TREES"

# Query points: positions of real trees, so every request walks the index near data.
cat > "$TMP/nearest.lua" <<'LUA'
local points = {}
for line in io.lines(os.getenv("POINTS")) do
  local lon, lat = line:match("([^,]+),([^,]+)")
  points[#points + 1] = { lon, lat }
end
local i = 0
request = function()
  i = i % #points + 1
  local p = points[i]
  return wrk.format("GET", "/api/trees/nearest?lon=" .. p[1] .. "&lat=" .. p[2] .. "&k=5")
end
LUA
curl -s "http://127.0.0.1:18080/api/trees?bbox=102,8,117.5,23.5&limit=1000" \
  | python3 -c 'import json,sys; [print(f"{c[0]+0.00003:.7f},{c[1]-0.00002:.7f}") for c in (f["geometry"]["coordinates"] for f in json.load(sys.stdin)["features"])]' \
  > "$TMP/points.csv"

echo "--- baseline: minimal axum handler (wrk -t$THREADS -c$CONNS -d$DURATION)"
wrk -t$THREADS -c$CONNS -d"$DURATION" --latency http://127.0.0.1:18081/ | tee "$TMP/base.txt"
echo "--- orchardmap: GET /api/trees/nearest k=5"
POINTS="$TMP/points.csv" wrk -t$THREADS -c$CONNS -d"$DURATION" --latency -s "$TMP/nearest.lua" http://127.0.0.1:18080 | tee "$TMP/near.txt"

base=$(awk '/Requests\/sec/ {print $2}' "$TMP/base.txt")
near=$(awk '/Requests\/sec/ {print $2}' "$TMP/near.txt")
python3 -c "print(f'nearest/baseline = {float($near)/float($base)*100:.1f}% ({float($near):.0f} vs {float($base):.0f} req/s)')"
