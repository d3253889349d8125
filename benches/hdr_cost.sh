#!/usr/bin/env bash
# What tone mapping costs (issue 31): time to ready of a 1080p HDR (PQ,
# HEVC Main 10) source's default 4-rung ladder against the same picture as
# an SDR (BT.709, HEVC Main 10) source of the same size, so decoding costs
# the same and the difference is the tone mapping. Both encoded
# (`--copy never`), one fresh release server per run, the two alternated
# ROUNDS times (default 3); prints every run, the medians and their ratio
# (target <= 1.3). Also the job's own CPU time (processing_seconds is wall
# time of its work; the server's utime+stime from /proc is CPU).
# Run from the repository root: benches/hdr_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/hlsd.sh
cargo build --release --bin hlsd >/dev/null 2>&1
mkdir -p target/bench-inputs
SECS=${SECS:-20}
ROUNDS=${ROUNDS:-3}
# GRAIN=1: moving grain over the picture (noise=alls=10:allf=t+u), as a
# camera's, for both sources (the tone mapper's slow case: most 2x2
# blocks span several of its luma cells).
GRAIN=${GRAIN:-0}
NOISE=""; TAG=""
if [ "$GRAIN" = 1 ]; then NOISE=",noise=alls=10:allf=t+u"; TAG="-grain"; fi
# The graded picture of tests/colour.rs at 1080p: testsrc2 with SDR white
# at 203 nits over a grey ramp to 1,000 nits.
MASTER="testsrc2=s=1920x1020:r=30:d=$SECS,format=yuv420p$NOISE,\
setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709,\
zscale=t=linear:p=bt709:npl=100,format=gbrpf32le,\
geq=r='2.03*r(X\,Y)':g='2.03*g(X\,Y)':b='2.03*b(X\,Y)'[pic];\
color=c=black:s=1920x60:r=30:d=$SECS,format=gbrpf32le,\
geq=r='10*pow(X/(W-1)\,3)':g='10*pow(X/(W-1)\,3)':b='10*pow(X/(W-1)\,3)',\
setparams=range=pc:color_primaries=bt709:color_trc=linear:colorspace=gbr[ramp];\
[pic][ramp]vstack,setparams=range=pc:color_primaries=bt709:color_trc=linear:colorspace=gbr"
X265="log-level=error:range=limited:repeat-headers=1"
PQ=target/bench-inputs/hdr-pq-1080p-${SECS}s$TAG.mp4
SDR=target/bench-inputs/hdr-sdr-1080p-${SECS}s$TAG.mp4
if [ ! -f "$PQ" ]; then
  ffmpeg -v error -y -filter_complex "$MASTER,zscale=p=bt2020:t=smpte2084:m=bt2020nc:r=tv:npl=100,format=yuv420p10le" \
    -c:v libx265 -preset fast -crf 20 -tag:v hvc1 -color_primaries bt2020 -color_trc smpte2084 \
    -colorspace bt2020nc -color_range tv \
    -x265-params "$X265:colorprim=bt2020:colormatrix=bt2020nc:transfer=smpte2084:hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,210" \
    "$PQ.tmp.mp4"
  mv "$PQ.tmp.mp4" "$PQ"
fi
if [ ! -f "$SDR" ]; then
  ffmpeg -v error -y -filter_complex "$MASTER,zscale=p=bt709:t=bt709:m=bt709:r=tv:npl=203,format=yuv420p10le" \
    -c:v libx265 -preset fast -crf 20 -tag:v hvc1 -color_primaries bt709 -color_trc bt709 \
    -colorspace bt709 -color_range tv \
    -x265-params "$X265:colorprim=bt709:colormatrix=bt709:transfer=bt709" "$SDR.tmp.mp4"
  mv "$SDR.tmp.mp4" "$SDR"
fi
run() { # label input -> "wall cpu"
  local store t0 t1 cpu
  store=$(mktemp -d)
  hlsd_start "$store" --copy never
  t0=$(date +%s.%N)
  hlsd_upload "$2"
  hlsd_wait "$UPLOAD_ID" 0.2
  t1=$(date +%s.%N)
  cpu=$(awk '{print ($14 + $15) / 100}' /proc/$HLSD_PID/stat)
  hlsd_stop
  rm -rf "$store"
  printf '%-4s %s ready in %6.2f s wall, %6.2f s CPU\n' "$1" "$VIDEO_STATUS" "$(echo "$t1 - $t0" | bc)" "$cpu" >&2
  echo "$(echo "$t1 - $t0" | bc) $cpu"
}
sdr_w=(); pq_w=(); sdr_c=(); pq_c=()
for r in $(seq "$ROUNDS"); do
  read -r w c < <(run sdr "$SDR"); sdr_w+=("$w"); sdr_c+=("$c")
  read -r w c < <(run pq "$PQ"); pq_w+=("$w"); pq_c+=("$c")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
sw=$(median "${sdr_w[@]}"); pw=$(median "${pq_w[@]}")
sc=$(median "${sdr_c[@]}"); pc=$(median "${pq_c[@]}")
printf 'median wall: SDR %.2f s, PQ %.2f s, ratio %.3f (target <= 1.3)\n' "$sw" "$pw" "$(echo "$pw / $sw" | bc -l)"
printf 'median CPU:  SDR %.2f s, PQ %.2f s, ratio %.3f\n' "$sc" "$pc" "$(echo "$pc / $sc" | bc -l)"
