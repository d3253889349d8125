//! Colour: what a source's pictures are (transfer, primaries, matrix,
//! range, bit depth, HDR metadata, Dolby Vision), and how they become the
//! SDR BT.709 limited-range pictures every H.264 rendition is.
//!
//! - An HDR source (PQ or HLG) is tone-mapped once, before the rungs'
//!   scalers (so the cost is paid once, not per rung), by one 3D LUT
//!   ([`super::tonelut`]'s mathematics) that computes what zimg and
//!   libavfilter's `tonemap` would: linear light (HLG's OOTF on
//!   luminance), the gamut mapped to BT.709, `mobius` (linear up to 30%
//!   of SDR white, so mid-tones and skin keep their values, highlights
//!   rolled off to the peak), back to BT.709; BT.2020
//!   primaries are assumed, so a mistagged frame cannot change the path.
//!   10-bit 4:2:0 goes through it in Y'CbCr before the graph (1.15× an
//!   SDR source's time to ready, [`super::ycctone`]), the rest through
//!   `haldclut` in RGB (1.44×; zscale + tonemap: 1.67×; BENCHMARKS.md).
//! - The tone mapper's peak is never left to the metadata: an absurd
//!   mastering display (0.005 nit) would give a white picture. PQ takes
//!   the larger of MaxCLL and the mastering display's peak that are
//!   between 100 and 10,000 nits, else 1,000; HLG is 1,000 (its nominal
//!   display).
//! - An SDR source keeps its colours: its matrix (BT.601 for SD and JPEG,
//!   BT.709, BT.2020) and range (full-range `yuvj` comes out limited) are
//!   converted in each rung's scaler; a wide-gamut SDR source (BT.2020
//!   primaries) has its gamut mapped with zimg first.
//! - Every output is tagged (`setparams`, and the encoder's VUI), so
//!   players never guess.

use ffmpeg_next::color::{Primaries, Range, Space, TransferCharacteristic as Trc};

/// What HDR a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hdr {
    Pq,
    Hlg,
}

/// A mastering display (SMPTE ST 2086), in nits.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Mastering {
    pub max_nits: f64,
    pub min_nits: f64,
    /// CIE 1931 xy of the red, green and blue primaries and the white
    /// point, when the metadata has them.
    pub primaries: Option<[(f64, f64); 4]>,
}

/// Dolby Vision configuration (the `dvcC`/`dvvC` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Dovi {
    pub profile: u8,
    pub level: u8,
    /// `dv_bl_signal_compatibility_id`: 0 none (profile 5: no HDR10
    /// fallback), 1 HDR10, 2 SDR, 4 HLG.
    pub compatibility: u8,
}

/// A source's colour, as its stream (and first frame) say it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Colour {
    pub transfer: Trc,
    pub primaries: Primaries,
    pub matrix: Space,
    pub range: Range,
    pub bits: u8,
    pub mastering: Option<Mastering>,
    /// MaxCLL, MaxFALL (nits).
    pub light: Option<(u32, u32)>,
    pub dovi: Option<Dovi>,
    /// The decoder's pixel format is a JPEG (`yuvj`) one: full range.
    pub jpeg: bool,
    /// Picture height (an unspecified matrix is BT.601 up to 576 lines).
    pub height: u32,
}

impl Default for Colour {
    fn default() -> Self {
        Colour {
            transfer: Trc::Unspecified,
            primaries: Primaries::Unspecified,
            matrix: Space::Unspecified,
            range: Range::Unspecified,
            bits: 8,
            mastering: None,
            light: None,
            dovi: None,
            jpeg: false,
            height: 0,
        }
    }
}

/// A value in the range HDR metadata can sensibly say, in nits.
fn plausible(nits: f64) -> Option<f64> {
    (100.0..=10_000.0).contains(&nits).then_some(nits)
}

impl Colour {
    /// PQ or HLG, from the transfer (a Dolby Vision stream says so too).
    pub(crate) fn hdr(&self) -> Option<Hdr> {
        match self.transfer {
            Trc::SMPTE2084 => Some(Hdr::Pq),
            Trc::ARIB_STD_B67 => Some(Hdr::Hlg),
            _ => match self.dovi.map(|d| d.compatibility) {
                Some(4) => Some(Hdr::Hlg),
                Some(1) => Some(Hdr::Pq),
                _ => None,
            },
        }
    }

