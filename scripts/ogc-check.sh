#!/usr/bin/env bash
# Reads the OGC API – Features endpoint (/ogc) with GDAL's OAPIF driver, as a GIS user would, and
# checks what GDAL sees against the server's own numbers:
#   - the `trees` layer's Feature Count equals the `trees` of /healthz;
#   - the fields code, cultivar and health exist;
#   - reading every feature (following the `next` links page after page) gives each tree once;
#   - the `orchards` layer exists and has no `owner` field (private).
#
#   scripts/ogc-check.sh          # builds orchardmap and serves the bundled sample on a free port
#   ORCHARDMAP_BIN=target/debug/orchardmap scripts/ogc-check.sh   # with a binary already built
#   scripts/ogc-check.sh URL      # checks a running server instead, e.g. http://127.0.0.1:8080
#
# Needs ogrinfo (apt-get install gdal-bin) and curl. PAGE_SIZE=n sets GDAL's page size (its default: 10).
# Exits 0 when every check passes, 1 when one fails, 2 when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in ogrinfo curl; do
  command -v "$tool" >/dev/null || { echo "ogc-check: $tool not found (apt-get install gdal-bin curl)" >&2; exit 2; }
done

CHECK_NAME=ogc-check
# shellcheck source=scripts/lib/demo-server.sh
source scripts/lib/demo-server.sh

if [ $# -ge 1 ]; then
  BASE="${1%/}"
else
  serve_demo release
fi
echo "ogc-check: $BASE"

HEALTH="$(curl -sf "$BASE/healthz")" || fail "GET $BASE/healthz failed"
TREES="$(printf '%s' "$HEALTH" | grep -o '"trees":[0-9]*' | cut -d: -f2)"
[ -n "$TREES" ] || fail "/healthz has no tree count: $HEALTH"

OO=()
if [ -n "${PAGE_SIZE:-}" ]; then OO=(-oo "PAGE_SIZE=$PAGE_SIZE"); fi
SRC="OAPIF:$BASE/ogc"

SUMMARY="$(ogrinfo -ro -so ${OO[@]+"${OO[@]}"} "$SRC" trees 2>&1)" || { echo "$SUMMARY" >&2; fail "ogrinfo cannot open $SRC trees"; }
echo "$SUMMARY" | grep -E '^(Layer name|Geometry|Feature Count|Extent):' | sed 's/^/  /'
COUNT="$(echo "$SUMMARY" | sed -n 's/^Feature Count: \([0-9-]*\)$/\1/p')"
[ "$COUNT" = "$TREES" ] || fail "GDAL counts ${COUNT:-no} trees; /healthz says $TREES"
for field in code cultivar health; do
  echo "$SUMMARY" | grep -q "^$field: " || fail "the trees layer has no field $field"
done
echo "  fields: $(echo "$SUMMARY" | grep -oE '^[a-z_]+: [A-Za-z]+' | cut -d: -f1 | tr '\n' ' ')"

# Every feature, through the next links: each tree exactly once.
FIDS="$(mktemp)"
ogrinfo -ro -al -q ${OO[@]+"${OO[@]}"} "$SRC" trees 2>/dev/null | grep -o '^OGRFeature(trees):[0-9]*' | cut -d: -f2 >"$FIDS" || true
READ="$(wc -l <"$FIDS")"
UNIQUE="$(sort -u "$FIDS" | wc -l)"
rm -f "$FIDS"
[ "$READ" -eq "$TREES" ] || fail "reading every feature gave $READ trees; /healthz says $TREES"
[ "$UNIQUE" -eq "$READ" ] || fail "reading every feature gave $((READ - UNIQUE)) trees more than once"
echo "  read $READ trees, each once"

ORCHARDS="$(ogrinfo -ro -so "$SRC" orchards 2>&1)" || { echo "$ORCHARDS" >&2; fail "ogrinfo cannot open $SRC orchards"; }
echo "$ORCHARDS" | grep -E '^(Layer name|Feature Count):' | sed 's/^/  /'
if echo "$ORCHARDS" | grep -q '^owner: '; then fail "the orchards layer shows the owner (private)"; fi

echo "ogc-check: OK"
