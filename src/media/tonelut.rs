//! HDR to SDR as one 3D LUT: the same mathematics as zimg + libavfilter's
//! `tonemap` (see [`super::colour`]), evaluated once per job on a grid and
//! applied per pixel by libavfilter's `haldclut` (tetrahedral
//! interpolation, slice-threaded), instead of two float conversions of
//! every picture and a per-pixel tone map on one thread. The grid is a
//! Hald CLUT image handed to the graph as a frame: nothing on disk.
//! Measured in BENCHMARKS.md ("HDR").
//!
//! The grid's input is the HDR signal as RGB (PQ or HLG, BT.2020
//! primaries, full range); its output the SDR picture as limited-range
//! BT.709 Y'CbCr (see [`to_ycbcr`]). Per point: the signal to display
//! light relative to 100 nits (PQ's EOTF; HLG's inverse OETF and its OOTF
//! on luminance, γ 1.2, a 1,000-nit display), the BT.2020 gamut to
//! BT.709's (in linear light), `mobius` on the brightest component with
//! the colour kept (libavfilter's, `j` 0.3, no desaturation), then the
//! inverse BT.1886 EOTF (what zimg's display-referred `bt709` is), sign
//! kept, and the BT.709 matrix. Colours outside BT.709 keep their negative
//! components up to the matrix, as zimg's float pipeline does: clipping
//! each component first would brighten every vivid colour (by 3.6 code
//! values on average over the test picture), so the output is Y'CbCr,
//! which holds them, not RGB, which cannot.

use super::colour::Hdr;

/// The Hald CLUT's level: 64 points a side (level²), a 512×512 image
/// (level³). On the test pictures the mean luma is within 0.8 (PQ) and
/// 0.5 (HLG) of the exact mapping's at 64 points; at 49 or 36 one of the
/// two is off by 1.5–1.9. The table's size (3 MB as `haldclut` keeps it)
/// cost nothing measurable against 49³ (BENCHMARKS.md, "HDR").
pub(crate) const LEVEL: usize = 8;

/// The Hald CLUT image for a tone mapper peak of `peak_nits`: its side,
/// and its pixels as packed 16-bit RGB (`rgb48`), row by row, red the
/// fastest-changing coordinate; each pixel holds [`to_ycbcr`]'s output.
pub(crate) fn hald(hdr: Hdr, peak_nits: f64) -> (usize, Vec<u16>) {
    let n = LEVEL * LEVEL;
    let side = LEVEL * LEVEL * LEVEL;
    let step = 1.0 / (n - 1) as f64;
    let to709 = gamut_2020_to_709();
    let peak = (peak_nits / 100.0).max(1.0);
    let mut out = Vec::with_capacity(side * side * 3);
    for i in 0..side * side {
        let (r, g, b) = (i % n, i / n % n, i / (n * n));
        let signal = [r as f64 * step, g as f64 * step, b as f64 * step];
        out.extend(to_ycbcr(map(hdr, signal, &to709, peak)));
    }
    (side, out)
}

/// One point: HDR signal to gamma-encoded BT.709 RGB, unclipped.
pub(super) fn map(hdr: Hdr, signal: [f64; 3], to709: &[[f64; 3]; 3], peak: f64) -> [f64; 3] {
    let light = match hdr {
        Hdr::Pq => signal.map(|e| pq_eotf(e) / 100.0),
        Hdr::Hlg => hlg_display(signal),
    };
    let linear = mul(to709, light);
    let sig = linear[0].max(linear[1]).max(linear[2]).max(1e-6);
    // Light above the peak (metadata that undersold it) stops at white,
    // hue kept, rather than going on into superwhite.
    let k = mobius(sig, 0.3, peak).min(1.0) / sig;
    linear.map(|c| {
        let v = c * k;
        v.abs().powf(1.0 / 2.4).copysign(v)
    })
}

