#!/bin/bash
# CPU cost of restreaming (docs/performance.md, "Restreaming"): a sluice's CPU time over
# 15 s while ffmpeg publishes a 1 Mbit/s 640x360 H.264 + AAC stream to it, alone, with one
# and four RTMP pushes to a second sluice, and when it pulls that stream over RTMP from
# the second sluice instead. Usage: bench/restream-cpu.sh [sluice binary]; run it from a
# scratch folder (it writes src.flv, *.yml and *.log there).
set -u
B=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/sluice}
[ -f src.flv ] || ffmpeg -loglevel error -y -f lavfi -i testsrc=s=640x360:r=25 -f lavfi -i sine=r=44100 \
  -t 20 -c:v libx264 -preset veryfast -b:v 1000k -g 50 -pix_fmt yuv420p -c:a aac -b:a 64k src.flv
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
run() { # $1 name $2 push text $3 pull text
  P1=$((20000 + RANDOM % 20000)); P2=$((P1+1)); H1=$((P1+2)); H2=$((P1+3)); W1=$((P1+4)); W2=$((P1+5)); T1=$((P1+6)); T2=$((P1+7)); T3=$((P1+8)); T4=$((P1+9))
  printf 'rtmp:\n  port: %d\n  tls_port: %d\nhttp:\n  port: %d\n  tls_port: %d\nwebrtc:\n  port: %d\napps:\n  live: {}\n  other: {}\n' $P2 $T1 $H2 $T2 $W2 > dst.yml
  printf 'rtmp:\n  port: %d\n  tls_port: %d\nhttp:\n  port: %d\n  tls_port: %d\nwebrtc:\n  port: %d\napps:\n  live: {}\nrestream:\n  push: "%s"\n  pull: "%s"\n' $P1 $T3 $H1 $T4 $W1 "${2//PORT/$P2}" "${3//PORT/$P2}" > src.yml
  SLUICE_LOG_LEVEL=warn $B --config dst.yml > dst.log 2>&1 & D=$!
  SLUICE_LOG_LEVEL=warn $B --config src.yml > src.log 2>&1 & S=$!
  sleep 1
  if [ -n "$3" ]; then ffmpeg -loglevel error -re -stream_loop -1 -i src.flv -c copy -f flv rtmp://127.0.0.1:$P2/live/s & F=$!
  else ffmpeg -loglevel error -re -stream_loop -1 -i src.flv -c copy -f flv rtmp://127.0.0.1:$P1/live/s & F=$!; fi
  sleep 4; a=$(cpu $S); sleep 15; b=$(cpu $S)
  echo "$1: sluice CPU $(( (b-a)*10 )) ms over 15 s ($(echo "scale=1; ($b-$a)/15" | bc)% of a core)"
  kill $F; kill $S; kill $D; wait 2>/dev/null
}
run "publish only (baseline)" "" ""
run "publish + 1 RTMP push" "live/s rtmp://127.0.0.1:PORT/live/a" ""
run "publish + 4 RTMP pushes" "live/s rtmp://127.0.0.1:PORT/live/a\\nlive/s rtmp://127.0.0.1:PORT/live/b\\nlive/s rtmp://127.0.0.1:PORT/live/c\\nlive/s rtmp://127.0.0.1:PORT/live/d" ""
run "1 RTMP pull (always)" "" "live/p rtmp://127.0.0.1:PORT/live/s"
