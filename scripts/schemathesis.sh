#!/usr/bin/env bash
# API robustness: runs schemathesis against /api/openapi.json once per role (anonymous, farmer, volunteer,
# admin), each on its own server over a fresh temporary database with the bundled sample and the request
# limits lifted. A run fails on any 5xx answer and on any answer its own OpenAPI description does not
# allow (status, content type, body schema).
#
#   scripts/schemathesis.sh [MAX_EXAMPLES]     # cases per operation in the fuzzing phase (default 10)
#   ORCHARDMAP_BIN=target/debug/orchardmap scripts/schemathesis.sh 10   # with a binary already built
#
# Environment (all optional):
#   ST_SEED=N          generation seed (default 20261129), so a run can be repeated
#   ST_ROLES="..."     the roles to run, in order (default: anonymous farmer volunteer admin)
#   ST_WORKERS=N       concurrent schemathesis workers (default 1)
#   ST_PHASES=...      schemathesis phases (default examples,coverage,fuzzing)
#   ST_OUT=DIR         where reports go (default target/schemathesis)
#
# Installs schemathesis (the exact version of scripts/schemathesis-requirements.txt) into
# target/schemathesis-venv with `python3 -m venv` and pip on first use. For every role it leaves in ST_OUT:
# ROLE.log (schemathesis' text report), ROLE.junit.xml and ROLE.server.log (the server's warnings and
# errors); summary.txt has one line per role. Exits 0 when every role passes, 1 when one fails,
# 2 when a tool is missing.
#
# Before each role's run, scripts/schemathesis-data.py makes what the sample lacks (a harvest lot, tags,
# a photo) and writes a schemathesis config whose dictionaries hold these and a few real trees: half the
# requests to `/api/trees/{id}/...`, `/api/lots/{code}/...` and the like name something that exists.
#
# Destructive operations run too (DELETE, revoke, account creation): each role has its own database.
# The admin's run leaves out `DELETE /api/users/{name}`, which would revoke the run's own token (the
# account list shows it); a last admin run covers that operation alone.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_EXAMPLES="${1:-10}"
SEED="${ST_SEED:-20261129}"
ROLES="${ST_ROLES:-anonymous farmer volunteer admin}"
WORKERS="${ST_WORKERS:-1}"
PHASES="${ST_PHASES:-examples,coverage,fuzzing}"
OUT="${ST_OUT:-target/schemathesis}"
VENV=target/schemathesis-venv
REQUIREMENTS=scripts/schemathesis-requirements.txt
CHECKS=not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance

command -v python3 >/dev/null || { echo "schemathesis: python3 not found" >&2; exit 2; }
command -v curl >/dev/null || { echo "schemathesis: curl not found" >&2; exit 2; }

# The pinned schemathesis, installed again when the requirements change.
if ! cmp -s "$REQUIREMENTS" "$VENV/.requirements" 2>/dev/null || [ ! -x "$VENV/bin/st" ]; then
  echo "schemathesis: installing $(grep -v '^#' "$REQUIREMENTS" | xargs) into $VENV"
  python3 -m venv "$VENV" || { echo "schemathesis: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 2; }
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/.requirements"
fi
ST="$PWD/$VENV/bin/st"
VERSION="$("$ST" --version | awk '{print $NF}')"

BIN="${ORCHARDMAP_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build -q -p orchardmap --bin orchardmap
  BIN=target/debug/orchardmap
fi

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
PID=""
stop_server() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
  fi
}
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_server DIR: serves the sample from a new database in DIR; sets BASE and PID.
start_server() {
  local dir="$1" log="$2"
  mkdir -p "$dir"
  RUST_LOG="${RUST_LOG:-warn}" "$BIN" serve --demo --db "$dir/st.db" --bind 127.0.0.1:0 --basemap none \
    --rate-limit 0 --auth-failure-limit 0 >"$dir/stdout" 2>"$log" &
  PID=$!
  BASE=""
  for _ in $(seq 1 1200); do
    BASE="$(grep -o 'http://[0-9.]*:[0-9]*' "$dir/stdout" 2>/dev/null | head -n 1 || true)"
    [ -n "$BASE" ] && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$log" >&2; echo "schemathesis: the server exited before serving" >&2; exit 1; }
    sleep 0.1
  done
  echo "schemathesis: the server did not say where it listens within 120 s" >&2
  exit 1
}

