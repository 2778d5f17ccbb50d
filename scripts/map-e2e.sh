#!/usr/bin/env bash
# End-to-end test of the map page (GET /) in headless Chromium: serves the bundled sample with no
# basemap (nothing is fetched from the internet) and runs scripts/map-e2e.py against it, which checks
# at 1280x800 and 360x740, with vector tiles and with the GeoJSON fallback, that
#   - the page loads without a JavaScript error;
#   - trees render (the screenshot has tree-coloured pixels);
#   - clicking a tree opens its popup, which shows the tree's code.
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

fail() {
  echo "map-e2e: FAIL: $*" >&2
  exit 1
}

PID=""
WORK=""
cleanup() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

if [ ! -f node_modules/maplibre-gl/dist/maplibre-gl.js ]; then
  echo "map-e2e: node_modules/maplibre-gl is not installed (npm ci): the page will load MapLibre from the CDN"
fi

if [ $# -ge 1 ]; then
  BASE="${1%/}"
else
  BIN="${ORCHARDMAP_BIN:-}"
  if [ -z "$BIN" ]; then
    cargo build -q -p orchardmap --bin orchardmap
    BIN=target/debug/orchardmap
  fi
  WORK="$(mktemp -d)"
  "$BIN" serve --demo --db "$WORK/demo.db" --bind 127.0.0.1:0 --basemap none \
    >"$WORK/stdout" 2>"$WORK/stderr" &
  PID=$!
  BASE=""
  for _ in $(seq 1 1200); do
    BASE="$(grep -o 'http://[0-9.]*:[0-9]*' "$WORK/stdout" 2>/dev/null | head -n 1 || true)"
    [ -n "$BASE" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/stderr" >&2; fail "the server exited before serving"; }
    sleep 0.1
  done
  [ -n "$BASE" ] || fail "the server did not say where it listens within 120 s"
fi
echo "map-e2e: $BASE with $("$CHROMIUM_BIN" --version 2>/dev/null || echo "$CHROMIUM_BIN")"

curl -sf "$BASE/healthz" >/dev/null || fail "GET $BASE/healthz failed"
curl -sf "$BASE/" | grep -q '/map/app.js' || fail "GET $BASE/ is not the map page"

OUT="${MAP_E2E_OUT:-target/map-e2e}"
python3 scripts/map-e2e.py "$BASE" "$OUT" || fail "see above; screenshots in $OUT"
echo "map-e2e: ok (screenshots in $OUT)"
