#!/usr/bin/env bash
# Replays every committed fuzz corpus through its target's plain replayer
# (no libFuzzer needed), as part of `make test`. Usage:
#   scripts/fuzz-replay.sh BUILD_DIR
# For each tests/fuzz/X_fuzz.c it runs BUILD_DIR/X_fuzz_replay on
# tests/fuzz/corpus/X/ (CMake names the replayer after the source file:
# amf0_fuzz.c -> amf0_fuzz_replay; a binary named X_replay is accepted too).
# A target fails when its replayer is missing, its corpus directory is
# missing, or the replayer exits non-zero (a crash, an abort on a broken
# invariant, a sanitizer report). Prints one line per target and ends with
# "fuzz-replay: N passed, M failed"; exits 1 if any failed.
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build=${1%/}
root=$(cd "$(dirname "$0")/.." && pwd)
passed=0
failed=0

shopt -s nullglob
for src in "$root"/tests/fuzz/*_fuzz.c; do
    name=$(basename "$src" _fuzz.c)
    corpus="$root/tests/fuzz/corpus/$name"
    bin="$build/${name}_fuzz_replay"
    [ -x "$bin" ] || bin="$build/${name}_replay"
    if [ ! -x "$bin" ]; then
        echo "FAIL $name: no replayer (${build}/${name}_fuzz_replay not built)"
        failed=$((failed + 1))
        continue
    fi
    if [ ! -d "$corpus" ]; then
        echo "FAIL $name: no corpus directory tests/fuzz/corpus/$name/"
        failed=$((failed + 1))
        continue
    fi
    log="$build/fuzz-replay-$name.log"
    # The group keeps bash's own "Aborted" notice in the log too.
    if { "$bin" "$corpus"; } >"$log" 2>&1; then
        echo "ok   $name: $(tail -n 1 "$log")"
        passed=$((passed + 1))
        rm -f "$log"
    else
        rc=$?
        echo "FAIL $name: replayer exited with $rc (full log: $log)"
        grep -E "replay: failed on|SUMMARY|runtime error|ERROR" "$log" | head -n 5 | sed 's/^/    /'
        tail -n 10 "$log" | sed 's/^/    | /'
        failed=$((failed + 1))
    fi
done

echo "fuzz-replay: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
