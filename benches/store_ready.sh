#!/usr/bin/env bash
# Object storage (issue 15): time to `ready` for a 60 s 720p30 upload with
# the videos in an S3 bucket (s3s-fs on this machine) against the file
# store, three runs each, alternating; then, with two nodes on one bucket,
# the delay between a segment landing in the bucket and the second node's
# playlist listing it. Run from the repository root: benches/store_ready.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin hlsd >/dev/null 2>&1
S3S=$(command -v s3s-fs || echo "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs")
mkdir -p target/bench-inputs
input=target/bench-inputs/720p30-4M-60s.mp4
if [ ! -f "$input" ]; then
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 60 -c:v libx264 -preset fast -b:v 4M -maxrate 4M -bufsize 4M -pix_fmt yuv420p \
    -c:a aac -movflags +faststart "$input.tmp.mp4"
  mv "$input.tmp.mp4" "$input"
fi

# One S3 server for the whole run.
s3root=$(mktemp -d); mkdir "$s3root/hlsd"; s3log=$(mktemp)
export AWS_ACCESS_KEY_ID=AKbench0123 AWS_SECRET_ACCESS_KEY=benchsecret0123456789
RUST_LOG=info NO_COLOR=1 "$S3S" --host 127.0.0.1 --port 0 --access-key "$AWS_ACCESS_KEY_ID" \
  --secret-key "$AWS_SECRET_ACCESS_KEY" "$s3root" >"$s3log" 2>&1 &
s3pid=$!
trap 'kill $s3pid 2>/dev/null; rm -rf "$s3root" "$s3log"' EXIT
for _ in $(seq 100); do grep -q "server is running at" "$s3log" && break; sleep 0.1; done
s3url=$(sed -n 's|.*server is running at \(http://[0-9.:]*\).*|\1|p' "$s3log" | head -1)

start_node() { # out-file extra-flags… ; prints the address
  local out=$1; shift
  target/release/hlsd --listen 127.0.0.1:0 --storage "$(mktemp -d)" "$@" >"$out" 2>/dev/null &
  echo $! >"$out.pid"
  for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
  sed -n 's|.*http://\([^ ]*\).*|\1|p' "$out"
}
stop_node() { kill "$(cat "$1.pid")"; wait "$(cat "$1.pid")" 2>/dev/null || true; rm -f "$1" "$1.pid"; }
status_of() { curl -s "http://$1/videos/$2" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p'; }

ready_in() { # flags… ; prints seconds to ready
  local out addr id t0 t1 st n=0
  out=$(mktemp); addr=$(start_node "$out" "$@")
  [ -n "$addr" ] || { echo "hlsd did not start with: $*" >&2; exit 1; }
  t0=$(date +%s.%N)
  id=$(curl -s -F "video=@$input" "http://$addr/upload" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  [ -n "$id" ] || { echo "the upload was refused" >&2; exit 1; }
  while :; do
    st=$(status_of "$addr" "$id")
    [ "$st" = ready ] || [ "$st" = failed ] && break
    n=$((n + 1)); [ $n -lt 6000 ] || { echo "not ready after 20 min" >&2; exit 1; }
    sleep 0.2
  done
  t1=$(date +%s.%N)
  stop_node "$out"
  [ "$st" = ready ] || { echo "failed" >&2; exit 1; }
  echo "$t1 - $t0" | bc
}

files=(); buckets=()
for i in 1 2 3; do
  f=$(ready_in); files+=("$f")
  b=$(ready_in --store "s3://hlsd/bench$i" --s3-endpoint "$s3url" --s3-path-style); buckets+=("$b")
  printf 'run %d: file store %.1f s, s3s-fs %.1f s\n' "$i" "$f" "$b"
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
mf=$(median "${files[@]}"); mb=$(median "${buckets[@]}")
printf 'median time to ready: file %.1f s, s3s-fs %.1f s, ratio %.3f (target <= 1.2)\n' "$mf" "$mb" "$(echo "$mb / $mf" | bc -l)"

# Segment delay: A transcodes into the bucket, B serves; for each segment,
# (B's playlist first lists it) - (its object's mtime in the bucket).
outa=$(mktemp); outb=$(mktemp)
a=$(start_node "$outa" --store s3://hlsd/delay --s3-endpoint "$s3url" --s3-path-style --node-name a)
b=$(start_node "$outb" --store s3://hlsd/delay --s3-endpoint "$s3url" --s3-path-style --node-name b)
id=$(curl -s -F "video=@$input" "http://$a/upload" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
python3 - "$b" "$id" "$s3root/hlsd/delay/$id" <<'PY'
import os, sys, time, urllib.request, statistics
b, vid, folder = sys.argv[1:4]
seen, delays, deadline = set(), [], time.time() + 600
def get(path):
    try:
        return urllib.request.urlopen(f"http://{b}{path}", timeout=10).read().decode()
    except Exception:
        return ""
top = ""
while time.time() < deadline:
    master = get(f"/play/{vid}/video.m3u8")
    variants = [l for l in master.splitlines() if l.endswith(".m3u8")]
    if variants:
        top = variants[0]
        break
    time.sleep(0.05)
rung = top.rsplit("/", 1)[0] if "/" in top else ""
ended = False
while not ended and time.time() < deadline:
    text = get(f"/play/{vid}/{top}")
    now = time.time()
    for line in text.splitlines():
        if line and not line.startswith("#") and line not in seen:
            seen.add(line)
            path = os.path.join(folder, rung, line)
            if os.path.exists(path):
                delays.append(now - os.path.getmtime(path))
    ended = "#EXT-X-ENDLIST" in text
    time.sleep(0.05)
d = sorted(delays)
print(f"segment in bucket -> listed by node B ({len(d)} segments of {top}): "
      f"median {statistics.median(d)*1000:.0f} ms, p90 {d[int(len(d)*0.9)]*1000:.0f} ms, max {d[-1]*1000:.0f} ms"
      " (B polled every 50 ms; playlists are read from the bucket on every request)")
PY
stop_node "$outa"; stop_node "$outb"
