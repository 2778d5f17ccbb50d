#!/usr/bin/env bash
# Fuzzes orchardmap's parsers with libFuzzer on stable Rust.
#
#   bash scripts/fuzz.sh [TARGET|all] [SECONDS]     (default: all, 60 s per target)
#
# Targets (fuzz/fuzz_targets/): survey_csv survey_geojson survey_gpx survey_kml
# orchards_geojson crs tile query. Builds fuzz/ (its own Cargo package, outside
# the workspace) in release mode with the instrumentation cargo-fuzz uses for
# `--sanitizer none` (SanitizerCoverage through rustc's stable -C flags, plus
# debug assertions and overflow checks), then runs each target for SECONDS on
# its corpus fuzz/corpus/<target>/. New inputs go to a scratch directory
# (fuzz/target/corpus-new/<target>/), so the committed corpus only changes by
# a deliberate merge:
#
#   fuzz/target/<triple>/release/<target> -merge=1 NEW_DIR fuzz/corpus/<target> SCRATCH_DIR
#
# Crashes, timeouts and out-of-memory inputs go to fuzz/artifacts/<target>/;
# the script exits non-zero when any target found one. Reproduce one with
#   fuzz/target/<triple>/release/<target> fuzz/artifacts/<target>/crash-...
#
# Needs only cargo and a C++ compiler (libfuzzer-sys builds libFuzzer from source).
# fuzz/Cargo.lock is committed; it is not --locked, so a dependency added to a
# project crate is resolved here too (then commit the updated fuzz/Cargo.lock).
# Extra libFuzzer flags: FUZZ_ARGS="-jobs=2 -workers=2" bash scripts/fuzz.sh crs 600
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(survey_csv survey_geojson survey_gpx survey_kml orchards_geojson crs tile query)
which="${1:-all}"
seconds="${2:-60}"
if [[ "$which" == all ]]; then
    run=("${TARGETS[@]}")
elif [[ " ${TARGETS[*]} " == *" $which "* ]]; then
    run=("$which")
else
    echo "fuzz.sh: unknown target $which (targets: ${TARGETS[*]}, or all)" >&2
    exit 2
fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
    echo "fuzz.sh: SECONDS must be a whole number of seconds, got $seconds" >&2
    exit 2
fi

# The host triple: with --target, RUSTFLAGS reach only the fuzzed code, not
# build scripts and proc macros (as with cargo-fuzz).
triple="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks ${RUSTFLAGS:-}"
export CARGO_TARGET_DIR=fuzz/target

echo "== building fuzz targets ($triple, release)"
bins=()
for t in "${run[@]}"; do bins+=(--bin "$t"); done
cargo build --manifest-path fuzz/Cargo.toml --release --target "$triple" "${bins[@]}"

failed=()
for t in "${run[@]}"; do
    corpus="fuzz/corpus/$t"
    scratch="fuzz/target/corpus-new/$t"
    artifacts="fuzz/artifacts/$t"
    mkdir -p "$corpus" "$scratch" "$artifacts"
    dict=()
    if [[ -f "fuzz/dict/$t.dict" ]]; then dict=(-dict="fuzz/dict/$t.dict"); fi
    echo "== $t: ${seconds}s on $corpus ($(find "$corpus" -type f | wc -l) inputs)"
    log="fuzz/target/$t.log"
    set +e
    {
        # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
        "fuzz/target/$triple/release/$t" "$scratch" "$corpus" "${dict[@]}" \
            -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
            -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} 2>&1
        echo "$?" >"$log.status"
    } | tee "$log" | grep -E --line-buffered \
        '^(INFO: (seed corpus|Loaded)|#[0-9]+[[:space:]]+(INITED|DONE)|stat::|==[0-9]+== ERROR|SUMMARY|Done)|panicked|deadly signal|Test unit written'
    set -e
    status="$(cat "$log.status")"
    if ((status != 0)); then
        echo "!! $t: libFuzzer exited with $status; inputs in $artifacts/, log in $log" >&2
        tail -n 40 "$log" >&2
        failed+=("$t")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz.sh: failures in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: no crash in ${run[*]} (${seconds}s each)"
