#!/usr/bin/env bash
# Random zoom-16 vector tiles that contain trees, 1,000,000 trees, `wrk -t2 -c32` with gzip, side by side:
#   1. martin (PostGIS, the same 1,000,000 points) with its tile cache off,
#   2. martin with its cache warm (the same run repeated),
#   3. orchardmap from a fresh start (its tile cache filling as it goes),
#   4. orchardmap with its cache warm (the same run repeated).
#
#   scripts/tile-load.sh [DB] [SECONDS]
#
# DB defaults to /tmp/orchardmap-1m.db (made like scripts/mixed-load.sh does when missing). Needs wrk,
# python3, psql and PostGIS on the local PostgreSQL (apt-get install wrk postgresql-15-postgis-3), and
# martin 1.14 (cargo install martin@1.14.0 --locked --no-default-features --features postgres; set MARTIN
# to its path, default /tmp/martin/bin/martin). The PostGIS copy goes to the database orchardmap_tiles.
set -euo pipefail
cd "$(dirname "$0")/.."
DB="${1:-/tmp/orchardmap-1m.db}"
SECONDS_RUN="${2:-20}"
MARTIN="${MARTIN:-/tmp/martin/bin/martin}"
PG="postgres://postgres@127.0.0.1:5432"

for tool in wrk python3 psql "$MARTIN"; do
  command -v "$tool" >/dev/null || { echo "tile-load: $tool not found" >&2; exit 2; }
done

cargo build --release -q -p orchardmap --bin orchardmap
if [ ! -f "$DB" ]; then
  cargo build --release -q -p orchardmap-store --example synthetic
  target/release/examples/synthetic "$DB.partial" 1000000
  mv "$DB.partial" "$DB"
fi

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# The zoom-16 tiles holding trees, and the trees as CSV for PostGIS.
python3 - "$DB" "$TMP" <<'EOF'
import math, sqlite3, sys
db, tmp = sys.argv[1], sys.argv[2]
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
tiles = set()
n = 2 ** 16
with open(f"{tmp}/trees.csv", "w") as out:
    for row in con.execute("SELECT id, code, cultivar, health, planted_year, orchard_id, lon, lat FROM trees"):
        i, code, cultivar, health, year, orchard, lon, lat = row
        out.write(f"{i},{code},{cultivar},{health},{'' if year is None else year},{orchard},{lon},{lat}\n")
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n)
        tiles.add((x, y))
with open(f"{tmp}/tiles.txt", "w") as out:
    for x, y in sorted(tiles):
        out.write(f"16/{x}/{y}\n")
print(f"tile-load: {len(tiles)} zoom-16 tiles hold trees")
EOF

cat >"$TMP/random.lua" <<EOF
local tiles = {}
for line in io.lines("$TMP/tiles.txt") do tiles[#tiles + 1] = line end
local prefix, suffix = os.getenv("PREFIX"), os.getenv("SUFFIX")
math.randomseed(42)
request = function()
  return wrk.format("GET", prefix .. tiles[math.random(#tiles)] .. suffix, { ["Accept-Encoding"] = "gzip" })
end
EOF

run() { # name base-url path-prefix path-suffix
  echo "== $1"
  PREFIX="$3" SUFFIX="$4" wrk -t2 -c32 -d"${SECONDS_RUN}s" --latency -s "$TMP/random.lua" "$2" \
    | grep -E 'Requests/sec|Latency|50%|99%|Non-2xx|Socket errors' | sed 's/^/   /'
}

wait_for() { # url
  for _ in $(seq 1 1200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "tile-load: $1 did not answer" >&2; exit 1
}

# PostGIS copy (made once; dropped and made again when its row count differs).
psql -q "$PG/test" -c "SELECT 1 FROM pg_database WHERE datname = 'orchardmap_tiles'" -tA | grep -q 1 \
  || psql -q "$PG/test" -c "CREATE DATABASE orchardmap_tiles"
ROWS="$(psql -qtA "$PG/orchardmap_tiles" -c "SELECT count(*) FROM trees" 2>/dev/null || echo 0)"
if [ "$ROWS" != "$(wc -l <"$TMP/trees.csv")" ]; then
  psql -q "$PG/orchardmap_tiles" <<EOF
CREATE EXTENSION IF NOT EXISTS postgis;
DROP TABLE IF EXISTS trees;
CREATE TABLE trees (id bigint PRIMARY KEY, code text, cultivar text, health text, planted_year int, orchard text,
                    lon double precision, lat double precision);
\copy trees FROM '$TMP/trees.csv' WITH (FORMAT csv)
ALTER TABLE trees ADD COLUMN geom geometry(Point, 4326);
UPDATE trees SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326);
ALTER TABLE trees DROP COLUMN lon, DROP COLUMN lat;
CREATE INDEX trees_geom ON trees USING gist (geom);
VACUUM ANALYZE trees;
EOF
fi

MPORT=3999
"$MARTIN" --listen-addresses "127.0.0.1:$MPORT" --cache-size 0 "$PG/orchardmap_tiles" >"$TMP/martin0.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$MPORT/catalog"
run "martin 1.14, cache off" "http://127.0.0.1:$MPORT" "/trees/" ""
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'

"$MARTIN" --listen-addresses "127.0.0.1:$MPORT" "$PG/orchardmap_tiles" >"$TMP/martin1.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$MPORT/catalog"
run "martin 1.14, cache filling" "http://127.0.0.1:$MPORT" "/trees/" "" >/dev/null
run "martin 1.14, cache warm" "http://127.0.0.1:$MPORT" "/trees/" ""
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'

RUST_LOG=warn target/release/orchardmap serve --db "$DB" --bind 127.0.0.1:0 >"$TMP/serve.out" 2>"$TMP/serve.err" &
PIDS+=($!)
BASE=""
for _ in $(seq 1 1200); do
  BASE=$(grep -o 'http://[^ ]*' "$TMP/serve.out" 2>/dev/null | sed 's:/$::' || true)
  [ -n "$BASE" ] && curl -sf -o /dev/null "$BASE/healthz" && break
  BASE=""; sleep 0.1
done
[ -n "$BASE" ] || { cat "$TMP/serve.err" >&2; exit 1; }
run "orchardmap, fresh start" "$BASE" "/tiles/trees/" ".mvt"
run "orchardmap, cache warm" "$BASE" "/tiles/trees/" ".mvt"
echo "orchardmap RSS: $(awk '/VmRSS/ {print $2 / 1024 " MiB"}' "/proc/${PIDS[-1]}/status")"
