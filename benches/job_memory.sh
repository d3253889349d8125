#!/usr/bin/env bash
# Peak memory (VmHWM) of the server for one transcode job, with its
# default settings (the auto ladder, libx264 veryfast), one fresh server
# per case so each peak is that job's:
#   - 1080p30 at 20 Mb/s, 30 s: 4 rungs (1080/720/480/360)
#   - 720p30, 30 s: 3 rungs (720/480/360)
# Both encoded (`--copy never`, the heavier case). Then the ffmpeg CLI's
# peak for the same ladder (one process, split, audio once in an agroup),
# with veryfast's own lookahead and b-pyramid, and with hlsd's memory
# settings (`--x264-lookahead 5`, `--x264-b-pyramid none`, force-cfr).
# Run from the repository root: benches/job_memory.sh
# (EXTRA="--flag …" passes server flags)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/support/hlsd.sh
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
  local store hwm t0 t1 rungs
  store=$(mktemp -d)
  # shellcheck disable=SC2086
  hlsd_start "$store" --copy never ${EXTRA:-}
  t0=$(date +%s.%N)
  hlsd_upload "$2"
  hlsd_wait "$UPLOAD_ID"
  t1=$(date +%s.%N)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$HLSD_PID/status)
  rungs=$(curl -s "http://$HLSD_ADDR/videos/$UPLOAD_ID" | grep -o '"name":"[0-9]*p"' | wc -l)
  hlsd_stop
  rm -rf "$store"
  printf '%-28s %s, %d rungs, ready in %.1f s, server peak RSS %d MiB\n' \
    "$1" "$VIDEO_STATUS" "$rungs" "$(echo "$t1 - $t0" | bc)" $((hwm / 1024))
}
cli() { # label input top-height x264-extra
  local out rungs fc maps vsm n i w h r
  out=$(mktemp -d)
  if [ "$3" = 1080 ]; then rungs=(1920:1080:6000 1280:720:3000 854:480:1500 640:360:800)
  else rungs=(1280:720:3000 854:480:1500 640:360:800); fi
  n=${#rungs[@]}; fc="[0:v]split=$n"; maps=(); vsm=""
  for i in $(seq 0 $((n - 1))); do fc+="[s$i]"; done
  for i in $(seq 0 $((n - 1))); do
    IFS=: read -r w h r <<<"${rungs[$i]}"
    fc+=";[s$i]scale=$w:$h:flags=bicubic[v$i]"
    maps+=(-map "[v$i]" "-x264-params:v:$i"
      "keyint=120:min-keyint=1:scenecut=0:open-gop=0:vbv-maxrate=$r:vbv-bufsize=$((r * 2))$4")
    vsm+="v:$i,agroup:aud "
  done
  local stats
  stats=$( { /usr/bin/time -f "%M %e" ffmpeg -v error -y -i "$2" -filter_complex "$fc" "${maps[@]}" \
    -map 0:a -c:v libx264 -preset veryfast -crf 23 -profile:v high -pix_fmt yuv420p \
    -force_key_frames "expr:gte(t,n_forced*2)" -c:a aac -b:a 128000 -ar 48000 -ac 2 \
    -f hls -hls_time 6 -hls_list_size 0 -hls_playlist_type vod -master_pl_name master.m3u8 \
    -var_stream_map "${vsm}a:0,agroup:aud" -hls_segment_filename "$out/%v_%05d.ts" "$out/%v.m3u8"; } 2>&1 | tail -1)
  rm -rf "$out"
  printf '%-28s ffmpeg CLI %s, %d rungs, done in %s s, peak RSS %d MiB\n' \
    "$1" "${4:-(veryfast own)}" "$n" "${stats#* }" $((${stats% *} / 1024))
}
in1080=$(make_input 1080p30-20M-30s.mp4 1920x1080 20M)
in720=$(make_input 720p30-4M-30s.mp4 1280x720 4M)
run "1080p30 20 Mb/s, 30 s" "$in1080"
run "720p30, 30 s" "$in720"
[ -n "${NO_CLI:-}" ] && exit 0
cli "1080p30 20 Mb/s, 30 s" "$in1080" 1080 ""
cli "1080p30 20 Mb/s, 30 s" "$in1080" 1080 ":rc-lookahead=5:b-pyramid=none:force-cfr=1"
cli "720p30, 30 s" "$in720" 720 ""
cli "720p30, 30 s" "$in720" 720 ":rc-lookahead=5:b-pyramid=none:force-cfr=1"
