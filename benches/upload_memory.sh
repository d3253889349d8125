#!/usr/bin/env bash
# Peak memory (VmHWM) of the server while a ~1 GB upload streams through it
# and is transcoded. Uses the release binary, curl and the ffmpeg CLI (to
# make the input once). Run from the repository root:
#   benches/upload_memory.sh            # SIZE_SECS=310 → about 1.07 GB
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/hlsd.sh
SECS=${SIZE_SECS:-310}
cargo build --release --bin hlsd >/dev/null 2>&1
mkdir -p target/bench-inputs
IN=target/bench-inputs/raw-320x240-${SECS}s.nut
if [ ! -f "$IN" ]; then
  # Raw yuv420p video (115 KB per frame) + PCM: a big file that is cheap to decode.
  ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i sine=frequency=440 \
    -t "$SECS" -c:v rawvideo -pix_fmt yuv420p -c:a pcm_s16le "$IN.tmp.nut"
  mv "$IN.tmp.nut" "$IN"
fi
STORE=$(mktemp -d)
hlsd_start "$STORE" --max-upload-bytes 4000000000
trap 'hlsd_stop; rm -rf "$STORE"' EXIT
SIZE=$(stat -c %s "$IN")
T0=$(date +%s.%N)
hlsd_upload "$IN"
T1=$(date +%s.%N)
ID=$UPLOAD_ID
[ -n "$ID" ] || { echo "upload failed: $UPLOAD_ANSWER"; exit 1; }
hlsd_wait "$ID"
ST=$VIDEO_STATUS
T2=$(date +%s.%N)
HWM=$(awk '/VmHWM/ {print $2}' /proc/$HLSD_PID/status)
echo "input: $IN ($SIZE bytes)"
echo "upload: $(echo "$T1 - $T0" | bc) s; ready after $(echo "$T2 - $T0" | bc) s; status $ST"
echo "server peak RSS (VmHWM): $((HWM / 1024)) MiB"
