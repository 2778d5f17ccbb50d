# Sourced by the check scripts (ogc-check, mvt-check, map-e2e): a scratch folder removed on exit, `fail`,
# and `serve_demo`, which serves the bundled sample on a free port and sets BASE.
#
#   CHECK_NAME=ogc-check; source scripts/lib/demo-server.sh
#   serve_demo release [more serve flags]   # ORCHARDMAP_BIN=path uses an already built binary instead
#
# The server is stopped when the script exits.

PID=""
WORK="$(mktemp -d)"
cleanup() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "${CHECK_NAME:-check}: FAIL: $*" >&2
  exit 1
}

# serve_demo PROFILE [SERVE FLAGS...]: builds orchardmap with PROFILE (release or debug) unless
# ORCHARDMAP_BIN names a binary, serves the sample from a database in WORK and waits until it says where.
serve_demo() {
  local profile="$1"
  shift
  local bin="${ORCHARDMAP_BIN:-}"
  if [ -z "$bin" ]; then
    if [ "$profile" = release ]; then
      cargo build --release -q -p orchardmap --bin orchardmap
    else
      cargo build -q -p orchardmap --bin orchardmap
    fi
    bin="target/$profile/orchardmap"
  fi
  "$bin" serve --demo --db "$WORK/demo.db" --bind 127.0.0.1:0 "$@" >"$WORK/stdout" 2>"$WORK/stderr" &
  PID=$!
  BASE=""
  for _ in $(seq 1 1200); do
    BASE="$(grep -o 'http://[0-9.]*:[0-9]*' "$WORK/stdout" 2>/dev/null | head -n 1 || true)"
    [ -n "$BASE" ] && return 0
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/stderr" >&2; fail "the server exited before serving"; }
    sleep 0.1
  done
  fail "the server did not say where it listens within 120 s"
}
