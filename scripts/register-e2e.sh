#!/usr/bin/env bash
# Registering a tree from a pre-printed tag, end to end in headless Chromium on a 360x740 screen:
# issues a tag batch and a volunteer token with the CLI, then scripts/register-e2e.py scans the tag
# (opens its link), signs in, uses the emulated GPS fix inside a sample orchard, picks cultivar and
# health, saves, and checks the new tree through the API.
#
#   scripts/register-e2e.sh                                          # builds and serves the sample
#   ORCHARDMAP_BIN=target/debug/orchardmap scripts/register-e2e.sh   # with a binary already built
#
# Needs chromium (skipped without it), python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v "${CHROMIUM:-chromium}" >/dev/null; then
  echo "register-e2e: SKIPPED: no chromium on PATH (apt-get install chromium)"
  exit 0
fi
CHECK_NAME=register-e2e
# shellcheck source=scripts/lib/demo-server.sh
source scripts/lib/demo-server.sh
serve_demo debug --basemap none --keys "$WORK/keys.json"
BIN="${ORCHARDMAP_BIN:-target/debug/orchardmap}"

TOKEN="$("$BIN" user add --db "$WORK/demo.db" --name "Lan (e2e)" --role volunteer 2>/dev/null | grep -o 'om_[A-Za-z0-9_-]*' | head -n 1)"
[ -n "$TOKEN" ] || fail "no token from orchardmap user add"
CODE="$("$BIN" tags issue --db "$WORK/demo.db" --keys "$WORK/keys.json" --count 2 --format svg --out "$WORK/tags.svg" \
  --public-url "$BASE" | sed -n 's/^[^(]*(\([0-9A-Z]*\) .*/\1/p')"
[ -n "$CODE" ] || fail "no tag code from orchardmap tags issue"
# A point inside the first sample orchard (the list leaves boundaries out; the orchard has it): the
# mean of its boundary ring.
ORCHARD="$(curl -sf "$BASE/api/orchards" | python3 -c 'import json,sys; print(json.load(sys.stdin)["features"][0]["id"])')"
read -r LON LAT < <(curl -sf "$BASE/api/orchards/$ORCHARD" | python3 -c '
import json, sys
ring = json.load(sys.stdin)["geometry"]["coordinates"][0][:-1]
print(sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring))')
python3 scripts/register-e2e.py "$BASE" "$CODE" "$TOKEN" "$LON" "$LAT" "${REGISTER_E2E_OUT:-target/register-e2e}" \
  || fail "see above"
TREE="$(curl -sf "$BASE/api/trees/$CODE")" || fail "no tree answers to $CODE after registration"
python3 -c '
import json, sys
p = json.loads(sys.argv[1])["properties"]
assert (p["cultivar"], p["health"], p["planted_year"], p["accuracy_m"]) == ("Ri6", "fair", 2018, 4.0), p
' "$TREE" || fail "the stored tree is not what was entered: $TREE"
echo "register-e2e: ok"
