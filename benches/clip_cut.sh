#!/usr/bin/env bash
# Issue 29 item 3: an exact clip, from POST /videos/{id}/clips to its
# `ready`, on a fresh release server with its defaults (the clip is cut
# from the video's MP4 download, its H.264 top rung, then goes through
# the pipeline). Source: a 60 s 720p30 Mandelbrot zoom under moving grain
# (x264 veryfast CRF 20, an IDR every 2 s, B-frames) with AAC; clip
# 10.5-50.3 s. Reports the clip's time to ready and the server's CPU
# (utime + stime) from the POST to `ready`. With BASE=/path/to/hlsd the
# same with that binary (e.g. one built before the smart cut), the two
# alternated ROUNDS times.
# Run from the repository root: benches/clip_cut.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/hlsd.sh
cargo build --release --bin hlsd >/dev/null 2>&1
ROUNDS=${ROUNDS:-2}
SRC=$(grain_720p_60s)
cpu_of() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
clip() { # label binary
  local label=$1 store t0 t1 c0 c1 id
  store=$(mktemp -d)
  HLSD_BIN=$2 hlsd_start "$store"
  hlsd_upload "$SRC"
  hlsd_wait "$UPLOAD_ID"
  c0=$(cpu_of "$HLSD_PID")
  t0=$(date +%s.%N)
  id=$(curl -s -X POST "http://$HLSD_ADDR/videos/$UPLOAD_ID/clips" \
    -d '{"start": 10.5, "end": 50.3}' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  hlsd_wait "$id"
  t1=$(date +%s.%N)
  c1=$(cpu_of "$HLSD_PID")
  printf '%-6s clip %s in %.1f s, server CPU %.1f s\n' "$label" "$VIDEO_STATUS" \
    "$(echo "$t1 - $t0" | bc)" "$(echo "$c1 - $c0" | bc)"
  hlsd_stop
  rm -rf "$store"
}
for _ in $(seq "$ROUNDS"); do
  clip smart target/release/hlsd
  if [ -n "${BASE:-}" ]; then clip base "$BASE"; fi
done
