//! The rendition ladder: which sizes and bit rates a source is encoded to.
//!
//! Rungs are named by their short side (`720p` is 1280×720 landscape or
//! 720×1280 portrait), keep the source's display aspect, and never upscale.
//! `auto` takes every standard rung at or below the source; when none is
//! (a 160×120 clip), the source's own size is the one rung. When the top
//! rung is copied from the source (see `copy`), it is the source's size and
//! the encoded rungs are the standard ones strictly below it.
//!
//! # Bit rates
//! Each encoded rung is CRF (`--crf`) capped by a VBV maxrate from a
//! bits-per-pixel rule, anchored at 30 frames/s on 16:9 pictures:
//!
//! | rung  | maxrate at 30 fps | bits per pixel |
//! |-------|-------------------|----------------|
//! | 2160p | 16 000 kb/s       | 0.064          |
//! | 1440p | 10 000 kb/s       | 0.090          |
//! | 1080p |  6 000 kb/s       | 0.096          |
//! |  720p |  3 000 kb/s       | 0.109          |
//! |  480p |  1 500 kb/s       | 0.122          |
//! |  360p |    800 kb/s       | 0.116          |
//! |  240p |    400 kb/s       | 0.130          |
//! |  144p |    200 kb/s       | 0.190          |
//!
//! Between anchors the bits per pixel are interpolated by height; the rate
//! is bpp × width × height × fps, with fps clamped to 12..=60 (so 60 fps
//! gets twice the 30 fps cap, 24 fps 0.8×), and never above
//! `--max-video-kbps`. `bufsize` is twice the maxrate.
//!
//! Bit rates fall with heights: each encoded rung is capped at 70% of the
//! rung above it, which for a copied top rung is the source's own bit rate
//! (a 720p source at 1 Mb/s gets a 480p rung of at most 700 kb/s, not the
//! table's 1.5 Mb/s, so no player picks a worse picture for more bytes).

use crate::config::{Ladder, VideoCodec};

/// The standard rungs, by short side, largest first.
pub(crate) const STANDARD: [u32; 6] = [2160, 1440, 1080, 720, 480, 360];

/// Bits-per-pixel anchors: (short side, bpp at 30 fps).
const BPP: [(u32, f64); 8] = [
    (2160, 0.0643),
    (1440, 0.0904),
    (1080, 0.0965),
    (720, 0.1085),
    (480, 0.1220),
    (360, 0.1157),
    (240, 0.1302),
    (144, 0.1929),
];

/// One rendition to make.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RungPlan {
    /// Folder and display name: `720p`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// VBV maxrate for an encoded rung, kbit/s.
    pub maxrate_kbps: u32,
    /// Made by copying the source's packets.
    pub copy: bool,
    /// Its codec (an extra codec group's rungs follow the H.264 ones).
    pub codec: VideoCodec,
}

/// The rungs of every extra codec group of `codecs`: each H.264 rung again
/// (same size and cap, never copied), named `av1-720p`, `hevc-720p`.
pub(crate) fn twins(rungs: &[RungPlan], codecs: &crate::config::Codecs) -> Vec<RungPlan> {
    codecs
        .extra()
        .flat_map(|c| {
            rungs.iter().map(move |r| RungPlan {
                name: format!("{}-{}", c.name(), r.name),
                copy: false,
                codec: c,
                ..r.clone()
            })
        })
        .collect()
}

/// Bits per pixel for a picture whose short side is `short`.
fn bpp(short: u32) -> f64 {
    let s = f64::from(short);
    if short >= BPP[0].0 {
        return BPP[0].1;
    }
    for w in BPP.windows(2) {
        let ((h0, b0), (h1, b1)) = (w[0], w[1]);
        if short <= h0 && short >= h1 {
            let t = (s - f64::from(h1)) / f64::from(h0 - h1);
            return b1 + t * (b0 - b1);
        }
    }
    BPP[BPP.len() - 1].1
}

/// The maxrate of a `w`×`h` rung at `fps` (the module's table), kbit/s.
pub(crate) fn maxrate_kbps(w: u32, h: u32, fps: f64, cap_kbps: u32) -> u32 {
    let fps = if fps.is_finite() { fps } else { 30.0 }.clamp(12.0, 60.0);
    let bits = bpp(w.min(h)) * f64::from(w) * f64::from(h) * fps;
    ((bits / 1000.0).round() as u32).clamp(64, cap_kbps.max(64))
}

/// Size of a rung with short side `short` for a `w`×`h` picture: same
/// aspect, even sides.
fn rung_size(w: u32, h: u32, short: u32) -> (u32, u32) {
    let even = |v: f64| ((v / 2.0).round() as u32).max(1) * 2;
    if w >= h {
        let rw = even(f64::from(w) * f64::from(short) / f64::from(h.max(1)));
        (rw, short)
    } else {
        let rh = even(f64::from(h) * f64::from(short) / f64::from(w.max(1)));
        (short, rh)
    }
}

/// Each rung's share of the bit rate of the rung above it, at most.
const BELOW_ABOVE: f64 = 0.7;

