# bench/lib.sh: shared helpers of the benchmark scripts (vs-nginx,
# instructions, memory, soak, whep, whep-g2g); sourced, never run. It builds sluice and the
# client tools, makes the test source, starts and stops the servers under
# test (sluice, nginx-rtmp, Janus) in a temporary directory on loopback, and
# reads what the kernel knows about a process: CPU ticks (utime + stime
# from /proc/<pid>/stat), resident memory, and the bytes a server has
# delivered (the sum of bytes_acked over its established sockets, from
# `ss -ti`, which works the same for every server whatever syscalls it uses).
#
# Environment (all optional):
#   BENCH_BUILD   build directory, relative to the repository or absolute
#                  (default build-perf; configured RelWithDebInfo and built
#                  incrementally unless BENCH_NO_BUILD=1)
#   SLUICE_BIN     a sluice binary to measure instead of $BENCH_BUILD/sluice
#   BENCH_DIR      where sources, configs and logs go (default: a temp dir)
#   BENCH_PORT     first TCP port to use (default 29350)
#   BENCH_LOG_LEVEL  sluice's log.level in the bench configs (default warn;
#                  info shows why sessions end)
# shellcheck shell=bash

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_BUILD=${BENCH_BUILD:-build-perf}
case "$BENCH_BUILD" in /*) ;; *) BENCH_BUILD="$BENCH_ROOT/$BENCH_BUILD" ;; esac
BENCH_PORT=${BENCH_PORT:-29350}
CLK_TCK=$(getconf CLK_TCK)
SERVER_PIDS=()      # pids to stop at exit (our own servers only)

bench_init() {
    if [ -z "${BENCH_DIR:-}" ]; then
        BENCH_DIR=$(mktemp -d /tmp/sluice-bench.XXXXXX)
    fi
    mkdir -p "$BENCH_DIR"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    # Thousands of sockets: take what the hard limit allows (servers and
    # load generators inherit it).
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

bench_cleanup() {
    local p
    for p in "${SERVER_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${SERVER_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    SERVER_PIDS=()
}

log() { printf '%s\n' "$*" >&2; }

# Builds sluice and the client tools (incremental) unless told not to.
build_sluice() {
    if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
        cmake -S "$BENCH_ROOT" -B "$BENCH_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
        cmake --build "$BENCH_BUILD" -j2 --target sluice sluice-bench sluice-publish sluice-play >/dev/null
    fi
    SLUICE_BIN=${SLUICE_BIN:-$BENCH_BUILD/sluice}
    BENCH_BIN=${BENCH_BIN:-$BENCH_BUILD/sluice-bench}
    [ -x "$SLUICE_BIN" ] && [ -x "$BENCH_BIN" ] || { log "no sluice or sluice-bench in $BENCH_BUILD"; exit 1; }
}

# The test source: ~2.5 Mbps H.264 (720p30, CBR, 2 s GOP, no scene cuts) +
# AAC 128k, 30 s, as FLV. Made once with ffmpeg from lavfi generators (no
# network) and kept in the build directory.
make_source() {
    SRC_FLV="$BENCH_BUILD/bench/src-2500k-gop2s.flv"
    if [ ! -s "$SRC_FLV" ]; then
        mkdir -p "$(dirname "$SRC_FLV")"
        log "making the test source $SRC_FLV (ffmpeg, ~15 s)"
        ffmpeg -hide_banner -loglevel error -nostdin -y \
            -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
            -t 30 -c:v libx264 -preset veryfast -tune zerolatency -profile:v main \
            -b:v 2300k -minrate 2300k -maxrate 2300k -bufsize 1150k \
            -x264-params keyint=60:min-keyint=60:scenecut=0:nal-hrd=cbr -pix_fmt yuv420p \
            -c:a aac -b:a 128k -ar 48000 -ac 2 -f flv "$SRC_FLV.tmp" && mv "$SRC_FLV.tmp" "$SRC_FLV"
    fi
    SRC_MBPS=$(ffprobe -v error -show_entries format=bit_rate -of default=nw=1:nk=1 "$SRC_FLV" |
               awk '{printf "%.3f", $1 / 1e6}')
}

# start_sluice NAME RTMP_PORT HTTP_PORT [VAR=VALUE ...]: starts sluice with a
# config of its own in $BENCH_DIR/NAME; extra SLUICE_* overrides come as
# arguments. Sets SRV_PID and SRV_PIDS (all processes of the server).
start_sluice() {
    local name=$1 rport=$2 hport=$3
    shift 3
    local d="$BENCH_DIR/$name"
    rm -rf "$d"
    mkdir -p "$d/data"
    cat >"$d/sluice.yml" <<EOF
server:
  data_dir: $d/data
  max_connections: 100000
  max_connections_per_address: 0   # every bench client is 127.0.0.1
log:
  level: ${BENCH_LOG_LEVEL:-warn}
rtmp:
  bind: 127.0.0.1
  port: $rport
http:
  bind: 127.0.0.1
  port: $hport
EOF
    # RTMP fan-out only, as nginx-rtmp's "live on": sluice's HLS packager
    # (on by default per app, where this build has it) is turned off. (No
    # grep -q: with pipefail, its early exit can fail the pipeline by SIGPIPE.)
    if "$SLUICE_BIN" --print-config yaml 2>/dev/null | grep '^ *hls: ' >/dev/null; then
        printf 'apps:\n  live:\n    hls: false\n' >>"$d/sluice.yml"
    fi
    # Every other listener on a port of this run's own (HTTP_PORT + 1, + 2, ...), not its
    # default: another sluice on the machine (a test suite, another bench) holds those, and
    # a listener that cannot bind stops the server (every player then fails).
    local sec off=1
    for sec in webrtc srt rtsp; do
        if "$SLUICE_BIN" --print-config yaml 2>/dev/null | grep "^$sec:" >/dev/null; then
            printf '%s:\n  port: %d\n' "$sec" $((hport + off)) >>"$d/sluice.yml"
        fi
        off=$((off + 1))
    done
    # A bench name states its configuration: "sluice" is one event loop writing with writev
    # (the baseline of every table in docs/performance.md), whatever the shipped defaults
    # (server.workers 0 = one per core, rtmp.write_mode io_uring); "-wN" and "+uring" in the
    # name, or the caller's own settings after these, select the others.
    env SLUICE_SERVER_WORKERS=1 SLUICE_RTMP_WRITE_MODE=writev "$@" "$SLUICE_BIN" --config "$d/sluice.yml" \
        >"$d/sluice.log" 2>&1 &
    SRV_PID=$!
    SRV_PIDS="$SRV_PID"
    SERVER_PIDS+=("$SRV_PID")
    wait_port "$rport" || { log "sluice did not start; see $d/sluice.log"; tail -5 "$d/sluice.log" >&2; return 1; }
}

# start_nginx NAME RTMP_PORT: nginx with the RTMP module, one worker
# (sluice runs one loop thread), application live { live on; }, chunk size
# 4096 (as sluice), defaults otherwise (no GOP cache exists in nginx-rtmp;
# Nagle stays on as shipped). Sets SRV_PID (master) and SRV_PIDS.
start_nginx() {
    local name=$1 rport=$2
    local d="$BENCH_DIR/$name"
    rm -rf "$d"
    mkdir -p "$d"
    local mod=/usr/lib/nginx/modules/ngx_rtmp_module.so
    [ -f "$mod" ] || { log "nginx-rtmp module not installed ($mod)"; return 1; }
    cat >"$d/nginx.conf" <<EOF
load_module $mod;
worker_processes 1;
daemon off;
master_process on;
user root;
pid $d/nginx.pid;
error_log $d/error.log warn;
worker_rlimit_nofile $(ulimit -Hn);
events { worker_connections 20000; }
rtmp {
    server {
        listen 127.0.0.1:$rport;
        chunk_size 4096;
        application live { live on; }
    }
}
EOF
    nginx -c "$d/nginx.conf" -p "$d/" >"$d/stderr.log" 2>&1 &
    SRV_PID=$!
    SERVER_PIDS+=("$SRV_PID")
    wait_port "$rport" || { log "nginx did not start; see $d/"; cat "$d/stderr.log" "$d/error.log" >&2; return 1; }
    local w
    w=$(pgrep -P "$SRV_PID" | tr '\n' ' ')
    SRV_PIDS="$SRV_PID $w"
}

# loop_budget CPU PID...: gives every event-loop thread of the given processes
# its own CPU budget of CPU cores (0.5 = half a core: cfs quota 50 ms per
# 100 ms), as a machine whose cores are that fast would. Loop threads: each
# process's main thread and sluice's "sl-worker-N" threads (pass sluice's pid,
# or nginx's worker pids, not its master). Other threads (the store, webhooks, libuv's pool) are
# not budgeted. Each thread goes in its own cgroup (v1 cpu controller, or v2
# where the cpu controller is delegated); the groups are removed by
# loop_budget_clear. Why: on a 2-core machine the load generator needs a core
# of its own (its kernel receive path alone costs a third of the server's CPU,
# docs/performance.md), so "does a second loop double what one holds" can only
# be asked of loops slower than a core. LOOP_PERIOD_US (default 100000) is the
# quota period: a loop that used its quota waits for the next period, so a
# shorter one (20000) keeps that wait out of the latencies. Prints the threads
# it budgeted.
LOOP_CG_DIRS=()
loop_budget() {
    local cpu=$1
    shift
    local root="" quota_file="" v=1
    if [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ]; then
        root=/sys/fs/cgroup/cpu
    elif grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
        root=/sys/fs/cgroup
        v=2
    else
        log "loop_budget: no writable cgroup cpu controller (v1 /sys/fs/cgroup/cpu or v2 with cpu delegated)"
        return 1
    fi
    local period=${LOOP_PERIOD_US:-100000} quota
    quota=$(awk -v c="$cpu" -v p="$period" 'BEGIN {printf "%d", c * p}')
    local pid tid comm dir i=0 names=""
    for pid in "$@"; do
        for tid in $(ls "/proc/$pid/task" 2>/dev/null); do
            comm=$(cat "/proc/$pid/task/$tid/comm" 2>/dev/null || true)
            # A process's main thread, and sluice's worker loops.
            case "$comm" in
                sl-worker-*) ;;
                *) [ "$tid" = "$pid" ] || continue ;;
            esac
            dir="$root/sluice-bench-loop-$$-$i"
            i=$((i + 1))
            mkdir -p "$dir" || return 1
            LOOP_CG_DIRS+=("$dir")
            if [ "$v" = 1 ]; then
                echo "$period" >"$dir/cpu.cfs_period_us" && echo "$quota" >"$dir/cpu.cfs_quota_us" &&
                    echo "$tid" >"$dir/tasks" || return 1
            else
                echo threaded >"$dir/cgroup.type" && echo "$quota $period" >"$dir/cpu.max" &&
                    echo "$tid" >"$dir/cgroup.threads" || return 1
            fi
            names+=" $comm/$tid"
        done
    done
    log "loop budget $cpu core each:$names"
}

loop_budget_clear() {
    local d t root
    for d in ${LOOP_CG_DIRS[@]+"${LOOP_CG_DIRS[@]}"}; do
        root=$(dirname "$d")
        # Threads still there (the server outlived its run) go back to the root group.
        if [ -f "$d/tasks" ]; then
            for t in $(cat "$d/tasks" 2>/dev/null); do echo "$t" >"$root/tasks" 2>/dev/null || true; done
        fi
        rmdir "$d" 2>/dev/null || true
    done
    LOOP_CG_DIRS=()
}

stop_server() {
    local p=$1
    kill "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    local keep=()
    for q in "${SERVER_PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
    SERVER_PIDS=("${keep[@]}")
}

wait_port() {
    for _ in $(seq 100); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        sleep 0.05
    done
    return 1
}

# CPU ticks (utime + stime) summed over the given pids.
cpu_ticks() {
    local t=0 p v
    for p in "$@"; do
        v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo "$t"
}

# Resident memory in KB summed over the given pids.
rss_kb() {
    local t=0 p v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

# Bytes acknowledged by peers on every established socket with local port
# $1: what the server delivered, independent of how it wrote it.
delivered_bytes() {
    ss -Htin state established "( sport = :$1 )" |
        grep -o 'bytes_acked:[0-9]*' | awk -F: '{s += $2} END {printf "%.0f\n", s}'
}

now_s() { date +%s.%N; }

# json FILE EXPR: evaluates a Python expression over the parsed JSON `j`.
json() {
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# sl_metric HTTP_PORT NAME: one value from sluice's /metrics.
sl_metric() {
    curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2}'
}

# start_sluice_webrtc NAME [VAR=VALUE...]: sluice with RTMP on RPORT, HTTP on HPORT and
# WebRTC (UDP only, candidate 127.0.0.1, no session limits) on WPORT; more environment after.
start_sluice_webrtc() {
    local name=$1
    shift
    start_sluice "$name" "$RPORT" "$HPORT" SLUICE_WEBRTC_PORT="$WPORT" SLUICE_WEBRTC_CANDIDATES=127.0.0.1 \
        SLUICE_WEBRTC_TCP=false SLUICE_WEBRTC_MAX_SESSIONS=100000 \
        SLUICE_WEBRTC_MAX_SESSIONS_PER_ADDRESS=100000 "$@"
}

# start_janus NAME: Janus with only the HTTP transport (port JPORT) and the
# streaming plugin, ICE-lite, one RTP mountpoint (id 1: H.264 pt 102 on JVPORT,
# Opus pt 111 on JAPORT; JANUS_H264_FMTP overrides the H.264 fmtp, main profile
# by default); JANUS_EVENT_LOOPS as in bench/whep. Sets SRV_PID.
start_janus() {
    local d="$BENCH_DIR/$1"
    rm -rf "$d"
    mkdir -p "$d/conf" "$d/plugins" "$d/transports"
    local lib=/usr/lib/x86_64-linux-gnu/janus
    [ -f "$lib/plugins/libjanus_streaming.so" ] || lib=$(dirname "$(dirname "$(find /usr/lib -name libjanus_streaming.so | head -1)")")
    ln -s "$lib/plugins/libjanus_streaming.so" "$d/plugins/"
    ln -s "$lib/transports/libjanus_http.so" "$d/transports/"
    cat >"$d/conf/janus.jcfg" <<EOF
general: {
    configs_folder = "$d/conf"
    plugins_folder = "$d/plugins"
    transports_folder = "$d/transports"
    events_folder = "$d/none"
    loggers_folder = "$d/none"
    debug_level = 3
    session_timeout = 0
$( [ "${JANUS_EVENT_LOOPS:-0}" != 0 ] && echo "    event_loops = $JANUS_EVENT_LOOPS" )
}
certificates: {
}
media: {
    rtp_port_range = "$((BENCH_PORT + 100))-$((BENCH_PORT + 9000))"
}
nat: {
    ice_lite = true
}
EOF
    cat >"$d/conf/janus.transport.http.jcfg" <<EOF
general: {
    json = "plain"
    base_path = "/janus"
    http = true
    port = $JPORT
    interface = "lo"
    https = false
}
admin: {
    admin_http = false
}
EOF
    cat >"$d/conf/janus.plugin.streaming.jcfg" <<EOF
general: {
}
bench: {
    type = "rtp"
    id = 1
    description = "bench"
    media = (
        { type = "video" mid = "v" label = "video" port = $JVPORT pt = 102 codec = "h264" fmtp = "${JANUS_H264_FMTP:-profile-level-id=4d001f;packetization-mode=1}" },
        { type = "audio" mid = "a" label = "audio" port = $JAPORT pt = 111 codec = "opus" }
    )
}
EOF
    janus -F "$d/conf" -o >"$d/janus.log" 2>&1 &
    SRV_PID=$!
    SRV_PIDS=$SRV_PID
    SERVER_PIDS+=("$SRV_PID")
    wait_port "$JPORT" || { log "janus did not start; see $d/janus.log"; tail -5 "$d/janus.log" >&2; return 1; }
}
