#!/usr/bin/env bash
# Issue 30 items 1-2 on one node: time to ready of a 10-minute 720p upload
# encoded whole (--chunk-workers 1) and in chunks of --chunk-seconds
# (default 60) side by side (--chunk-workers W, default 2), on a fresh
# release server each, `--copy never` (a copied top rung is never split),
# the default ladder (720/480/360). Source: a Mandelbrot zoom under moving
# grain (x264 veryfast CRF 20, an IDR every 2 s, B-frames) with AAC, its
# first minute looped.
# Reports the time from the upload's start to `ready`, the server's CPU
# (utime + stime) and its peak RSS, ROUNDS times alternated.
# Run from the repository root: benches/chunked.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/hlsd.sh
cargo build --release --bin hlsd >/dev/null 2>&1
ROUNDS=${ROUNDS:-1}
SECS=${SECS:-600}
W=${W:-2}
CHUNK=${CHUNK:-60}
mkdir -p target/bench-inputs
ONE=$(grain_720p_60s)
SRC=target/bench-inputs/grain-h264-1280x720-${SECS}s.mp4
# The minute looped (lavfi's mandelbrot slows down as it zooms: ten
# minutes of it take hours to make); every minute is encoded anew.
if [ ! -f "$SRC" ]; then
  ffmpeg -v error -y -stream_loop $((SECS / 60 - 1)) -i "$ONE" -c copy -movflags +faststart "$SRC.tmp.mp4"
  mv "$SRC.tmp.mp4" "$SRC"
fi
cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
run() { # label workers
  local label=$1 store t0 t1 c1 rss chunks
  store=$(mktemp -d)
  hlsd_start "$store" --copy never --chunk-seconds "$CHUNK" --chunk-workers "$2"
  t0=$(date +%s.%N)
  hlsd_upload "$SRC"
  hlsd_wait "$UPLOAD_ID" 1
  t1=$(date +%s.%N)
  c1=$(cpu_of "$HLSD_PID")
  rss=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$HLSD_PID/status")
  chunks=$(curl -s "http://$HLSD_ADDR/videos/$UPLOAD_ID" | sed -n 's/.*"chunks":\([0-9]*\).*/\1/p')
  printf '%-7s %s in %.1f s (%s chunks), server CPU %.1f s, peak RSS %s MiB\n' "$label" \
    "$VIDEO_STATUS" "$(echo "$t1 - $t0" | bc)" "$chunks" "$c1" "$rss"
  hlsd_stop
  rm -rf "$store"
}
for _ in $(seq "$ROUNDS"); do
  run whole 1
  run split "$W"
done
