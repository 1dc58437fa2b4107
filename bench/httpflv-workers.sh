#!/usr/bin/env bash
# bench/httpflv-workers.sh: where the CPU of HTTP-FLV fan-out goes with
# server.workers 1 and 2 (docs/performance.md, "HTTP-FLV players on two loops").
#
# One ffmpeg publisher (bench/lib.sh's ~2.5 Mbps 720p30 source, looped in
# real time) and N curl players of http://127.0.0.1:PORT/live/bench.flv, on
# loopback. After every player has joined and WARM_S seconds passed, the
# server's threads' CPU (utime + stime from /proc/PID/task/*/stat) is read
# over WINDOW_S seconds: the main loop's thread (the process id) and the
# rest (the worker loop and libuv's pool), in % of one core.
#
# Usage: bench/httpflv-workers.sh    (N=100, WINDOW_S=15, WARM_S=5)
# Environment: N, WINDOW_S, WARM_S, WORKERS ("1 2"), and bench/lib.sh's
# (BENCH_BUILD, SLUICE_BIN, BENCH_DIR, BENCH_NO_BUILD).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
N=${N:-100}
WINDOW_S=${WINDOW_S:-15}
WARM_S=${WARM_S:-5}
WORKERS=${WORKERS:-"1 2"}
bench_init
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    cmake -S "$BENCH_ROOT" -B "$BENCH_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$BENCH_BUILD" -j2 --target sluice >/dev/null
fi
SLUICE_BIN=${SLUICE_BIN:-$BENCH_BUILD/sluice}
make_source

# ticks PID: "main other" CPU ticks of the process's threads.
ticks() {
    local pid=$1 t main=0 other=0 v
    for t in /proc/"$pid"/task/*; do
        v=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "$t/stat" 2>/dev/null) || continue
        if [ "${t##*/}" = "$pid" ]; then main=$((main + v)); else other=$((other + v)); fi
    done
    echo "$main $other"
}

printf '%-8s %6s %10s %10s %10s %8s\n' workers players main_pct other_pct total_pct load1
for w in $WORKERS; do
    rport=$BENCH_PORT hport=$((BENCH_PORT + 1))
    start_sluice "w$w" "$rport" "$hport" SLUICE_SERVER_WORKERS="$w"
    pid=$SRV_PID
    ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$SRC_FLV" -c copy \
        -f flv "rtmp://127.0.0.1:$rport/live/bench" >/dev/null 2>&1 &
    pub=$!
    sleep 2
    cpids=()
    for _ in $(seq "$N"); do
        curl -s -o /dev/null "http://127.0.0.1:$hport/live/bench.flv" &
        cpids+=($!)
    done
    sleep "$WARM_S"
    read -r m0 o0 < <(ticks "$pid")
    sleep "$WINDOW_S"
    read -r m1 o1 < <(ticks "$pid")
    alive=0
    for p in "${cpids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
    kill "${cpids[@]}" "$pub" 2>/dev/null || true
    wait "${cpids[@]}" "$pub" 2>/dev/null || true
    awk -v w="$w" -v n="$alive" -v m=$((m1 - m0)) -v o=$((o1 - o0)) -v hz="$CLK_TCK" -v s="$WINDOW_S" \
        -v l="$(cut -d' ' -f1 /proc/loadavg)" \
        'BEGIN { printf "%-8s %6d %10.1f %10.1f %10.1f %8s\n", w, n, 100*m/hz/s, 100*o/hz/s, 100*(m+o)/hz/s, l }'
    bench_cleanup
done
