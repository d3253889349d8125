#!/usr/bin/env bash
# Live broadcasts (issue 27): latency, encoder speed, memory; hlsd and
# nginx-rtmp side by side, same push, same player.
#
#   benches/live_latency.sh          (SECS=60 by default)
#
# 1. Latency: the ffmpeg CLI pushes 720p30 testsrc2 + sine in real time
#    (-re, x264 veryfast, 3 Mbit/s, a keyframe every 2 s) over RTMP to a
#    hlsd live (the default ladder: 720p copied, 480p and 360p encoded;
#    then --copy never: three encoded), and hls.js (hlsd's copy, in
#    Chromium) plays it; every 0.5 s for SECS seconds the glass-to-glass
#    latency is (now - push start) - currentTime. p50 and p95.
#    Both at normal latency (2 s segments) and with latency=low (LL-HLS:
#    0.4 s parts, blocking reloads; hls.js in its low-latency mode).
#    Then the same push to nginx-rtmp (Debian's libnginx-mod-rtmp, HLS
#    out, 2 s fragments, no transcoding) played by the same page.
#    MediaMTX is not in any registry this machine reaches (apt, crates.io,
#    npm, PyPI): not compared.
# 2. Encoder speed: the same 720p30 source, 60 s, pushed as fast as it
#    goes into a live with --copy never (three rungs encoded); speed =
#    60 s / (push start to `ready`).
# 3. Memory: hlsd's peak RSS (VmHWM) after a live, minus before it.
# 4. Capacity: N copy-mode lives at once (a pre-encoded 720p30 file pushed
#    with -re -c copy into each, 40 s; the default ladder copies 720p and
#    encodes 480p and 360p): hlsd's CPU (cores) during the pushes, and
#    how long after the pushes' end the last live is `ready` (a live that
#    keeps up ends within a few seconds; one behind real time lags more).
#
# Needs: ffmpeg, node + Chromium (make test-deps), nginx + libnginx-mod-rtmp
# (make bench installs them), curl, python3.
set -euo pipefail