    /// BT.2020 primaries (or another gamut wider than BT.709's).
    pub(crate) fn wide_gamut(&self) -> bool {
        matches!(
            self.primaries,
            Primaries::BT2020 | Primaries::SMPTE431 | Primaries::SMPTE432
        )
    }

    /// Full range (`pc`), by tag or by a JPEG pixel format.
    pub(crate) fn full_range(&self) -> bool {
        self.range == Range::JPEG || self.jpeg
    }

    /// The tone mapper's peak, in nits (see the module docs).
    pub(crate) fn peak_nits(&self) -> f64 {
        if self.hdr() == Some(Hdr::Hlg) {
            return 1000.0;
        }
        let cll = self.light.and_then(|(max, _)| plausible(f64::from(max)));
        let mdcv = self.mastering.and_then(|m| plausible(m.max_nits));
        match (cll, mdcv) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => 1000.0,
        }
    }

    /// The matrix the source's YUV was made with, as swscale names it.
    fn scale_matrix(&self) -> &'static str {
        match self.matrix {
            Space::BT709 => "bt709",
            Space::BT2020NCL | Space::BT2020CL => "bt2020",
            Space::BT470BG | Space::SMPTE170M => "bt601",
            Space::SMPTE240M => "smpte240m",
            Space::FCC => "fcc",
            _ if self.jpeg || self.height <= 576 => "bt601",
            _ => "bt709",
        }
    }

    /// What to put before the rungs' `split` (empty: nothing): a
    /// wide-gamut SDR source gamut mapped to BT.709 limited range. (HDR is
    /// tone-mapped by a LUT: [`Colour::tone_map_filters`].)
    pub(crate) fn sdr_filters(&self) -> String {
        let rin = if self.full_range() { "pc" } else { "tv" };
        if self.hdr().is_some() || !self.wide_gamut() {
            return String::new();
        }
        format!(
            "zscale=min=bt2020nc:pin=bt2020:rin={rin}:t=linear:npl=100:p=bt709,\
             format=gbrpf32le,zscale=t=bt709:m=bt709:r=tv,format=yuv420p,"
        )
    }

    /// For an HDR source: the filters before and after the tone-mapping
    /// LUT ([`super::tonelut`]): its Y'CbCr to full-range 16-bit planar
    /// RGB with the BT.2020 matrix; then the LUT's output, BT.709
    /// limited-range Y'CbCr carried in the RGB planes (green Y', blue Cb,
    /// red Cr: `gbrp`'s plane order is `yuv444p`'s), relabelled as such
    /// (`mergeplanes` copies planes) and brought to 8-bit 4:2:0 once, so
    /// the rungs' scalers read no more than an SDR source's.
    pub(crate) fn tone_map_filters(&self) -> Option<(String, &'static str)> {
        self.hdr()?;
        let rin = if self.full_range() { "pc" } else { "tv" };
        let before = format!(
            "scale=in_color_matrix=bt2020:in_range={rin}:out_range=pc\
             :flags=bicubic+accurate_rnd+full_chroma_int,format=gbrp16le"
        );
        let after = "mergeplanes=map0s=0:map0p=0:map1s=0:map1p=1:map2s=0:map2p=2\
             :format=yuv444p16le,\
             setparams=range=tv:colorspace=bt709:color_trc=bt709:color_primaries=bt709,\
             scale=in_range=tv:out_range=tv:flags=bicubic+accurate_rnd,format=yuv420p,";
        Some((before, after))
    }

    /// Each rung's scaler's colour options: from what reaches it (the
    /// source, or BT.709 limited range after [`Colour::sdr_filters`]) to
    /// BT.709 limited range.
    pub(crate) fn scale_options(&self) -> String {
        let (matrix, range) = if self.hdr().is_some() || self.wide_gamut() {
            ("bt709", "tv")
        } else {
            let range = if self.full_range() { "pc" } else { "tv" };
            (self.scale_matrix(), range)
        };
        format!("in_color_matrix={matrix}:in_range={range}:out_color_matrix=bt709:out_range=tv")
    }
}

