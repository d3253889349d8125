# Shared by the shell benches (sourced): one release hlsd on a free
# loopback port, and an upload followed to its end.

# hlsd_start STORE [FLAGS...]: starts target/release/hlsd (or $HLSD_BIN)
# on STORE with FLAGS; sets HLSD_PID and HLSD_ADDR (host:port) once it
# listens.
hlsd_start() {
  local store=$1; shift
  HLSD_LOG=$(mktemp)
  "${HLSD_BIN:-target/release/hlsd}" --listen 127.0.0.1:0 --storage "$store" "$@" >"$HLSD_LOG" 2>/dev/null &
  HLSD_PID=$!
  for _ in $(seq 100); do grep -q listening "$HLSD_LOG" && break; sleep 0.1; done
  HLSD_ADDR=$(sed -n 's|.*http://\([^ ]*\).*|\1|p' "$HLSD_LOG")
}

# hlsd_stop: stops the server hlsd_start started.
hlsd_stop() {
  kill "$HLSD_PID" 2>/dev/null; wait "$HLSD_PID" 2>/dev/null || true
  rm -f "$HLSD_LOG"
}

# hlsd_upload FILE: POST /upload of FILE; sets UPLOAD_ID (empty on
# failure) and UPLOAD_ANSWER (the response body).
hlsd_upload() {
  UPLOAD_ANSWER=$(curl -s -F "video=@$1" "http://$HLSD_ADDR/upload")
  UPLOAD_ID=$(echo "$UPLOAD_ANSWER" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
}

# hlsd_wait ID [POLL]: polls the video until ready or failed; sets
# VIDEO_STATUS.
hlsd_wait() {
  while :; do
    VIDEO_STATUS=$(curl -s "http://$HLSD_ADDR/videos/$1" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')
    [ "$VIDEO_STATUS" = ready ] || [ "$VIDEO_STATUS" = failed ] && break
    sleep "${2:-0.5}"
  done
}

# grain_720p_60s: makes (once) and prints the path of the benches' 60 s
# 720p30 source: a Mandelbrot zoom under moving grain (x264 veryfast CRF
# 20, an IDR every 2 s, B-frames) with AAC.
grain_720p_60s() {
  local src=target/bench-inputs/grain-h264-1280x720-60s.mp4
  mkdir -p target/bench-inputs
  if [ ! -f "$src" ]; then
    ffmpeg -v error -y -f lavfi -i "mandelbrot=size=1280x720:rate=30,noise=alls=8:allf=t+u" \
      -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 -c:v libx264 -preset veryfast \
      -crf 20 -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p -c:a aac \
      -movflags +faststart "$src.tmp.mp4"
    mv "$src.tmp.mp4" "$src"
  fi
  echo "$src"
}