# token DIR ROLE [NAME]: a new account of ROLE on the database in DIR; prints its token. A farmer's
# orchard is ORCHARD.
token() {
  local dir="$1" role="$2" name="${3:-st-$2}" orchard=()
  [ "$role" = farmer ] && orchard=(--orchard "$ORCHARD")
  "$BIN" user add --db "$dir/st.db" --name "$name" --role "$role" "${orchard[@]}" 2>&1 | tail -n 1
}

# prepare DIR: picks ORCHARD (the sample's first) and makes what the sample lacks (a lot, tags, a
# photo) with a set-up account; writes the schemathesis config aiming at them to DIR/schemathesis.toml.
prepare() {
  local dir="$1"
  ORCHARD="$(curl -sf "$BASE/api/orchards?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["features"][0]["id"])')"
  python3 scripts/schemathesis-data.py "$BASE" "$(token "$dir" admin st-setup)" "$ORCHARD" "$dir/schemathesis.toml" |
    sed 's/^/  /'
  CONFIG="$dir/schemathesis.toml"
}

# run_st NAME [OPTIONS...]: one schemathesis run against BASE; its figures go to summary.txt.
run_st() {
  local name="$1"
  shift
  local started=$SECONDS rc=0
  echo "schemathesis: $name: $BASE (max examples $MAX_EXAMPLES, seed $SEED)"
  # From the scratch folder: schemathesis keeps a cache of failing cases in ./.schemathesis.
  (cd "$WORK" && "$ST" --config-file "$CONFIG" run "$BASE/api/openapi.json" \
    --checks "$CHECKS" --phases "$PHASES" --max-examples "$MAX_EXAMPLES" --seed "$SEED" \
    --workers "$WORKERS" --generation-database none --request-timeout 60 --no-color \
    --report junit --report-junit-path "$OUT/$name.junit.xml" "$@") >"$OUT/$name.log" 2>&1 || rc=$?
  local operations cases result
  operations="$(sed -n 's/^ *Tested: *\([0-9]*\).*/\1/p' "$OUT/$name.log" | head -n 1)"
  cases="$(sed -n 's/^ *\([0-9]*\) generated.*/\1/p' "$OUT/$name.log" | head -n 1)"
  result="$(grep -E '^=+ .* in [0-9.]+s =+$' "$OUT/$name.log" | tail -n 1 | sed 's/^=* //; s/ =*$//')"
  printf '%-14s operations %-3s test cases %-7s %s (exit %s, %ss)\n' \
    "$name" "${operations:-?}" "${cases:-?}" "${result:-no summary}" "$rc" "$((SECONDS - started))" |
    tee -a "$OUT/summary.txt"
  if [ "$rc" -ne 0 ]; then
    sed -n '/^=* FAILURES =*$/,/^=* WARNINGS =*$/p;/^=* ERRORS =*$/,/^=* SUMMARY =*$/p' "$OUT/$name.log" | head -n 200 >&2
    FAILED+=("$name")
  fi
}

FAILED=()
{
  echo "schemathesis $VERSION; max examples $MAX_EXAMPLES; seed $SEED; phases $PHASES; workers $WORKERS"
  echo "checks $CHECKS; started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$OUT/summary.txt"
started_all=$SECONDS
for role in $ROLES; do
  dir="$WORK/$role"
  start_server "$dir" "$OUT/$role.server.log"
  prepare "$dir"
  case "$role" in
    anonymous)
      run_st anonymous
      ;;
    farmer | volunteer)
      run_st "$role" -H "Authorization: Bearer $(token "$dir" "$role")"
      ;;
    admin)
      auth="Authorization: Bearer $(token "$dir" admin)"
      run_st admin -H "$auth" --exclude-operation-id revokeUser
      run_st admin-revoke -H "$auth" --include-operation-id revokeUser
      ;;
    *)
      echo "schemathesis: unknown role $role (anonymous, farmer, volunteer, admin)" >&2
      exit 2
      ;;
  esac
  stop_server
done
echo "total $((SECONDS - started_all))s; finished $(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$OUT/summary.txt"

if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "schemathesis: FAIL: ${FAILED[*]} (reports in $OUT)" >&2
  exit 1
fi
echo "schemathesis: OK (reports in $OUT)"