impl Colour {
    /// The colour a video stream and its decoder say (HDR metadata from
    /// the stream's side data, where the container carries it).
    pub(crate) fn of_stream(
        st: &ffmpeg_next::format::stream::Stream,
        dec: &ffmpeg_next::decoder::Video,
    ) -> Colour {
        use ffmpeg_next::codec::packet::side_data::Type as T;
        let name = format!("{:?}", dec.format()).to_lowercase();
        let bits = ["p16", "p14", "p12", "p10", "p9"]
            .iter()
            .find(|p| name.contains(*p))
            .and_then(|p| p[1..].parse().ok())
            .unwrap_or(8);
        let mut c = Colour {
            transfer: dec.color_transfer_characteristic(),
            primaries: dec.color_primaries(),
            matrix: dec.color_space(),
            range: dec.color_range(),
            bits,
            jpeg: name.starts_with("yuvj"),
            height: dec.height(),
            ..Colour::default()
        };
        for sd in st.side_data() {
            match sd.kind() {
                T::MasteringDisplayMetadata => c.mastering = mastering(sd.data()),
                T::ContentLightLevel => c.light = content_light(sd.data()),
                T::DOVI_CONF => c.dovi = dovi(sd.data()),
                _ => {}
            }
        }
        c
    }

    /// The same, with what the first decoded frame says besides (its
    /// tags when the stream had none; HDR metadata that came in SEI).
    pub(crate) fn with_frame(mut self, f: &ffmpeg_next::frame::Video) -> Colour {
        use ffmpeg_next::frame::side_data::Type as T;
        if self.transfer == Trc::Unspecified {
            self.transfer = f.color_transfer_characteristic();
        }
        if self.primaries == Primaries::Unspecified {
            self.primaries = f.color_primaries();
        }
        if self.matrix == Space::Unspecified {
            self.matrix = f.color_space();
        }
        if self.range == Range::Unspecified {
            self.range = f.color_range();
        }
        if let Some(sd) = f.side_data(T::MasteringDisplayMetadata) {
            self.mastering = self.mastering.or(mastering(sd.data()));
        }
        if let Some(sd) = f.side_data(T::ContentLightLevel) {
            self.light = self.light.or(content_light(sd.data()));
        }
        self
    }

    /// As the record shows it.
    pub(crate) fn info(&self) -> crate::catalog::ColourInfo {
        let name = |n: Option<&'static str>| n.unwrap_or("unknown").to_owned();
        crate::catalog::ColourInfo {
            transfer: match self.hdr() {
                Some(Hdr::Pq) => "pq",
                Some(Hdr::Hlg) => "hlg",
                None => "sdr",
            }
            .into(),
            transfer_characteristic: name(self.transfer.name()),
            primaries: name(self.primaries.name()),
            matrix: name(self.matrix.name()),
            range: if self.full_range() { "pc" } else { "tv" }.into(),
            bit_depth: self.bits,
            mastering_display: self.mastering.map(|m| crate::catalog::MasteringDisplay {
                max_luminance: m.max_nits,
                min_luminance: m.min_nits,
            }),
            content_light: self
                .light
                .map(|(max_cll, max_fall)| crate::catalog::ContentLight { max_cll, max_fall }),
            dolby_vision: self.dovi.map(|d| crate::catalog::DolbyVision {
                profile: d.profile,
                level: d.level,
                compatibility: match d.compatibility {
                    1 => "hdr10",
                    2 => "sdr",
                    4 => "hlg",
                    _ => "none",
                }
                .into(),
            }),
        }
    }
}

/// The tags every SDR output frame carries (`setparams`).
pub(crate) const SDR_TAGS: &str =
    "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv";

