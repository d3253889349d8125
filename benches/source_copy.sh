#!/usr/bin/env bash
# Issue 28 item 4: an HEVC (or AV1) source copied into its own codec
# group's top rung, against the same job encoding it (`--copy never`):
# wall time to ready, the server's CPU (utime + stime), peak memory
# (VmHWM), and the top HEVC rung's bytes and SSIM against the source.
# Source: the grain clip of codec_groups.sh (a Mandelbrot zoom under
# moving grain) at 1080p, as HEVC Main (libx265 medium, CRF 22, an IDR
# every 2 s, closed GOPs) with AAC; default ladder, `--codecs h264,hevc`, one fresh
# release server per job, the two alternated ROUNDS times.
# Run from the repository root: benches/source_copy.sh [secs]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/hlsd.sh
cargo build --release --bin hlsd >/dev/null 2>&1
SECS=${1:-30}
ROUNDS=${ROUNDS:-2}
mkdir -p target/bench-inputs
SRC=target/bench-inputs/grain-hevc-closed-1920x1080-${SECS}s.mp4
if [ ! -f "$SRC" ]; then
  ffmpeg -v error -y -f lavfi -i "mandelbrot=size=1920x1080:rate=30,noise=alls=8:allf=t+u" \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$SECS" -c:v libx265 -preset medium \
    -crf 22 -x265-params log-level=error:keyint=60:min-keyint=60:scenecut=0:open-gop=0 -tag:v hvc1 \
    -pix_fmt yuv420p -c:a aac -movflags +faststart "$SRC.tmp.mp4"
  mv "$SRC.tmp.mp4" "$SRC"
fi
ssim() { # playlist: SSIM (×100) of the rendition against the source
  ffmpeg -v error -i "$1" -i "$SRC" -lavfi "[0:v]format=yuv420p[d];[1:v]format=yuv420p[r];[d][r]ssim=stats_file=-" \
    -f null - 2>/dev/null | awk '{for(i=1;i<=NF;i++) if ($i ~ /^All:/) {split($i,a,":"); s+=a[2]; n++}} END {printf "%.2f", 100*s/n}'
}
job() { # label [flags]
  local label=$1 store t0 t1 hwm cpu top bytes
  shift
  store=$(mktemp -d)
  hlsd_start "$store" --codecs h264,hevc "$@"
  t0=$(date +%s.%N)
  hlsd_upload "$SRC"
  hlsd_wait "$UPLOAD_ID"
  t1=$(date +%s.%N)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$HLSD_PID/status)
  cpu=$(awk '{print ($14 + $15) / 100}' /proc/$HLSD_PID/stat)
  top=$(curl -s "http://$HLSD_ADDR/videos/$UPLOAD_ID" | python3 -c \
    'import json,sys; print([r["name"] for r in json.load(sys.stdin)["renditions"] if r["codec"] == "hevc"][0])')
  bytes=$(cat "$store/$UPLOAD_ID/$top"/seg_* "$store/$UPLOAD_ID/$top"/init.mp4 | wc -c)
  printf '%-8s %s, ready in %.1f s, CPU %.1f s, peak RSS %d MiB; %s %d bytes, SSIM %s, copied %s\n' \
    "$label" "$VIDEO_STATUS" "$(echo "$t1 - $t0" | bc)" "$cpu" $((hwm / 1024)) "$top" "$bytes" \
    "$(ssim "http://$HLSD_ADDR/play/$UPLOAD_ID/$top/video.m3u8")" \
    "$(curl -s "http://$HLSD_ADDR/videos/$UPLOAD_ID" | python3 -c 'import json,sys; print(json.load(sys.stdin)["copied"])')"
  hlsd_stop
  rm -rf "$store"
}
for _ in $(seq "$ROUNDS"); do
  job copy
  job encode --copy never
done
