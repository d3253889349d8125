#!/usr/bin/env bash
# hlsd vs nginx on the same files, side by side in one run.
#
#   benches/serve_vs_nginx.sh            (make bench runs it)
#
# Makes a video with the release hlsd (a 720p clip, 6 s segments, the
# default ladder: the 720p source copied, 480p and 360p encoded), starts
# nginx (sendfile, 2 workers, access log off) on the same storage folder,
# then runs `wrk -t2 -c64 -d8s --latency` on the largest segment and on the
# finished media playlist against both, alternating servers, ROUNDS times
# each, and prints requests/s, p99 latency and the hlsd/nginx ratios
# (medians of the rounds). Then 200 players (benches/players.mjs: a playlist and a
# segment per player every 6 s) while a second upload (120 s of 720p,
# three rungs encoded) transcodes: errors
# and p99. The players all come from 127.0.0.1, so hlsd runs with
# --max-connections-per-ip 1000 (its default of 64 is per client address).
#
# Needs: nginx (nginx-light), wrk, curl, ffmpeg, node. `make bench`
# installs the missing ones.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
CONNS=${CONNS:-64}
PLAYERS=${PLAYERS:-200}
PLAYER_SECS=${PLAYER_SECS:-40}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WORK=$(mktemp -d /tmp/hlsd-serve-bench.XXXXXX)
HLSD_PID="" NGINX_PID=""
cleanup() {
  [ -n "$HLSD_PID" ] && kill "$HLSD_PID" 2>/dev/null || true
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in nginx wrk curl ffmpeg node; do
  command -v "$tool" >/dev/null || { echo "missing $tool (make bench installs it)"; exit 1; }
done

echo "== building the release binary"
(cd "$ROOT" && cargo build --release --bin hlsd -q)
HLSD="$ROOT/target/release/hlsd"

echo "== making the clips"
ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -t 30 -c:v libx264 -preset veryfast -b:v 2500k -g 60 -pix_fmt yuv420p -c:a aac -movflags +faststart "$WORK/clip.mp4"
ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=330:sample_rate=48000 \
  -t 120 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -movflags +faststart "$WORK/busy.mp4"

STORAGE="$WORK/storage"
"$HLSD" --listen 127.0.0.1:0 --storage "$STORAGE" --max-connections-per-ip 1000 >"$WORK/hlsd.out" 2>"$WORK/hlsd.log" &
HLSD_PID=$!
for _ in $(seq 600); do grep -q listening "$WORK/hlsd.out" 2>/dev/null && break; sleep 0.1; done
HLSD_ADDR=$(sed -n 's/.*http:\/\/\([^ ]*\).*/\1/p' "$WORK/hlsd.out")
ID=$(curl -sS -F "video=@$WORK/clip.mp4" "http://$HLSD_ADDR/upload" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
for _ in $(seq 1200); do
  curl -sS "http://$HLSD_ADDR/videos/$ID" | grep -q '"status":"ready"' && break
  sleep 0.25
done
curl -sS "http://$HLSD_ADDR/videos/$ID" | grep -q '"status":"ready"' || { echo "video not ready"; exit 1; }

# The largest segment and the media playlist it belongs to.
SEG=$(cd "$STORAGE/$ID" && find . -name '*.ts' -printf '%s %P\n' | sort -n | tail -1 | cut -d' ' -f2)
SEG_BYTES=$(stat -c %s "$STORAGE/$ID/$SEG")
SEG_DIR=$(dirname "$SEG")
MEDIA=$(cd "$STORAGE/$ID/$SEG_DIR" && ls *.m3u8 | grep -v iframes | head -1)
[ "$SEG_DIR" = . ] || MEDIA="$SEG_DIR/$MEDIA"
PL_BYTES=$(stat -c %s "$STORAGE/$ID/$MEDIA")

cat >"$WORK/nginx.conf" <<EOF
daemon off;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/nginx-body;
  proxy_temp_path $WORK/nginx-proxy;
  fastcgi_temp_path $WORK/nginx-fastcgi;
  uwsgi_temp_path $WORK/nginx-uwsgi;
  scgi_temp_path $WORK/nginx-scgi;
  server {
    listen 127.0.0.1:0;
    location /play/ { alias $STORAGE/; }
  }
}
EOF
# hlsd's folders are private (0700): nginx's workers run as root here so
# they can read them (a deployment would give nginx the same user instead).
# nginx cannot listen on port 0: pick a free port.
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i "s/127.0.0.1:0;/127.0.0.1:$NGINX_PORT;/" "$WORK/nginx.conf"
nginx -c "$WORK/nginx.conf" &
NGINX_PID=$!
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/play/$ID/$MEDIA" 2>/dev/null && break; sleep 0.1; done
cmp <(curl -fsS "http://127.0.0.1:$NGINX_PORT/play/$ID/$SEG") <(curl -fsS "http://$HLSD_ADDR/play/$ID/$SEG") \
  || { echo "nginx and hlsd serve different bytes"; exit 1; }

# wrk → "req/s p99_ms"
run_wrk() {
  local out rps p99
  out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$1")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}')
  local errs
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}')
  [ -z "$errs" ] || echo "   wrk: $errs" >&2
  echo "$rps $p99"
}

echo "== wrk -t2 -c$CONNS -d$DURATION, $ROUNDS rounds alternating"
echo "   segment: $SEG ($SEG_BYTES bytes); playlist: $MEDIA ($PL_BYTES bytes)"
declare -A RPS P99
for what in segment playlist; do
  path=$([ $what = segment ] && echo "$SEG" || echo "$MEDIA")
  for round in $(seq "$ROUNDS"); do
    for server in nginx hlsd; do
      base=$([ $server = nginx ] && echo "127.0.0.1:$NGINX_PORT" || echo "$HLSD_ADDR")
      read -r rps p99 < <(run_wrk "http://$base/play/$ID/$path")
      printf '   %-8s %-6s round %d: %10.0f req/s  p99 %8.2f ms\n' "$what" "$server" "$round" "$rps" "$p99"
      RPS[$what-$server]="${RPS[$what-$server]:-} $rps"
      P99[$what-$server]="${P99[$what-$server]:-} $p99"
    done
  done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
echo "== medians over $ROUNDS rounds"
for what in segment playlist; do
  awk -v w="$what" -v nr="$(median "${RPS[$what-nginx]}")" -v hr="$(median "${RPS[$what-hlsd]}")" \
      -v np="$(median "${P99[$what-nginx]}")" -v hp="$(median "${P99[$what-hlsd]}")" 'BEGIN {
    printf "   %-8s nginx %9.0f req/s p99 %7.2f ms | hlsd %9.0f req/s p99 %7.2f ms | rps ratio %.2f  p99 ratio %.2f\n",
      w, nr, np, hr, hp, hr/nr, hp/np }'
done
kill "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null || true; NGINX_PID=""

echo "== $PLAYERS players for ${PLAYER_SECS}s while an upload transcodes"
curl -sS -F "video=@$WORK/busy.mp4" "http://$HLSD_ADDR/upload" -o "$WORK/busy.json" &
UPLOAD=$!
node "$HERE/players.mjs" "http://$HLSD_ADDR/play/$ID/video.m3u8" "$PLAYERS" "$PLAYER_SECS"
wait "$UPLOAD"
BUSY=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$WORK/busy.json")
echo "   the transcoding upload: $(curl -sS "http://$HLSD_ADDR/videos/$BUSY" | sed -n 's/.*"status":"\([a-z_]*\)".*/\1/p') at the end of the run"
echo "   hlsd peak RSS: $(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$HLSD_PID/status)"
