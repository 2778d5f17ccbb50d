#!/usr/bin/env bash
# End-to-end test of the map page (GET /) in headless Chromium: serves the bundled sample with no
# basemap (nothing is fetched from the internet) and runs scripts/map-e2e.py against it, which checks
# at 1280x800 and 360x740, with vector tiles and with the GeoJSON fallback, that
#   - the page loads without a JavaScript error;
#   - trees render (the screenshot has tree-coloured pixels);
#   - clicking a tree opens its popup, which shows the tree's code;
#   - (when this script serves the sample itself) that tree's cultivar and orchard name, set to hold
#     HTML and a script, show in the popup as text and run nothing.
#
#   scripts/map-e2e.sh            # builds orchardmap (debug) and serves the sample on a free port
#   ORCHARDMAP_BIN=target/debug/orchardmap scripts/map-e2e.sh   # with a binary already built
#   scripts/map-e2e.sh URL        # tests a running server instead, e.g. http://127.0.0.1:8080
#
# Screenshots go to $MAP_E2E_OUT (default target/map-e2e/). MapLibre GL JS is served from
# node_modules when `npm ci` has been run, else the page loads it from the CDN (needs the internet).
# Needs chromium (apt-get install chromium), python3 and curl; without chromium the test is skipped
# (exit 0). Exits 1 when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM_BIN="${CHROMIUM:-}"
if [ -z "$CHROMIUM_BIN" ]; then
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$name" >/dev/null; then CHROMIUM_BIN="$name"; break; fi
  done
fi
if [ -z "$CHROMIUM_BIN" ]; then
  echo "map-e2e: SKIPPED: no chromium on PATH (apt-get install chromium)"
  exit 0
fi
export CHROMIUM="$CHROMIUM_BIN"
for tool in python3 curl; do
  command -v "$tool" >/dev/null || { echo "map-e2e: $tool not found" >&2; exit 1; }
done

CHECK_NAME=map-e2e
# shellcheck source=scripts/lib/demo-server.sh
source scripts/lib/demo-server.sh

if [ ! -f node_modules/maplibre-gl/dist/maplibre-gl.js ]; then
  echo "map-e2e: node_modules/maplibre-gl is not installed (npm ci): the page will load MapLibre from the CDN"
fi

if [ $# -ge 1 ]; then
  BASE="${1%/}"
else
  serve_demo debug --basemap none
  # An admin token for map-e2e.py to put markup into the tree its self-test clicks.
  BIN="${ORCHARDMAP_BIN:-target/debug/orchardmap}"
  MAP_E2E_TOKEN="$("$BIN" user add --db "$WORK/demo.db" --name map-e2e --role admin 2>/dev/null \
    | grep -o 'om_[A-Za-z0-9_-]*' | head -n 1)"
  [ -n "$MAP_E2E_TOKEN" ] || fail "no token from orchardmap user add"
  export MAP_E2E_TOKEN
fi
echo "map-e2e: $BASE with $("$CHROMIUM_BIN" --version 2>/dev/null || echo "$CHROMIUM_BIN")"

curl -sf "$BASE/healthz" >/dev/null || fail "GET $BASE/healthz failed"
curl -sf "$BASE/" | grep -q '/map/app.js' || fail "GET $BASE/ is not the map page"

OUT="${MAP_E2E_OUT:-target/map-e2e}"
python3 scripts/map-e2e.py "$BASE" "$OUT" || fail "see above; screenshots in $OUT"
echo "map-e2e: ok (screenshots in $OUT)"
