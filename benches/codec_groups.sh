#!/usr/bin/env bash
# Issue 28: the AV1 and HEVC codec groups against the H.264 ladder, on a
# real-content-like clip (a Mandelbrot zoom under moving grain: motion and
# noise everywhere, so rate control decides), at 720p and 1080p:
#   - per rung: bytes, SSIM and PSNR against the source scaled to the
#     rung's size (bicubic), for each codec at the server's defaults;
#   - the AV1 and HEVC ladders' total bytes against H.264's;
#   - wall time to ready of `--codecs h264,av1` (and `h264,hevc`) against
#     `h264` alone, and the server's peak memory (VmHWM) for each job.
# One fresh release server per job (`--copy never`, the default ladder).
# Run from the repository root: benches/codec_groups.sh [secs]
# (EXTRA="--flag …" passes server flags, e.g. EXTRA="--av1-crf 38")
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/hlsd.sh
cargo build --release --bin hlsd >/dev/null 2>&1
SECS=${1:-20}
mkdir -p target/bench-inputs
input() { # size
  local f=target/bench-inputs/grain-$1-${SECS}s.mp4
  if [ ! -f "$f" ]; then
    ffmpeg -v error -y -f lavfi -i "mandelbrot=size=$1:rate=30,noise=alls=8:allf=t+u" \
      -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$SECS" -c:v libx264 -preset fast \
      -crf 14 -pix_fmt yuv420p -c:a aac -movflags +faststart "$f.tmp.mp4"
    mv "$f.tmp.mp4" "$f"
  fi
  echo "$f"
}
# quality SRC PLAYLIST W H: "ssim psnr" of a rendition against SRC scaled.
quality() {
  set +o pipefail
  ffmpeg -v error -i "$2" -i "$1" -lavfi \
    "[1:v]scale=$3:$4:flags=bicubic,format=yuv420p[r];[0:v]format=yuv420p[d];[d][r]ssim=stats_file=-" \
    -f null - 2>/dev/null | awk '{for(i=1;i<=NF;i++) if ($i ~ /^All:/) {split($i,a,":"); s+=a[2]; n++}} END {printf "%.2f", 100*s/n}'
  printf ' '
  ffmpeg -v info -i "$2" -i "$1" -lavfi \
    "[1:v]scale=$3:$4:flags=bicubic,format=yuv420p[r];[0:v]format=yuv420p[d];[d][r]psnr" \
    -f null - 2>&1 | sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | tail -1
}
job() { # label input codecs
  local store t0 t1 hwm
  store=$(mktemp -d)
  # shellcheck disable=SC2086
  hlsd_start "$store" --copy never --codecs "$3" ${EXTRA:-}
  t0=$(date +%s.%N)
  hlsd_upload "$2"
  hlsd_wait "$UPLOAD_ID"
  t1=$(date +%s.%N)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$HLSD_PID/status)
  printf '%-6s %-14s %s, ready in %.1f s, peak RSS %d MiB\n' "$1" "$3" "$VIDEO_STATUS" \
    "$(echo "$t1 - $t0" | bc)" $((hwm / 1024))
  if [ "${QUALITY:-1}" = 1 ]; then
    local rec name w h bytes
    rec=$(curl -s "http://$HLSD_ADDR/videos/$UPLOAD_ID")
    for r in $(echo "$rec" | python3 -c 'import json,sys; [print(r["name"] + ":" + str(r["width"]) + ":" + str(r["height"])) for r in json.load(sys.stdin)["renditions"]]'); do
      IFS=: read -r name w h <<<"$r"
      # (A TS rung has no init segment: cat's complaint is not an error here.)
      bytes=$( (cat "$store/$UPLOAD_ID/$name"/seg_* "$store/$UPLOAD_ID/$name"/init.mp4 2>/dev/null || true) | wc -c)
      printf '  %-10s %9d bytes  SSIM/PSNR %s\n' "$name" "$bytes" \
        "$(quality "$2" "http://$HLSD_ADDR/play/$UPLOAD_ID/$name/video.m3u8" "$w" "$h")"
    done
  fi
  hlsd_stop
  rm -rf "$store"
}
# SIZES and CASES narrow a run: SIZES=1280x720 CASES=h264,av1,hevc
for size in ${SIZES:-1280x720 1920x1080}; do
  in=$(input "$size")
  for codecs in ${CASES:-h264 h264,av1,hevc h264,av1 h264,hevc}; do
    # Quality once per size, from the job that makes every group.
    QUALITY=$([ "$codecs" = h264,av1,hevc ] && echo 1 || echo 0) job "$size" "$in" "$codecs"
  done
done
