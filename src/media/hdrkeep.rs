//! `--hdr keep`: an HDR source's HEVC and AV1 rungs stay HDR (issue 31).
//!
//! The video graph splits before the tone mapping: the H.264 rungs (and
//! the poster, the storyboard) take the SDR branch as always; a kept
//! rung's branch is scaled in the source's own BT.2020 matrix to 10-bit
//! 4:2:0 limited range and tagged with the source's transfer (PQ or HLG).
//! Its encoder is opened 10-bit (HEVC Main 10, AV1 10-bit) with the same
//! tags in its VUI, and a PQ source's mastering display and content light
//! level go with it: libx265 writes them as HDR10 SEI, SVT-AV1 as metadata
//! OBUs (its `mastering-display`/`content-light` parameters). Where the
//! source has them in SEI only, the first frame says them, and the kept
//! rungs' encoders are opened again with them before any frame
//! (`groupenc::Reopen`). The master
//! playlist says `VIDEO-RANGE=PQ|HLG` on those variants and
//! `VIDEO-RANGE=SDR` on the others.

use super::colour::{Colour, Hdr};
use ffmpeg_next::color::{Primaries, Range, Space, TransferCharacteristic as Trc};
use ffmpeg_next::format::Pixel;

/// `VIDEO-RANGE` of a rung kept in `hdr`.
pub(crate) fn video_range(hdr: Hdr) -> &'static str {
    match hdr {
        Hdr::Pq => "PQ",
        Hdr::Hlg => "HLG",
    }
}

fn trc_name(hdr: Hdr) -> &'static str {
    match hdr {
        Hdr::Pq => "smpte2084",
        Hdr::Hlg => "arib-std-b67",
    }
}

/// A kept rung's filters after its branch of the split: scaled in the
/// source's matrix (BT.2020) to `w`×`h`, 10-bit 4:2:0 limited range,
/// tagged.
pub(crate) fn branch_filters(colour: &Colour, hdr: Hdr, (w, h): (u32, u32)) -> String {
    let rin = if colour.full_range() { "pc" } else { "tv" };
    format!(
        "scale={w}:{h}:flags=bicubic:in_color_matrix=bt2020:in_range={rin}\
         :out_color_matrix=bt2020:out_range=tv,setsar=1,format=yuv420p10le,\
         setparams=color_primaries=bt2020:color_trc={}:colorspace=bt2020nc:range=tv",
        trc_name(hdr)
    )
}

/// A kept rung's encoder: 10-bit input, BT.2020, the source's transfer.
pub(crate) fn set_encoder(enc: &mut ffmpeg_next::encoder::video::Video, hdr: Hdr) {
    enc.set_format(Pixel::YUV420P10LE);
    enc.set_color_primaries(Primaries::BT2020);
    enc.set_color_transfer_characteristic(match hdr {
        Hdr::Pq => Trc::SMPTE2084,
        Hdr::Hlg => Trc::ARIB_STD_B67,
    });
    enc.set_colorspace(Space::BT2020NCL);
    enc.set_color_range(Range::MPEG);
}

/// libx265's parameters for a kept rung (after `:`): HDR10 SEI with the
/// source's mastering display (x, y in 0.00002, luminance in 0.0001 nit;
/// BT.2020 primaries and D65 when it names none) and content light level,
/// where the source has them.
pub(crate) fn x265_params(colour: &Colour, hdr: Hdr) -> String {
    if hdr != Hdr::Pq {
        return String::new();
    }
    let mut p = String::from(":hdr10=1");
    if let Some(m) = colour.mastering.filter(|m| m.max_nits > 0.0) {
        let [r, g, b, w] = m.primaries.unwrap_or(BT2020_D65);
        let xy = |(x, y): (f64, f64)| format!("({},{})", unit(x, 50_000.0), unit(y, 50_000.0));
        p.push_str(&format!(
            ":master-display=G{}B{}R{}WP{}L({},{})",
            xy(g),
            xy(b),
            xy(r),
            xy(w),
            unit(m.max_nits, 10_000.0),
            unit(m.min_nits, 10_000.0)
        ));
    }
    if let Some((cll, fall)) = colour.light.filter(|l| l.0 > 0) {
        p.push_str(&format!(":max-cll={cll},{fall}"));
    }
    p
}

/// SVT-AV1's parameters for a kept rung (after `:`): the source's
/// mastering display (CIE xy, nits; BT.2020 and D65 when it names none)
/// and content light level, where the source has them.
pub(crate) fn svt_params(colour: &Colour, hdr: Hdr) -> String {
    if hdr != Hdr::Pq {
        return String::new();
    }
    let mut p = String::new();
    if let Some(m) = colour.mastering.filter(|m| m.max_nits > 0.0) {
        let [r, g, b, w] = m.primaries.unwrap_or(BT2020_D65);
        let xy = |(x, y): (f64, f64)| format!("({x:.5},{y:.5})");
        p.push_str(&format!(
            ":mastering-display=G{}B{}R{}WP{}L({:.4},{:.4})",
            xy(g),
            xy(b),
            xy(r),
            xy(w),
            m.max_nits,
            m.min_nits
        ));
    }
    if let Some((cll, fall)) = colour.light.filter(|l| l.0 > 0) {
        p.push_str(&format!(":content-light={cll},{fall}"));
    }
    p
}

/// BT.2020's primaries (red, green, blue) and D65.
const BT2020_D65: [(f64, f64); 4] = [
    (0.708, 0.292),
    (0.170, 0.797),
    (0.131, 0.046),
    (0.3127, 0.3290),
];

fn unit(v: f64, per: f64) -> u64 {
    (v.max(0.0) * per).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::colour::Mastering;

    #[test]
    fn pq_rungs_carry_the_sources_mastering_display_and_light_level() {
        let mut c = Colour {
            mastering: Some(Mastering {
                max_nits: 1000.0,
                min_nits: 0.005,
                primaries: Some([(0.68, 0.32), (0.265, 0.69), (0.15, 0.06), (0.3127, 0.329)]),
            }),
            light: Some((1000, 400)),
            ..Colour::default()
        };
        assert_eq!(
            x265_params(&c, Hdr::Pq),
            ":hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)\
             WP(15635,16450)L(10000000,50):max-cll=1000,400"
        );
        assert_eq!(
            svt_params(&c, Hdr::Pq),
            ":mastering-display=G(0.26500,0.69000)B(0.15000,0.06000)R(0.68000,0.32000)\
             WP(0.31270,0.32900)L(1000.0000,0.0050):content-light=1000,400"
        );
        assert_eq!(x265_params(&c, Hdr::Hlg), "");
        assert_eq!(svt_params(&c, Hdr::Hlg), "");
        c.mastering = None;
        c.light = None;
        assert_eq!(x265_params(&c, Hdr::Pq), ":hdr10=1");
        assert_eq!(svt_params(&c, Hdr::Pq), "");
        assert_eq!((video_range(Hdr::Pq), video_range(Hdr::Hlg)), ("PQ", "HLG"));
        let f = branch_filters(&c, Hdr::Hlg, (1280, 720));
        assert!(
            f.contains("format=yuv420p10le") && f.contains("color_trc=arib-std-b67"),
            "{f}"
        );
    }
}
