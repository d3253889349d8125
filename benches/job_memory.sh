#!/usr/bin/env bash
# Peak memory (VmHWM) of the server for one transcode job, with its
# default settings (the auto ladder, libx264 veryfast), one fresh server
# per case so each peak is that job's:
#   - 1080p30 at 20 Mb/s, 30 s: 4 rungs (1080/720/480/360)
#   - 720p30, 30 s: 3 rungs (720/480/360)
# Both encoded (`--copy never`, the heavier case). Run from the repository
# root: benches/job_memory.sh   (EXTRA="--flag …" passes server flags)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin hlsd >/dev/null 2>&1
mkdir -p target/bench-inputs
make_input() { # name size bitrate
  local f=target/bench-inputs/$1
  if [ ! -f "$f" ]; then
    ffmpeg -v error -y -f lavfi -i "testsrc2=size=$2:rate=30" -f lavfi -i sine=frequency=440:sample_rate=48000 \
      -t 30 -c:v libx264 -preset fast -b:v "$3" -maxrate "$3" -bufsize "$3" -pix_fmt yuv420p \
      -c:a aac -movflags +faststart "$f.tmp.mp4"
    mv "$f.tmp.mp4" "$f"
  fi
  echo "$f"
}
run() { # label input
  local store out pid addr id st hwm t0 t1
  store=$(mktemp -d); out=$(mktemp)
  # shellcheck disable=SC2086
  target/release/hlsd --listen 127.0.0.1:0 --storage "$store" --copy never ${EXTRA:-} >"$out" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
  addr=$(sed -n 's|.*http://\([^ ]*\).*|\1|p' "$out")
  t0=$(date +%s.%N)
  id=$(curl -s -F "video=@$2" "http://$addr/upload" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  while :; do
    st=$(curl -s "http://$addr/videos/$id" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
    [ "$st" = ready ] || [ "$st" = failed ] && break
    sleep 0.5
  done
  t1=$(date +%s.%N)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  rungs=$(curl -s "http://$addr/videos/$id" | grep -o '"name":"[0-9]*p"' | wc -l)
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$store" "$out"
  printf '%-28s %s, %d rungs, ready in %.1f s, server peak RSS %d MiB\n' \
    "$1" "$st" "$rungs" "$(echo "$t1 - $t0" | bc)" $((hwm / 1024))
}
run "1080p30 20 Mb/s, 30 s" "$(make_input 1080p30-20M-30s.mp4 1920x1080 20M)"
run "720p30, 30 s" "$(make_input 720p30-4M-30s.mp4 1280x720 4M)"
