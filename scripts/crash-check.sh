#!/usr/bin/env bash
# Crash safety: kill -9 `orchardmap serve` during writes under load and during a large HTTP import,
# restart it on the same database, and check that the database is consistent, that every
# acknowledged write is there and that no import is half-applied; ITERATIONS times (default 20).
# The checks and the load are in scripts/crash_check.py (Python 3 standard library only).
#
#   scripts/crash-check.sh [ITERATIONS] [crash_check.py options]    # builds the release binary once
#   ORCHARDMAP_BIN=target/debug/orchardmap scripts/crash-check.sh 3  # with a binary already built (CI)
#   scripts/crash-check.sh 20 --db postgres://postgres@127.0.0.1:5432/orchardmap_crash  # PostgreSQL:
#                                                   # the database is created, and dropped at the end
#   scripts/crash-check.sh 20 --seed 7 --rows 100000 --work /tmp/crash   # repeat a run; keep its files
#
# Prints one line per iteration and a JSON summary (acknowledged writes checked, imports rolled
# back / committed, kills during the import's commit). Exits 0 when no check failed, 1 when one
# did (the database and the server logs are then kept and their folder printed), 2 when a tool is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v python3 >/dev/null || { echo "crash-check: python3 not found" >&2; exit 2; }
ITERATIONS="${1:-20}"
shift || true

BIN="${ORCHARDMAP_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --release -q -p orchardmap --bin orchardmap
  BIN=target/release/orchardmap
fi
[ -x "$BIN" ] || { echo "crash-check: $BIN is not an executable" >&2; exit 2; }

exec python3 scripts/crash_check.py "$ITERATIONS" --bin "$BIN" "$@"
