#!/usr/bin/env bash
# Runs every libFuzzer target for a while (`make fuzz`). Usage:
#   scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...]
# With TARGET names (handshake, chunk, amf0, ...) only those run, so that
# targets can be spread over several processes (`make fuzz FUZZ_TARGETS=...`).
# For each tests/fuzz/X_fuzz.c, runs BUILD_DIR/X_fuzz for SECONDS with the
# committed corpus tests/fuzz/corpus/X/ as seeds. New interesting inputs go
# to tests/fuzz/out/X/ (not committed; merge good ones by hand with
# -merge=1). Crashes, leaks, timeouts and OOMs are reported and copied into
# tests/fuzz/corpus/X/ as crash-* files, ready to commit as regression
# inputs once fixed (the replayer then runs them on every `make test`).
# The libFuzzer log of each target is kept in tests/fuzz/out/X/fuzz.log.
# Exits 1 if any target found something or could not run.
set -uo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2
    exit 2
fi
build=${1%/}
seconds=$2
shift 2
only=" $* "
root=$(cd "$(dirname "$0")/.." && pwd)
clean=0
bad=0

shopt -s nullglob
for src in "$root"/tests/fuzz/*_fuzz.c; do
    name=$(basename "$src" _fuzz.c)
    if [ "$only" != "  " ] && [[ "$only" != *" $name "* ]]; then
        continue
    fi
    bin="$build/${name}_fuzz"
    corpus="$root/tests/fuzz/corpus/$name"
    out="$root/tests/fuzz/out/$name"
    art="$out/artifacts"
    if [ ! -x "$bin" ]; then
        echo "FAIL $name: $bin not built (configure with -DSL_FUZZ=ON and clang)"
        bad=$((bad + 1))
        continue
    fi
    mkdir -p "$out" "$art" "$corpus"
    rm -f "$art"/*
    echo "fuzzing $name for ${seconds}s ..."
    # The first directory receives new inputs; the corpus is read-only seeds.
    "$bin" "$out" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$art/" -print_final_stats=1 >"$out/fuzz.log" 2>&1
    rc=$?
    found=("$art"/*)
    if [ ${#found[@]} -gt 0 ]; then
        for f in "${found[@]}"; do
            base=$(basename "$f")
            case "$base" in
                crash-*) dest="$corpus/$base" ;;
                *) dest="$corpus/crash-$base" ;; # leak-, timeout-, oom-, slow-unit-
            esac
            cp "$f" "$dest"
            echo "FAIL $name: $base -> ${dest#"$root"/}"
        done
        grep -m 5 -E "ERROR: |SUMMARY: |runtime error" "$out/fuzz.log" | sed 's/^/    /'
        bad=$((bad + 1))
    elif [ $rc -ne 0 ]; then
        echo "FAIL $name: fuzzer exited with $rc; see ${out#"$root"/}/fuzz.log"
        tail -n 20 "$out/fuzz.log" | sed 's/^/    /'
        bad=$((bad + 1))
    else
        runs=$(grep -o -m 1 'stat::number_of_executed_units: *[0-9]*' "$out/fuzz.log" | grep -o '[0-9]*$')
        cov=$(grep -o 'cov: [0-9]*' "$out/fuzz.log" | tail -n 1)
        echo "ok   $name: ${runs:-?} runs, ${cov:-cov: ?}, no findings"
        clean=$((clean + 1))
    fi
done

echo "fuzz: $clean clean, $bad with findings or errors"
[ "$bad" -eq 0 ]
