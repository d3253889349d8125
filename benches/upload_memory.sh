#!/usr/bin/env bash
# Peak memory (VmHWM) of the server while a ~1 GB upload streams through it
# and is transcoded. Uses the release binary, curl and the ffmpeg CLI (to
# make the input once). Run from the repository root:
#   benches/upload_memory.sh            # SIZE_SECS=310 → about 1.07 GB
set -euo pipefail
cd "$(dirname "$0")/.."
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
OUT=$(mktemp)
target/release/hlsd --listen 127.0.0.1:0 --storage "$STORE" --max-upload-bytes 4000000000 >"$OUT" 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$STORE" "$OUT"' EXIT
for _ in $(seq 50); do grep -q listening "$OUT" && break; sleep 0.1; done
ADDR=$(sed -n 's|.*http://\([^ ]*\).*|\1|p' "$OUT")
SIZE=$(stat -c %s "$IN")
T0=$(date +%s.%N)
RESP=$(curl -s -F "video=@$IN" "http://$ADDR/upload")
T1=$(date +%s.%N)
ID=$(echo "$RESP" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ -n "$ID" ] || { echo "upload failed: $RESP"; exit 1; }
while :; do
  ST=$(curl -s "http://$ADDR/videos/$ID" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
  [ "$ST" = ready ] || [ "$ST" = failed ] && break
  sleep 0.5
done
T2=$(date +%s.%N)
HWM=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
echo "input: $IN ($SIZE bytes)"
echo "upload: $(echo "$T1 - $T0" | bc) s; ready after $(echo "$T2 - $T0" | bc) s; status $ST"
echo "server peak RSS (VmHWM): $((HWM / 1024)) MiB"
