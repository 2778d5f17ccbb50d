#!/usr/bin/env bash
# Decodes the service's QR codes with zbar (zbarimg), a decoder independent of the one the tests use
# (rqrr): tree tags at every error-correction level, as PNG from the API, and a harvest lot's label;
# each must decode to exactly the signed link the service reports for it (X-QR-Content) and that link
# must open a page saying the label is genuine.
#
#   scripts/qr-check.sh                                            # builds and serves the sample
#   ORCHARDMAP_BIN=target/debug/orchardmap scripts/qr-check.sh     # with a binary already built
#
# Needs zbarimg (apt-get install zbar-tools; installed when missing and running as root), curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v zbarimg >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zbar-tools; } >/dev/null
  else
    echo "qr-check: zbarimg not found (apt-get install zbar-tools)" >&2
    exit 2
  fi
fi

CHECK_NAME=qr-check
# shellcheck source=scripts/lib/demo-server.sh
source scripts/lib/demo-server.sh
serve_demo debug --public-url https://qr.example.vn --keys "$WORK/keys.json"
BIN="${ORCHARDMAP_BIN:-target/debug/orchardmap}"

decode() { # decode URL-PATH FILE: fetches a QR PNG, checks zbar reads exactly X-QR-Content
  local headers="$WORK/h.txt"
  curl -sf -D "$headers" -o "$2" "$BASE$1" || fail "GET $1"
  local want got
  want="$(tr -d '\r' < "$headers" | sed -n 's/^x-qr-content: //p')"
  got="$(zbarimg -q --raw "$2" 2>/dev/null)" || fail "zbarimg could not read $1"
  [ "$got" = "$want" ] || fail "$1: zbar read '$got', the service says '$want'"
  echo "$got"
}

CODES="$(curl -sf "$BASE/api/trees?limit=3" | python3 -c 'import json,sys; print(" ".join(f["properties"]["code"] for f in json.load(sys.stdin)["features"]))')"
n=0
for code in $CODES; do
  for q in "" "?ec=L&size=3" "?ec=M&size=4" "?ec=H&size=6"; do
    url="$(decode "/api/trees/$code/qr.png$q" "$WORK/tag.png")"
    case "$url" in https://qr.example.vn/t/"$code"?8030=*) ;; *) fail "tag $code holds $url" ;; esac
    n=$((n + 1))
  done
done
# The link opens the tree's page, genuine (the public base is swapped for the local server).
page="$(curl -sf "$BASE${url#https://qr.example.vn}&lang=en")"
grep -q 'class="banner genuine"' <<<"$page" || fail "the decoded link does not open a genuine page"

# A harvest lot's label (level M), created through the API by a farmer account.
ORCHARD="$(curl -sf "$BASE/api/orchards" | python3 -c 'import json,sys; print(json.load(sys.stdin)["features"][0]["properties"]["id"])')"
TOKEN="$("$BIN" user add --db "$WORK/demo.db" --name qr-check --role admin 2>/dev/null | grep -o 'om_[A-Za-z0-9_-]*' | head -n 1)"
[ -n "$TOKEN" ] || fail "no token from orchardmap user add"
LOT="$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' "$BASE/api/lots" \
  -d "{\"orchard_id\":\"$ORCHARD\",\"trees\":\"whole_orchard\",\"harvest_date\":\"2026-06-10\",\"weight_kg\":800,\"boxes\":40,\"domestic\":true}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["lot"]["code"])')" || fail "creating a lot"
url="$(decode "/api/lots/$LOT/qr.png" "$WORK/lot.png")"
case "$url" in https://qr.example.vn/l/"$LOT"?8030=*) ;; *) fail "lot label holds $url" ;; esac
n=$((n + 1))
echo "qr-check: OK ($n codes read by zbarimg exactly as the service reports them; decoded links open genuine pages)"
