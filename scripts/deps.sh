#!/usr/bin/env bash
# Installs the Debian packages sluice needs, idempotently: a package that is
# already installed is never re-installed, and apt-get runs only when
# something is missing. Usage: scripts/deps.sh [build|test|bench] ...
# "build" is what `make run` needs; "test" adds the real peers the test
# suites drive; "bench" adds the benchmark peers (nginx with its RTMP module, Janus for WebRTC).
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libuv1-dev libssl-dev libjansson-dev libyaml-dev
            libhttp-parser-dev libwslay-dev libsqlite3-dev libcurl4-openssl-dev libjwt-dev
            libcrypt-dev libavformat-dev libavcodec-dev libavutil-dev libswresample-dev
            libswscale-dev  # ABR variants: scaling (src/media/vtranscode.c)
            libsrtp2-dev libusrsctp-dev)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev ffmpeg rtmpdump gstreamer1.0-tools
           gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
           gstreamer1.0-plugins-ugly gstreamer1.0-libav python3-pytest python3-pytest-xdist python3-jsonschema
           python3-yaml python3-websocket python3-jwt python3-aiortc
           procps iproute2 python3-cryptography chromium curl openssl  # iproute2: ss (tests/e2e/api_helpers.py)
           # packaging (test_packaging.py, make test-deb): dpkg-buildpackage, man -l, groff -ww
           debhelper dpkg-dev fakeroot man-db groff-base
           gstreamer1.0-rtsp  # rtspclientsink (tests/e2e/test_rtsp.py)
           gir1.2-gst-rtsp-server-1.0 python3-gi srt-tools)  # the camera of test_restream.py, srt-live-transmit
test_pkgs+=(php-cli php-sqlite3)  # examples/integration/php (tests/e2e/test_examples_scripting.py)
# Node.js and npm install the test pages' players at build time
# (scripts/web-players.sh) and run the browser tests (tests/browser). Asked for
# only when missing: a Node.js from elsewhere (e.g. NodeSource) bundles npm and
# conflicts with Debian's npm package.
build_pkgs+=(libsrt-openssl-dev)  # SRT (src/proto/srt)
build_pkgs+=(libhiredis-dev)  # cluster mode: the Redis link (src/cluster/core)
test_pkgs+=(redis-server)  # cluster tests: a private redis-server (and its --sentinel mode) per test module
test_pkgs+=(redis-tools)  # Redis Cluster test: redis-cli --cluster create (test_cluster_rediscluster.py)
build_pkgs+=(liburing-dev)  # io_uring batched sends (rtmp.write_mode: io_uring; optional at build time)
test_pkgs+=(srt-tools)  # srt-live-transmit, a second SRT peer (tests/e2e/test_srt.py)
command -v node >/dev/null 2>&1 || build_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || build_pkgs+=(npm)
test_pkgs+=(default-jdk-headless mono-mcs)  # examples/integration/{java,csharp} (tests/e2e/test_examples_jvm.py)
test_pkgs+=(libtsan2)  # the ThreadSanitizer runtime of gcc (make test-tsan: server.workers)
bench_pkgs=(nginx-light libnginx-mod-rtmp valgrind janus)
bench_pkgs+=(python3-gi gir1.2-gst-rtsp-server-1.0)  # GstRtspServer, the peer of bench/rtsp_vs_gst.py

want=()
[ $# -eq 0 ] && set -- build
for set_name in "$@"; do
    case "$set_name" in
        build) want+=("${build_pkgs[@]}") ;;
        test) want+=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
        bench) want+=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
        *) echo "deps.sh: unknown set '$set_name' (build|test|bench)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
# de-duplicate while keeping order
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')

echo "deps.sh: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