/// The rungs for a source shown at `w`×`h` (even, rotation applied) at
/// `fps`. `copy_top`: the top rung is the source itself, copied, at this
/// video bit rate (kbit/s).
pub(crate) fn plan(
    ladder: &Ladder,
    w: u32,
    h: u32,
    fps: f64,
    copy_top: Option<u32>,
    cap_kbps: u32,
) -> Vec<RungPlan> {
    let short = w.min(h);
    let source_rung = |copy: Option<u32>| RungPlan {
        name: format!("{short}p"),
        width: w,
        height: h,
        maxrate_kbps: copy.unwrap_or_else(|| maxrate_kbps(w, h, fps, cap_kbps)),
        copy: copy.is_some(),
        codec: VideoCodec::H264,
    };
    let heights: Vec<u32> = match ladder {
        Ladder::Source => return vec![source_rung(copy_top)],
        Ladder::Auto => STANDARD.to_vec(),
        Ladder::Heights(hs) => hs.clone(),
    };
    let mut rungs: Vec<RungPlan> = Vec::new();
    if copy_top.is_some() {
        rungs.push(source_rung(copy_top));
    }
    for s in heights {
        // Never upscale; a copied top already covers the source's size.
        if s > short || (copy_top.is_some() && s >= short) {
            continue;
        }
        let s = s & !1;
        let (rw, rh) = rung_size(w, h, s);
        let below_above = rungs.last().map_or(u32::MAX, |r| {
            (f64::from(r.maxrate_kbps) * BELOW_ABOVE) as u32
        });
        rungs.push(RungPlan {
            name: format!("{s}p"),
            width: rw,
            height: rh,
            maxrate_kbps: maxrate_kbps(rw, rh, fps, cap_kbps).min(below_above).max(64),
            copy: false,
            codec: VideoCodec::H264,
        });
    }
    if rungs.is_empty() {
        rungs.push(source_rung(None));
    }
    rungs.truncate(crate::config::MAX_RUNGS);
    rungs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: &[RungPlan]) -> Vec<String> {
        r.iter()
            .map(|r| format!("{}:{}x{}", r.name, r.width, r.height))
            .collect()
    }

    #[test]
    fn auto_ladder_never_upscales() {
        let l = plan(&Ladder::Auto, 1920, 1080, 30.0, None, 20_000);
        assert_eq!(
            names(&l),
            [
                "1080p:1920x1080",
                "720p:1280x720",
                "480p:854x480",
                "360p:640x360"
            ]
        );
        let l = plan(&Ladder::Auto, 854, 480, 30.0, None, 20_000);
        assert_eq!(names(&l), ["480p:854x480", "360p:640x360"]);
        let l = plan(&Ladder::Auto, 160, 120, 30.0, None, 20_000);
        assert_eq!(names(&l), ["120p:160x120"]);
        // Portrait: named by the short side.
        let l = plan(&Ladder::Auto, 720, 1280, 30.0, None, 20_000);
        assert_eq!(names(&l), ["720p:720x1280", "480p:480x854", "360p:360x640"]);
        let l = plan(&Ladder::Auto, 3840, 2160, 30.0, None, 20_000);
        assert_eq!(l.len(), 6);
    }

    #[test]
    fn copied_top_is_the_source_and_the_rest_is_below() {
        let l = plan(&Ladder::Auto, 1280, 720, 30.0, Some(4000), 20_000);
        assert_eq!(names(&l), ["720p:1280x720", "480p:854x480", "360p:640x360"]);
        assert!(l[0].copy && !l[1].copy);
        let l = plan(&Ladder::Source, 1280, 720, 30.0, Some(4000), 20_000);
        assert_eq!(l.len(), 1);
        let l = plan(
            &Ladder::Heights(vec![1080, 480]),
            1280,
            720,
            30.0,
            None,
            20_000,
        );
        assert_eq!(names(&l), ["480p:854x480"]);
    }

    #[test]
    fn bit_rates_fall_below_a_lean_copied_source() {
        let l = plan(&Ladder::Auto, 1280, 720, 30.0, Some(1000), 20_000);
        let rates: Vec<u32> = l.iter().map(|r| r.maxrate_kbps).collect();
        assert_eq!(rates, [1000, 700, 489]);
        // A generous source leaves the table's rates.
        let l = plan(&Ladder::Auto, 1280, 720, 30.0, Some(8000), 20_000);
        assert!((1450..=1550).contains(&l[1].maxrate_kbps));
        for w in plan(&Ladder::Auto, 3840, 2160, 30.0, None, 100_000).windows(2) {
            assert!(w[1].maxrate_kbps < w[0].maxrate_kbps);
        }
    }

    #[test]
    fn bit_rates_follow_the_table() {
        let k = |w, h, f| maxrate_kbps(w, h, f, 100_000);
        assert!(
            (5900..=6100).contains(&k(1920, 1080, 30.0)),
            "{}",
            k(1920, 1080, 30.0)
        );
        assert!((2900..=3100).contains(&k(1280, 720, 30.0)));
        assert!((1450..=1550).contains(&k(854, 480, 30.0)));
        assert!((780..=820).contains(&k(640, 360, 30.0)));
        assert_eq!(k(1280, 720, 60.0), 2 * k(1280, 720, 30.0));
        assert_eq!(maxrate_kbps(1920, 1080, 30.0, 4000), 4000);
    }
}
