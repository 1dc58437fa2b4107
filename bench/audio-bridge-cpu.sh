#!/bin/bash
# CPU of one bridged audio stream (docs/performance.md, "Audio bridge"): ffmpeg publishes
# H.264 + Opus (64 kb/s), + PCMA or + PCMU (8 kHz mono) over RTSP to a sluice with HLS on
# (its segmenter needs AAC, so the bridge's transcoder runs); the CPU time of the
# transcoder's thread (named sl-transcode) and of the whole process are read from /proc
# over 20 s. Usage: bench/audio-bridge-cpu.sh [sluice binary]; run it from a scratch
# folder (it writes bridge.yml and *.log there).
set -u
B=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/sluice}
SECS=20
ticks() { awk '{print $14+$15}' "$1"; }
tc_ticks() { # summed CPU ticks of the process's sl-transcode threads
  local s=0
  for t in /proc/$1/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = sl-transcode ] && s=$((s + $(ticks "$t/stat")))
  done
  echo $s
}
run() { # $1 name, $2.. ffmpeg audio options
  local name=$1; shift
  P=$((12000 + RANDOM % 8000)) # below the ephemeral range (outgoing connections)
  printf 'server:\n  data_dir: ./data-bridge\nrtmp:\n  port: %d\n  tls_port: %d\nhttp:\n  port: %d\n  tls_port: %d\nrtsp:\n  port: %d\n  tls_port: %d\nsrt:\n  port: %d\nwebrtc:\n  port: %d\napps:\n  live:\n    hls_segment: 1s\n' \
    $P $((P+1)) $((P+2)) $((P+3)) $((P+4)) $((P+5)) $((P+6)) $((P+7)) > bridge.yml
  SLUICE_LOG_LEVEL=warn $B --config bridge.yml > bridge-$name.log 2>&1 & S=$!
  sleep 1
  ffmpeg -loglevel error -nostdin -re -f lavfi -i testsrc2=size=320x240:rate=25 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -g 25 -pix_fmt yuv420p -c:v libx264 \
    -preset ultrafast -tune zerolatency -bf 0 "$@" -f rtsp -rtsp_transport tcp \
    rtsp://127.0.0.1:$((P+4))/live/s > ffmpeg-$name.log 2>&1 & F=$!
  sleep 4
  a=$(ticks /proc/$S/stat); ta=$(tc_ticks $S); sleep $SECS; b=$(ticks /proc/$S/stat); tb=$(tc_ticks $S)
  echo "$name: transcoder thread $(echo "scale=2; ($tb-$ta)/$SECS" | bc)% of a core," \
       "whole sluice $(echo "scale=2; ($b-$a)/$SECS" | bc)% (over $SECS s)"
  kill $F; kill $S; wait 2>/dev/null
}
run opus -c:a libopus -b:a 64k
run pcma -c:a pcm_alaw -ar 8000 -ac 1
run pcmu -c:a pcm_mulaw -ar 8000 -ac 1
run aac -c:a aac -b:a 128k
