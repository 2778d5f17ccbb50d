#!/usr/bin/env bash
# Reads our vector tiles with GDAL's MVT driver, as a GIS user would, and checks what GDAL finds against
# what the API reports for the same area:
#   - a tile at zoom 16 and one at zoom 18 around a sample tree: every tree the search API finds inside
#     the tile's square is a GDAL feature with the same id (mvt_id), code, cultivar and health, within
#     one tile unit of its position; every GDAL tree is one the API finds in the tile's buffered square;
#   - a zoom-10 tile (clustered): GDAL reads it, and the trees its features stand for (point_count of
#     clusters, 1 for single trees) add up to what the API counts in the tile's buffered square or less,
#     and to at least what it counts in the square itself.
#
#   scripts/mvt-check.sh          # builds orchardmap and serves the bundled sample on a free port
#   ORCHARDMAP_BIN=target/debug/orchardmap scripts/mvt-check.sh   # with a binary already built
#   scripts/mvt-check.sh URL      # checks a running server instead
#
# Needs ogr2ogr (apt-get install gdal-bin), curl and python3. Exits 0 when every check passes, 1 when one
# fails, 2 when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in ogr2ogr curl python3; do
  command -v "$tool" >/dev/null || { echo "mvt-check: $tool not found (apt-get install gdal-bin curl python3)" >&2; exit 2; }
done

CHECK_NAME=mvt-check
# shellcheck source=scripts/lib/demo-server.sh
source scripts/lib/demo-server.sh

if [ $# -ge 1 ]; then
  BASE="${1%/}"
else
  serve_demo release
fi
echo "mvt-check: $BASE"

curl -sf "$BASE/api/trees?limit=1" >"$WORK/one.json" || fail "GET /api/trees failed"

check_tile() {
  local z="$1"
  read -r x y < <(python3 - "$WORK/one.json" "$z" <<'EOF'
import json, math, sys
f = json.load(open(sys.argv[1]))["features"][0]
lon, lat = f["geometry"]["coordinates"]
z = int(sys.argv[2]); n = 2 ** z
x = int((lon + 180) / 360 * n)
y = int((1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n)
print(x, y)
EOF
  )
  mkdir -p "$WORK/t/$z/$x"
  local tile="$WORK/t/$z/$x/$y.pbf"
  curl -sf -o "$tile" "$BASE/tiles/trees/$z/$x/$y.mvt" || fail "GET /tiles/trees/$z/$x/$y.mvt failed"
  ogr2ogr -f GeoJSON -t_srs EPSG:4326 "$WORK/gdal-$z.json" "$tile" trees 2>"$WORK/ogr.err" \
    || { cat "$WORK/ogr.err" >&2; fail "GDAL cannot read tile $z/$x/$y"; }
  python3 - "$BASE" "$z" "$x" "$y" "$WORK/gdal-$z.json" <<'EOF' || exit 1
import json, math, sys, urllib.request
base, z, x, y, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
n = 2 ** z
def lon_of(tx): return tx / n * 360 - 180
def lat_of(ty): return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * ty / n))))
pad = 64 / 4096
def box(margin):
    return (lon_of(x - margin), lat_of(y + 1 + margin), lon_of(x + 1 + margin), lat_of(y - margin))
def api(b):
    url = f"{base}/api/trees?bbox={b[0]},{b[1]},{b[2]},{b[3]}&limit=10000&sort=id"
    found = json.load(urllib.request.urlopen(url))
    return found["numberMatched"], {f["id"]: f for f in found["features"]}
gdal = json.load(open(path))["features"]
where = f"tile {z}/{x}/{y}"
def bad(msg):
    print(f"mvt-check: FAIL: {where}: {msg}", file=sys.stderr); sys.exit(1)
clusters = [f for f in gdal if f["properties"].get("clustered")]
if clusters or z <= 12:
    inner, _ = api(box(0))
    outer, _ = api(box(pad * 1.01))
    stands_for = sum(f["properties"].get("point_count", 1) for f in gdal)
    if not clusters and len(gdal) < inner:
        bad(f"{len(gdal)} features for {inner} trees")
    if not (inner <= stands_for <= outer):
        bad(f"features stand for {stands_for} trees; the API counts {inner} in the square, {outer} with the buffer")
    for f in clusters:
        p = f["properties"]
        parts = sum(p.get(h, 0) for h in ("good", "fair", "poor", "dead"))
        if parts != p["point_count"]:
            bad(f"cluster counts by health add to {parts}, point_count is {p['point_count']}")
    print(f"  {where}: {len(gdal)} features ({len(clusters)} clusters) for {stands_for} trees; API {inner}..{outer}")
    sys.exit(0)
_, inside = api(box(0))
_, near = api(box(pad * 1.01))
by_id = {f["properties"]["mvt_id"]: f for f in gdal}
if not inside:
    bad("the API finds no tree in this tile")
unit = 360 / n / 4096
for tid, f in inside.items():
    g = by_id.get(tid)
    if g is None:
        bad(f"tree {tid} ({f['properties']['code']}) is not in the tile")
    for key in ("code", "cultivar", "health"):
        if g["properties"].get(key) != f["properties"].get(key):
            bad(f"tree {tid}: {key} {g['properties'].get(key)!r} in the tile, {f['properties'].get(key)!r} in the API")
    (glon, glat), (alon, alat) = g["geometry"]["coordinates"], f["geometry"]["coordinates"]
    if abs(glon - alon) > unit or abs(glat - alat) > unit:
        bad(f"tree {tid} is at {glon},{glat} in the tile, {alon},{alat} in the API")
extra = [i for i in by_id if i not in near]
if extra:
    bad(f"trees {extra[:5]} are in the tile but not in the API's buffered square")
print(f"  {where}: GDAL reads {len(gdal)} trees; all {len(inside)} the API finds inside are there, same fields")
EOF
}

check_tile 18
check_tile 16
check_tile 10
echo "mvt-check: OK"
