#!/bin/bash
# CPU of one ABR ladder (docs/performance.md, "ABR variants"): a 1280x720 30 fps H.264
# source (testsrc2, keyframe every 30 frames, AAC) is published over RTMP to a sluice with
# a 4-level provision (level 1 = the source; 960x540 1.5 Mb/s, 640x360 800 kb/s and
# 320x180 300 kb/s made by the transcoder, x264 preset $PRESET, tune zerolatency, one
# thread); the CPU time of the transcoder's thread (named sl-vtranscode) and of the whole
# process is read from /proc over $SECS s. Then the same ladder made by one ffmpeg process
# (decode once, split, scale, three libx264 encoders with the same settings, one thread
# each, output discarded) from the same file at the same real-time pace, measured the
# same way. Usage: bench/abr-cpu.sh [sluice binary]; run it from a scratch folder (it
# writes abr.yml, src720.flv and *.log there). PRESET=ultrafast|veryfast (default veryfast).
set -u
B=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/sluice}
SECS=${SECS:-20}
PRESET=${PRESET:-veryfast}
ticks() { awk '{print $14+$15}' "$1"; }
thread_ticks() { # summed CPU ticks of the process's threads named $2
  local s=0
  for t in /proc/$1/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] && s=$((s + $(ticks "$t/stat")))
  done
  echo $s
}
[ -f src720.flv ] || ffmpeg -loglevel error -nostdin -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=44100 -t 10 -c:v libx264 -preset veryfast \
  -pix_fmt yuv420p -g 30 -keyint_min 30 -sc_threshold 0 -bf 0 -b:v 3M -maxrate 3M -bufsize 3M \
  -c:a aac -b:a 128k src720.flv

PROV='{"streamGuid":"live/bench","streams":[
 {"streamGuid":"live/bench_1","abrLevel":1,"videoParams":{"videoWidth":1280,"videoHeight":720,"videoBitRate":3000000}},
 {"streamGuid":"live/bench_2","abrLevel":2,"videoParams":{"videoWidth":960,"videoHeight":540,"videoBitRate":1500000}},
 {"streamGuid":"live/bench_3","abrLevel":3,"videoParams":{"videoWidth":640,"videoHeight":360,"videoBitRate":800000}},
 {"streamGuid":"live/bench_4","abrLevel":4,"videoParams":{"videoWidth":320,"videoHeight":180,"videoBitRate":300000}}]}'
P=$((12000 + RANDOM % 8000)) # below the ephemeral range (outgoing connections)
printf 'server:\n  data_dir: ./data-abr\nrtmp:\n  port: %d\n  tls_port: %d\nhttp:\n  port: %d\n  tls_port: %d\nrtsp:\n  port: %d\n  tls_port: %d\nsrt:\n  port: %d\nwebrtc:\n  port: %d\napi:\n  access_token: bench-abr\nabr:\n  enabled: true\n  preset: %s\n  provisions: %s\n' \
  $P $((P+1)) $((P+2)) $((P+3)) $((P+4)) $((P+5)) $((P+6)) $((P+7)) "$PRESET" \
  "'$(echo "$PROV" | tr -d '\n')'" > abr.yml
SLUICE_LOG_LEVEL=warn $B --config abr.yml > abr-sluice.log 2>&1 & S=$!
sleep 1
ffmpeg -loglevel error -nostdin -re -stream_loop -1 -i src720.flv -c copy -f flv \
  rtmp://127.0.0.1:$P/live/bench_1 > abr-publisher.log 2>&1 & F=$!
sleep 5
a=$(ticks /proc/$S/stat); ta=$(thread_ticks $S sl-vtranscode); sleep "$SECS"
b=$(ticks /proc/$S/stat); tb=$(thread_ticks $S sl-vtranscode)
echo "sluice ($PRESET): transcoder thread $(echo "scale=1; ($tb-$ta)/$SECS" | bc)% of a core," \
     "whole process $(echo "scale=1; ($b-$a)/$SECS" | bc)% (3 variants from 1280x720 30 fps, $SECS s)"
curl -s "http://127.0.0.1:$((P+2))/api/v1/abr/transcoders?accessToken=bench-abr" |
  python3 -c 'import json,sys; t=json.load(sys.stdin)["data"][0]; print("transcoder: %d frames in, %d decoded, %d out, %d dropped, %d errors, %.0f ms CPU over %.0f s" % (t["frames_in"], t["decoded"], t["frames_out"], t["dropped"], t["errors"], t["cpu_ms"], t["uptime_ms"] / 1000))' 
kill $F; kill $S; wait 2>/dev/null

X="-c:v libx264 -preset $PRESET -tune zerolatency -bf 0 -threads 1 -x264-params keyint=infinite:scenecut=0 -force_key_frames source -an -f null -"
ffmpeg -loglevel error -nostdin -re -threads 1 -stream_loop -1 -i src720.flv \
  -filter_complex "[0:v]split=3[a][b][c];[a]scale=960:540[o1];[b]scale=640:360[o2];[c]scale=320:180[o3]" \
  -map "[o1]" -b:v 1500k -maxrate 1500k -bufsize 1500k $X \
  -map "[o2]" -b:v 800k -maxrate 800k -bufsize 800k $X \
  -map "[o3]" -b:v 300k -maxrate 300k -bufsize 300k $X > abr-ffmpeg.log 2>&1 & G=$!
sleep 5
a=$(ticks /proc/$G/stat); sleep "$SECS"; b=$(ticks /proc/$G/stat)
echo "ffmpeg ($PRESET): whole process $(echo "scale=1; ($b-$a)/$SECS" | bc)% of a core (same ladder, $SECS s)"
kill $G; wait 2>/dev/null