/// Reads an `AVMasteringDisplayMetadata` (10 rationals of primaries and
/// white point, min, max; then two ints saying which are set) from side
/// data bytes.
pub(crate) fn mastering(data: &[u8]) -> Option<Mastering> {
    let int = |i: usize| -> Option<i32> {
        let b = data.get(i * 4..i * 4 + 4)?;
        Some(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let q = |i: usize| -> Option<f64> {
        let (n, d) = (int(i)?, int(i + 1)?);
        (d != 0).then(|| f64::from(n) / f64::from(d))
    };
    // Rationals 0..8 are the primaries and white point; 8 min, 9 max.
    let has_luminance = int(21)? != 0;
    let xy = |i: usize| Some((q(i)?, q(i + 2)?));
    let primaries = (int(20)? != 0)
        .then(|| Some([xy(0)?, xy(4)?, xy(8)?, xy(12)?]))
        .flatten();
    has_luminance.then(|| Mastering {
        min_nits: q(16).unwrap_or(0.0),
        max_nits: q(18).unwrap_or(0.0),
        primaries,
    })
}

/// Reads an `AVContentLightMetadata` (MaxCLL, MaxFALL).
pub(crate) fn content_light(data: &[u8]) -> Option<(u32, u32)> {
    let u = |i: usize| -> Option<u32> {
        let b = data.get(i * 4..i * 4 + 4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    Some((u(0)?, u(1)?))
}

/// Reads an `AVDOVIDecoderConfigurationRecord` (one byte each: version
/// major, minor, profile, level, rpu, el, bl flags, compatibility id).
pub(crate) fn dovi(data: &[u8]) -> Option<Dovi> {
    Some(Dovi {
        profile: *data.get(2)?,
        level: *data.get(3)?,
        compatibility: *data.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pq(light: Option<(u32, u32)>, max_nits: Option<f64>) -> Colour {
        Colour {
            transfer: Trc::SMPTE2084,
            primaries: Primaries::BT2020,
            matrix: Space::BT2020NCL,
            range: Range::MPEG,
            bits: 10,
            light,
            mastering: max_nits.map(|m| Mastering {
                max_nits: m,
                min_nits: 0.0001,
                primaries: None,
            }),
            ..Colour::default()
        }
    }

    #[test]
    fn the_peak_is_never_an_absurd_one() {
        assert_eq!(pq(Some((1000, 210)), Some(1000.0)).peak_nits(), 1000.0);
        assert_eq!(pq(Some((4000, 400)), Some(1000.0)).peak_nits(), 4000.0);
        // 0.005 nit and MaxCLL 0: the default, not a white picture.
        assert_eq!(pq(Some((0, 0)), Some(0.005)).peak_nits(), 1000.0);
        assert_eq!(pq(None, None).peak_nits(), 1000.0);
        assert_eq!(pq(None, Some(1e9)).peak_nits(), 1000.0);
        let hlg = Colour {
            transfer: Trc::ARIB_STD_B67,
            ..pq(Some((4000, 1)), None)
        };
        assert_eq!(hlg.peak_nits(), 1000.0);
        // Tone-mapped by the LUT, between conversions with the right
        // matrices; never by the SDR path.
        for c in [pq(None, None), hlg] {
            assert!(c.sdr_filters().is_empty());
            let (before, after) = c.tone_map_filters().unwrap();
            assert!(before.starts_with("scale=in_color_matrix=bt2020:in_range=tv"));
            assert!(after.contains("format=yuv444p16le,setparams=range=tv:colorspace=bt709"));
        }
    }

    #[test]
    fn sdr_sources_keep_their_matrix_and_come_out_limited() {
        let sd = Colour {
            height: 480,
            ..Colour::default()
        };
        assert!(sd
            .scale_options()
            .starts_with("in_color_matrix=bt601:in_range=tv"));
        assert!(sd.sdr_filters().is_empty());
        let jpeg = Colour {
            jpeg: true,
            height: 1080,
            ..Colour::default()
        };
        assert!(jpeg
            .scale_options()
            .starts_with("in_color_matrix=bt601:in_range=pc"));
        let hd = Colour {
            matrix: Space::BT709,
            height: 1080,
            ..Colour::default()
        };
        assert!(hd
            .scale_options()
            .starts_with("in_color_matrix=bt709:in_range=tv"));
        let wide = Colour {
            primaries: Primaries::BT2020,
            transfer: Trc::BT2020_10,
            ..hd
        };
        assert!(wide
            .sdr_filters()
            .starts_with("zscale=min=bt2020nc:pin=bt2020"));
    }

    #[test]
    fn side_data_is_read_from_its_bytes() {
        let mut b = Vec::new();
        for (n, d) in [(0, 1); 8] {
            b.extend_from_slice(&i32::to_ne_bytes(n));
            b.extend_from_slice(&i32::to_ne_bytes(d));
        }
        for (n, d) in [(1, 10_000), (10_000_000, 10_000)] {
            b.extend_from_slice(&i32::to_ne_bytes(n));
            b.extend_from_slice(&i32::to_ne_bytes(d));
        }
        b.extend_from_slice(&i32::to_ne_bytes(1));
        b.extend_from_slice(&i32::to_ne_bytes(1));
        let m = mastering(&b).unwrap();
        assert_eq!((m.max_nits, m.min_nits), (1000.0, 0.0001));
        assert_eq!(mastering(&b[..10]), None);
        let cll: Vec<u8> = [1000u32, 210]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        assert_eq!(content_light(&cll), Some((1000, 210)));
        let d = dovi(&[1, 0, 8, 6, 1, 0, 1, 4]).unwrap();
        assert_eq!((d.profile, d.level, d.compatibility), (8, 6, 4));
    }
}