/// A gamma-encoded BT.709 colour (its components may lie outside
/// [0, 1], where the BT.2020 gamut's edges fall) as limited-range BT.709
/// Y'CbCr, 16 bits each, in the Hald pixel's red, green and blue: Cr, Y',
/// Cb. Clipped only at the 16-bit code range, as a float conversion to
/// Y'CbCr would be (the later 8-bit conversion clips the rest).
pub(super) fn to_ycbcr(c: [f64; 3]) -> [u16; 3] {
    let y = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    let cb = (c[2] - y) / 1.8556;
    let cr = (c[0] - y) / 1.5748;
    let code = |v: f64| (v * 256.0).round().clamp(0.0, 65535.0) as u16;
    [
        code(128.0 + 224.0 * cr),
        code(16.0 + 219.0 * y),
        code(128.0 + 224.0 * cb),
    ]
}

/// SMPTE ST 2084: signal to nits.
fn pq_eotf(e: f64) -> f64 {
    const M1: f64 = 0.159_301_757_812_5;
    const M2: f64 = 78.843_75;
    const C1: f64 = 0.835_937_5;
    const C2: f64 = 18.851_562_5;
    const C3: f64 = 18.687_5;
    if e <= 0.0 {
        return 0.0;
    }
    let p = e.powf(1.0 / M2);
    let num = (p - C1).max(0.0);
    let den = (C2 - C3 * p).max(f64::MIN_POSITIVE);
    10_000.0 * (num / den).powf(1.0 / M1)
}

/// ARIB STD-B67 (HLG): signal to display light relative to 100 nits on a
/// 1,000-nit display (inverse OETF, then the OOTF on BT.2020 luminance).
fn hlg_display(signal: [f64; 3]) -> [f64; 3] {
    const A: f64 = 0.178_832_77;
    const B: f64 = 0.284_668_92;
    const C: f64 = 0.559_910_73;
    let scene = signal.map(|e| {
        let e = e.max(0.0);
        if e <= 0.5 {
            e * e / 3.0
        } else {
            (((e - C) / A).exp() + B) / 12.0
        }
    });
    let ys = (0.2627 * scene[0] + 0.6780 * scene[1] + 0.0593 * scene[2]).max(f64::MIN_POSITIVE);
    let gain = ys.powf(1.2 - 1.0) * 10.0;
    scene.map(|c| c * gain)
}

/// libavfilter's `mobius` (vf_tonemap.c), `j` its parameter.
fn mobius(x: f64, j: f64, peak: f64) -> f64 {
    if x <= j {
        return x;
    }
    let a = -j * j * (peak - 1.0) / (j * j - 2.0 * j + peak);
    let b = (j * j - 2.0 * j * peak + peak) / (peak - 1.0).max(1e-6);
    (b * b + 2.0 * b * j + j * j) / (b - a) * (x + a) / (x + b)
}

/// Linear BT.2020 RGB to linear BT.709 RGB (both D65), from the
/// primaries' chromaticities.
pub(super) fn gamut_2020_to_709() -> [[f64; 3]; 3] {
    let bt2020 = to_xyz([(0.708, 0.292), (0.170, 0.797), (0.131, 0.046)]);
    let bt709 = to_xyz([(0.640, 0.330), (0.300, 0.600), (0.150, 0.060)]);
    matmul(&invert(&bt709), &bt2020)
}

/// The RGB to XYZ matrix of primaries `p` with a D65 white.
fn to_xyz(p: [(f64, f64); 3]) -> [[f64; 3]; 3] {
    let xyz = |(x, y): (f64, f64)| [x / y, 1.0, (1.0 - x - y) / y];
    let cols = p.map(xyz);
    let m = [0, 1, 2].map(|r| [cols[0][r], cols[1][r], cols[2][r]]);
    let white = xyz((0.3127, 0.3290));
    let s = mul(&invert(&m), white);
    [0, 1, 2].map(|r| [0, 1, 2].map(|c| m[r][c] * s[c]))
}

fn mul(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    m.map(|row| row[0] * v[0] + row[1] * v[1] + row[2] * v[2])
}

fn matmul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    [0, 1, 2].map(|r| [0, 1, 2].map(|c| (0..3).map(|k| a[r][k] * b[k][c]).sum()))
}