SECS=${SECS:-60}
# Which parts run (all by default): PARTS="latency speed capacity".
PARTS=" ${PARTS:-latency speed capacity} "
want() { [[ "$PARTS" == *" $1 "* ]]; }
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WORK=$(mktemp -d /tmp/hlsd-live-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building the release binary"
(cd "$ROOT" && cargo build --release --bin hlsd -q)
HLSD="$ROOT/target/release/hlsd"
CLIP="$WORK/clip.mp4"
ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=30 -t 2 -c:v libx264 -pix_fmt yuv420p "$CLIP"

now_ms() { date +%s%3N; }
json() { python3 -c "import json,sys; v=json.load(sys.stdin); print(v$1)"; }

# push URL SECONDS [extra ffmpeg input flags] → pid
push() {
  local url=$1 secs=$2 re=${3:--re}
  ffmpeg -hide_banner -nostdin -loglevel error $re -f lavfi -i testsrc2=size=1280x720:rate=30 \
    $re -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$secs" \
    -c:v libx264 -preset veryfast -b:v 3M -maxrate 3M -bufsize 6M -g 60 -pix_fmt yuv420p \
    -c:a aac -b:a 128k -f flv "$url" >/dev/null 2>>"$WORK/push.log" &
  echo $!
}

# start_hlsd NAME [flags] → sets ADDR, PID
start_hlsd() {
  local name=$1; shift
  "$HLSD" --listen 127.0.0.1:0 --storage "$WORK/$name" --rtmp-listen 127.0.0.1:0 --allow-open-api "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 600); do grep -q listening "$WORK/$name.out" 2>/dev/null && break; sleep 0.1; done
  ADDR=$(sed -n 's/.*http:\/\/\([^ ]*\).*/\1/p' "$WORK/$name.out")
}

segments() { curl -fsS "$1" 2>/dev/null | grep -c '#EXTINF' || true; }

# play BASE [env...] → the scenario's JSON
play() {
  local base=$1; shift
  env "$@" HLSD_LIVE_SAMPLE_SECS="$SECS" node "$ROOT/tests/browser/run.mjs" live "$base" "$CLIP" "$WORK/shot.png" | tail -1
}

report() {
  echo "$2" | python3 -c "
import json,sys
v=json.loads(sys.stdin.read())
ok = v.get('ok')
print('   %-28s p50 %5.2f s   p95 %5.2f s   samples %d%s' % ('$1', v.get('latencyP50') or -1, v.get('latencyP95') or -1, v.get('samples') or 0, '' if ok else '   ERROR ' + str(v.get('error'))))"
}

hlsd_latency() {
  local name=$1; shift
  start_hlsd "$name" "$@"
  local live id url variant start p out
  live=$(curl -fsS -X POST "http://$ADDR/lives" -d "${BODY:-{\}}")
  id=$(echo "$live" | json "['id']")
  url=$(echo "$live" | json "['rtmp_url']")
  start=$(now_ms)
  p=$(push "$url" $((SECS + 60)))
  for _ in $(seq 600); do
    variant=$(curl -fsS "http://$ADDR/play/$id/video.m3u8" 2>/dev/null | grep -v '^#' | head -1 || true)
    [ -n "$variant" ] && [ "$(segments "http://$ADDR/play/$id/$variant")" -ge 2 ] && break
    sleep 0.2
  done
  out=$(play "http://$ADDR" HLSD_EMBED_PATH="/embed/$id?autoplay=1&muted=1" HLSD_PUSH_START_MS="$start")
  report "hlsd $name" "$out"
  kill "$p" 2>/dev/null || true
  local hwm
  hwm=$(awk '/VmHWM/ {print $2}' /proc/"$PID"/status)
  echo "   peak RSS ${hwm} KiB (hlsd with this one live; idle hlsd: see below)"
  kill "$PID"
}

if want latency; then
echo "== latency: ${SECS} s of 720p30 in real time, hls.js in Chromium"
start_hlsd idle
echo "   idle hlsd peak RSS $(awk '/VmHWM/ {print $2}' /proc/"$PID"/status) KiB"
kill "$PID"
# Which cases run (all by default): CASES="copy encode low-copy low-encode nginx".
CASES=" ${CASES:-copy encode low-copy low-encode nginx} "
case_on() { [[ "$CASES" == *" $1 "* ]]; }
if case_on copy; then hlsd_latency copy; fi
if case_on encode; then hlsd_latency encode --copy never; fi
if case_on low-copy; then BODY='{"latency":"low"}' hlsd_latency "low copy"; fi
if case_on low-encode; then BODY='{"latency":"low"}' hlsd_latency "low encode" --copy never; fi

if ! case_on nginx; then
  :
elif [ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] && command -v nginx >/dev/null; then
  RTMP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$WORK/hls"
  cat >"$WORK/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 1024; }
rtmp {
  server {
    listen 127.0.0.1:$RTMP_PORT;
    application live { live on; hls on; hls_path $WORK/hls; hls_fragment 2s; hls_playlist_length 12s; }
  }
}
http {
  access_log off;
  client_body_temp_path $WORK/nb; proxy_temp_path $WORK/np; fastcgi_temp_path $WORK/nf;
  uwsgi_temp_path $WORK/nu; scgi_temp_path $WORK/ns;
  server {
    listen 127.0.0.1:$HTTP_PORT;
    location /hls/ {
      alias $WORK/hls/;
      types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
      add_header Access-Control-Allow-Origin *;
      add_header Cache-Control no-cache;
    }
  }
}
EOF
  nginx -c "$WORK/nginx.conf" &
  PIDS+=($!)
  sleep 1
  start_hlsd assets   # serves the page's hls.js
  start=$(now_ms)
  p=$(push "rtmp://127.0.0.1:$RTMP_PORT/live/test" $((SECS + 60)))
  for _ in $(seq 600); do
    [ "$(segments "http://127.0.0.1:$HTTP_PORT/hls/test.m3u8")" -ge 2 ] && break
    sleep 0.2
  done
  out=$(play "http://$ADDR" HLSD_HLS_URL="http://127.0.0.1:$HTTP_PORT/hls/test.m3u8" HLSD_PUSH_START_MS="$start")
  report "nginx-rtmp (no transcode)" "$out"
  kill "$p" 2>/dev/null || true
else
  echo "   nginx-rtmp: not installed (make bench installs libnginx-mod-rtmp)"
fi

fi

if want speed; then
echo "== encoder speed: 60 s of 720p30 pushed as fast as it goes, --copy never (3 rungs encoded)"
start_hlsd speed --copy never
live=$(curl -fsS -X POST "http://$ADDR/lives" -d '{}')
id=$(echo "$live" | json "['id']")
start=$(now_ms)
p=$(push "$(echo "$live" | json "['rtmp_url']")" 60 " ")
while kill -0 "$p" 2>/dev/null; do sleep 0.2; done
for _ in $(seq 3000); do
  curl -fsS "http://$ADDR/videos/$id" | grep -q '"status":"ready"' && break
  sleep 0.2
done
end=$(now_ms)
python3 -c "print('   %.2fx real time (60 s of media in %.1f s)' % (60000/($end-$start), ($end-$start)/1000))"

fi

want capacity || exit 0
echo "== capacity: N copy-mode lives at once (720p30, -re -c copy, 40 s each)"
ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -t 40 -c:v libx264 -preset veryfast -b:v 3M -maxrate 3M -bufsize 6M -g 60 -pix_fmt yuv420p \
  -c:a aac -b:a 128k "$WORK/cap.mp4"
TICK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' /proc/"$1"/stat; }
for n in ${LIVES:-1 2 3 4}; do
  start_hlsd "cap$n" --max-lives 8
  ids=() pushes=()
  for _ in $(seq "$n"); do
    live=$(curl -fsS -X POST "http://$ADDR/lives" -d '{}')
    ids+=("$(echo "$live" | json "['id']")")
    ffmpeg -nostdin -v error -re -i "$WORK/cap.mp4" -c copy -f flv "$(echo "$live" | json "['rtmp_url']")" \
      >/dev/null 2>>"$WORK/push.log" &
    pushes+=($!)
  done
  c0=$(cpu "$PID") w0=$(now_ms)
  for p in "${pushes[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.2; done; done
  c1=$(cpu "$PID") w1=$(now_ms)
  for id in "${ids[@]}"; do
    for _ in $(seq 1500); do
      curl -fsS "http://$ADDR/videos/$id" | grep -q '"status":"ready"' && break
      sleep 0.2
    done
  done
  w2=$(now_ms)
  python3 -c "print('   %d live(s): hlsd %.2f cores during the pushes; the last ready %.1f s after they ended' % ($n, ($c1-$c0)/$TICK/(($w1-$w0)/1000), ($w2-$w1)/1000))"
  kill "$PID"
done
