#!/usr/bin/env bash
# 1,000,000-row survey import: into an empty SQLite file, then a second file of the
# same trees (moved 0.4 m, so every row is a probable duplicate) into that database; the same two
# into a fresh PostgreSQL database on the local server (with the PostGIS columns where the extension is
# installed, then the first file again without them);
# GDAL's ogr2ogr loading the same CSV into a GeoPackage and into PostGIS beside it.
#
#   scripts/import-bench.sh [ROWS]
#
# Needs python3; installs gdal-bin (ogr2ogr) and PostGIS for the local
# PostgreSQL with apt-get when missing (skips the GDAL part if it cannot).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-1000000}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

cargo build --release -q -p orchardmap --bin orchardmap
BIN=target/release/orchardmap

python3 - "$ROWS" "$TMP" <<'PY'
import sys
rows, tmp = int(sys.argv[1]), sys.argv[2]
lines = open("data/trees.csv", encoding="utf-8").read().splitlines()
header, body = lines[0], lines[1:]
with open(f"{tmp}/big.csv", "w") as a, open(f"{tmp}/big-moved.csv", "w") as b:
    a.write(header + "\n"); b.write(header + "\n")
    n = 0; copy = 0
    while n < rows:
        for row in body:
            if n == rows: break
            lat, rest = row.split(",", 1)
            lat = float(lat) + 0.01 * copy          # copies ~1.1 km apart: no duplicates
            a.write(f"{lat:.7f},{rest}\n")
            b.write(f"{lat + 0.0000036:.7f},{rest}\n")  # 0.4 m north
            n += 1
        copy += 1
PY
ls -l "$TMP/big.csv" | awk '{printf "input: %s bytes\n", $5}'

run() { local label="$1"; shift; local s e; s=$(date +%s.%N); "$@" >"$TMP/out.txt" 2>&1 || true; e=$(date +%s.%N)
  python3 -c "import sys; print(f'{sys.argv[1]:<58} {float(sys.argv[3]) - float(sys.argv[2]):6.2f} s')" "$label" "$s" "$e"
  grep -E "read [0-9]+" "$TMP/out.txt" | sed 's/^/    /' || tail -3 "$TMP/out.txt"; }

# GDAL and PostGIS (for the PostgreSQL runs and the comparison), installed when missing.
if ! command -v ogr2ogr >/dev/null; then
  { apt-get update -qq && apt-get install -y -qq gdal-bin; } >/dev/null 2>&1 || true
fi
if ! psql -h 127.0.0.1 -U postgres -d test -Atc "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null 2>&1; then
  PGV=$(ls /etc/postgresql 2>/dev/null | head -1)
  { apt-get install -y -qq "postgresql-$PGV-postgis-3"; } >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -d test -Atc "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null 2>&1 || true
fi

DB="$TMP/bench.db"
$BIN import data/orchards.geojson --db "$DB" >/dev/null
run "orchardmap import, $ROWS rows into an empty SQLite db" $BIN import "$TMP/big.csv" --db "$DB"
run "orchardmap import, $ROWS moved rows, dedup against them" $BIN import "$TMP/big-moved.csv" --db "$DB"

# The same into PostgreSQL (COPY), in a database made for the run.
PGURL="postgres://postgres@127.0.0.1:5432"
if psql "$PGURL/test" -Atc "SELECT 1" >/dev/null 2>&1; then
  psql "$PGURL/test" -qc "DROP DATABASE IF EXISTS orchardmap_import_bench WITH (FORCE)" -c "CREATE DATABASE orchardmap_import_bench" >/dev/null
  $BIN import data/orchards.geojson --db "$PGURL/orchardmap_import_bench" >/dev/null
  run "orchardmap import, $ROWS rows into PostgreSQL with PostGIS" $BIN import "$TMP/big.csv" --db "$PGURL/orchardmap_import_bench"
  run "orchardmap import, $ROWS moved rows into PostgreSQL, dedup" $BIN import "$TMP/big-moved.csv" --db "$PGURL/orchardmap_import_bench"
  # Without the optional PostGIS columns (ORCHARDMAP_POSTGIS=off), in a second fresh database.
  psql "$PGURL/test" -qc "DROP DATABASE IF EXISTS orchardmap_import_bench WITH (FORCE)" -c "CREATE DATABASE orchardmap_import_bench" >/dev/null
  ORCHARDMAP_POSTGIS=off $BIN import data/orchards.geojson --db "$PGURL/orchardmap_import_bench" >/dev/null
  run "orchardmap import, $ROWS rows into PostgreSQL without PostGIS" env ORCHARDMAP_POSTGIS=off $BIN import "$TMP/big.csv" --db "$PGURL/orchardmap_import_bench"
  psql "$PGURL/test" -qc "DROP DATABASE IF EXISTS orchardmap_import_bench WITH (FORCE)" >/dev/null
else
  echo "PostgreSQL at $PGURL not reachable: skipped"
fi

if command -v ogr2ogr >/dev/null; then
  run "ogr2ogr, $ROWS rows CSV -> GeoPackage" ogr2ogr -f GPKG "$TMP/big.gpkg" "$TMP/big.csv" \
    -oo X_POSSIBLE_NAMES=lon -oo Y_POSSIBLE_NAMES=lat -a_srs EPSG:4326 -nln trees
  if psql -h 127.0.0.1 -U postgres -d test -Atc "SELECT postgis_version()" >/dev/null 2>&1; then
    psql -h 127.0.0.1 -U postgres -d test -qc "DROP TABLE IF EXISTS ogr_bench_trees" >/dev/null
    run "ogr2ogr, $ROWS rows CSV -> PostGIS" ogr2ogr -f PostgreSQL "PG:host=127.0.0.1 user=postgres dbname=test" \
      "$TMP/big.csv" -oo X_POSSIBLE_NAMES=lon -oo Y_POSSIBLE_NAMES=lat -a_srs EPSG:4326 -nln ogr_bench_trees \
      --config PG_USE_COPY YES
    psql -h 127.0.0.1 -U postgres -d test -qc "DROP TABLE IF EXISTS ogr_bench_trees" >/dev/null
  else
    echo "PostGIS not available: skipped ogr2ogr -> PostGIS"
  fi
else
  echo "ogr2ogr not available: skipped the GDAL comparison"
fi
