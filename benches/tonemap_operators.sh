#!/usr/bin/env bash
# Which tone-mapping operator (issue 31): frame 0 of the graded 1080p
# picture of benches/hdr_cost.sh (testsrc2 with SDR white at 203 nits,
# BT.2408's reference white, over a ramp to 1,000 nits), as PQ and as HLG,
# tone-mapped to BT.709 SDR by each operator the machine has: libavfilter's
# `tonemap` (clip, reinhard, hable, mobius, in zimg's linear light, as
# hlsd's table computes mobius) and libplacebo's (bt.2390, bt.2446a,
# spline; on the CPU through Mesa's lavapipe). For each, three numbers:
#   - the SDR part of the picture against the same testsrc2 frame shown as
#     plain SDR (what a viewer should see of content graded at reference
#     white): SSIM and mean luma (the original's is printed first);
#   - highlights: how many distinct luma codes the ramp keeps between
#     reference white (203 nits) and 1,000 nits (more: detail kept; the
#     ramp is 792 pixels wide there).
# Prints one line per source and operator. Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/bench-inputs
W=1920
PIC="testsrc2=s=${W}x1020:r=30:d=1,format=yuv420p,\
setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709"
MASTER="$PIC,zscale=t=linear:p=bt709:npl=100,format=gbrpf32le,\
geq=r='2.03*r(X\,Y)':g='2.03*g(X\,Y)':b='2.03*b(X\,Y)'[pic];\
color=c=black:s=${W}x60:r=30:d=1,format=gbrpf32le,\
geq=r='10*pow(X/(W-1)\,3)':g='10*pow(X/(W-1)\,3)':b='10*pow(X/(W-1)\,3)',\
setparams=range=pc:color_primaries=bt709:color_trc=linear:colorspace=gbr[ramp];\
[pic][ramp]vstack,setparams=range=pc:color_primaries=bt709:color_trc=linear:colorspace=gbr"
D=target/bench-inputs/tonemap
mkdir -p "$D"
# The sources, lossless (FFV1 10-bit), and the SDR original.
for trc in smpte2084 arib-std-b67; do
  [ -f "$D/$trc.mkv" ] || ffmpeg -v error -y -filter_complex \
    "$MASTER,zscale=p=bt2020:t=$trc:m=bt2020nc:r=tv:npl=100:agamma=0,format=yuv420p10le" \
    -frames:v 1 -c:v ffv1 -color_primaries bt2020 -color_trc "$trc" -colorspace bt2020nc \
    -color_range tv "$D/$trc.mkv"
done
ffmpeg -v error -y -filter_complex "$PIC" -frames:v 1 -f rawvideo -pix_fmt gray "$D/original.gray"
# The ramp's columns from reference white (203 nits) on: 10 * (x / (W-1))^3 >= 2.03.
X0=$(python3 -c "print(int(round(($W - 1) * (2.03 / 10) ** (1 / 3))))")
# hlsd's peak when the source says none (1,000 nits; HLG's nominal display),
# and HLG's OOTF as the sources were made (agamma=0), as tests/colour.rs.
zimg() { # trc op
  local tin=$1 op=$2 agamma=""
  [ "$tin" = arib-std-b67 ] && agamma=":agamma=0"
  echo "zscale=tin=$tin:min=bt2020nc:pin=bt2020:rin=tv:t=linear:npl=100$agamma,format=gbrpf32le,\
zscale=p=bt709,tonemap=tonemap=$op:desat=0:peak=10,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
}
placebo() { # op
  echo "hwupload,libplacebo=tonemapping=$1:colorspace=bt709:color_primaries=bt709:color_trc=bt709\
:range=tv:format=yuv420p,hwdownload,format=yuv420p"
}
measure() { # source filter label
  local out="$D/out.gray"
  ffmpeg -v error -y -init_hw_device vulkan -i "$1" -frames:v 1 -vf "$2,extractplanes=y" \
    -f rawvideo -pix_fmt gray "$out"
  python3 - "$out" "$D/original.gray" "$W" "$X0" "$3" <<'EOF'
import sys
out, orig, w, x0, label = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
a, b = open(out, 'rb').read(), open(orig, 'rb').read()
pic = a[: w * 1020]
def ssim(x, y, n=8):
    # Mean SSIM over n×n blocks (luma, 8-bit constants).
    c1, c2, s, k = (0.01 * 255) ** 2, (0.03 * 255) ** 2, 0.0, 0
    for by in range(0, 1020 - n + 1, n):
        for bx in range(0, w - n + 1, n):
            p = [x[(by + i) * w + bx + j] for i in range(n) for j in range(n)]
            q = [y[(by + i) * w + bx + j] for i in range(n) for j in range(n)]
            mp, mq = sum(p) / len(p), sum(q) / len(q)
            vp = sum((v - mp) ** 2 for v in p) / len(p)
            vq = sum((v - mq) ** 2 for v in q) / len(q)
            cv = sum((u - mp) * (v - mq) for u, v in zip(p, q)) / len(p)
            s += ((2 * mp * mq + c1) * (2 * cv + c2)) / ((mp * mp + mq * mq + c1) * (vp + vq + c2))
            k += 1
    return s / k
row = a[w * 1050 : w * 1051]
levels = len(set(row[x0:]))
print(f"{label:32s} SSIM {ssim(pic, b):.4f}  mean luma {sum(pic) / len(pic):6.1f} "
      f"(original {sum(b) / len(b):.1f})  highlight levels {levels}")
EOF
}
for trc in smpte2084 arib-std-b67; do
  for op in clip reinhard hable mobius; do
    measure "$D/$trc.mkv" "$(zimg "$trc" "$op")" "$trc tonemap=$op"
  done
  for op in bt.2390 bt.2446a spline; do
    measure "$D/$trc.mkv" "$(placebo "$op")" "$trc libplacebo $op"
  done
done