fn invert(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c = |r: usize, k: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (k1, k2) = ((k + 1) % 3, (k + 2) % 3);
        m[r1][k1] * m[r2][k2] - m[r1][k2] * m[r2][k1]
    };
    let det = m[0][0] * c(0, 0) + m[0][1] * c(0, 1) + m[0][2] * c(0, 2);
    [0, 1, 2].map(|r| [0, 1, 2].map(|k| c(k, r) / det))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gamut_matrix_is_bt2087s() {
        // ITU-R BT.2087: BT.2020 to BT.709, four decimals.
        let m = gamut_2020_to_709();
        let want = [
            [1.6605, -0.5876, -0.0728],
            [-0.1246, 1.1329, -0.0083],
            [-0.0182, -0.1006, 1.1187],
        ];
        for r in 0..3 {
            for c in 0..3 {
                assert!((m[r][c] - want[r][c]).abs() < 5e-4, "{m:?}");
            }
        }
    }

    #[test]
    fn pq_and_hlg_say_their_known_values() {
        // PQ: 0.5081 is 100 nits, 0.58 about 203, 1.0 is 10,000.
        assert!((pq_eotf(0.508_078) - 100.0).abs() < 0.1);
        assert!((pq_eotf(1.0) - 10_000.0).abs() < 1e-6);
        // HLG: 0.75 grey is 203 nits on a 1,000-nit display (BT.2408).
        let grey = hlg_display([0.75; 3])[0] * 100.0;
        assert!((grey - 203.0).abs() < 3.0, "{grey}");
        assert!((hlg_display([1.0; 3])[0] - 10.0).abs() < 1e-4);
    }

    #[test]
    fn black_stays_black_white_is_white_and_greys_stay_grey() {
        let m = gamut_2020_to_709();
        for hdr in [Hdr::Pq, Hdr::Hlg] {
            assert_eq!(
                to_ycbcr(map(hdr, [0.0; 3], &m, 10.0)),
                [128 << 8, 16 << 8, 128 << 8]
            );
            let top = to_ycbcr(map(hdr, [1.0; 3], &m, 10.0));
            assert_eq!(top, [128 << 8, 235 << 8, 128 << 8]);
            let mut last = 0;
            for i in 1..=20 {
                let [cr, y, cb] = to_ycbcr(map(hdr, [f64::from(i) / 20.0; 3], &m, 10.0));
                assert!(cr.abs_diff(128 << 8) <= 1 && cb.abs_diff(128 << 8) <= 1);
                // Rising, until the peak clips at white.
                assert!(y > last || y == 235 << 8, "not monotonic at {i}");
                last = y;
            }
        }
    }

    #[test]
    fn the_reference_pipeline_says_the_same() {
        // zscale + tonemap=mobius:peak=10 + zscale (yuv444p) of flat PQ
        // colours, ffmpeg 5.1: Y', Cb, Cr.
        let m = gamut_2020_to_709();
        let cases = [
            ([0.3; 3], [100, 128, 128]),
            ([0.508; 3], [201, 128, 128]),
            ([0.7; 3], [232, 128, 128]),
            ([0.6, 0.3, 0.2], [16, 113, 255]),
            ([0.2, 0.5, 0.3], [122, 89, 0]),
            ([0.7, 0.6, 0.1], [142, 27, 188]),
        ];
        for (signal, [y, cb, cr]) in cases {
            let [gcr, gy, gcb] =
                to_ycbcr(map(Hdr::Pq, signal, &m, 10.0)).map(|v| (v >> 8).min(255));
            let near = |a: u16, b: u16| a.abs_diff(b) <= 1;
            assert!(
                near(gy, y) && near(gcb, cb) && near(gcr, cr),
                "{signal:?}: {gy} {gcb} {gcr}, the CLI's {y} {cb} {cr}"
            );
        }
    }

    #[test]
    fn the_hald_image_has_every_point_in_order() {
        let (side, px) = hald(Hdr::Pq, 1000.0);
        assert_eq!(side, 512);
        assert_eq!(px.len(), 512 * 512 * 3);
        // Black, then (red fastest) the darkest red: Cr up, Cb down;
        // the last point is white.
        assert_eq!(px[..3], [128 << 8, 16 << 8, 128 << 8]);
        assert!(px[3] > 128 << 8 && px[5] < 128 << 8);
        assert_eq!(px[px.len() - 3..], [128 << 8, 235 << 8, 128 << 8]);
    }
}
