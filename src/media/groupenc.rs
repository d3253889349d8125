//! Opening the encoder of a codec group's rung: SVT-AV1 or libx265, fed
//! the same frames as the H.264 rung of its size, with keyframes on the
//! same frames (see [`KeyInt`]).
//!
//! SVT-AV1 (1.4 here, through FFmpeg 5.1) ignores a frame asked to be a
//! keyframe; it places one every `gop_size` frames, so an AV1 group sets
//! that to the grid and every other rung is forced on it. Its logical
//! processors (`lp`) follow the rung's share of the cores. libx265 takes
//! forced IDRs as libx264 does (`forced-idr`), with its own keyframes and
//! scene cuts off, closed GOPs, the rung's VBV cap, and one thread pool of
//! the rung's share.

use super::colour::{Colour, Hdr};
use super::svtlock::Encoder;
use super::x264::KeyInt;
use super::Settings;
use crate::config::VideoCodec;
use crate::hls::ladder::RungPlan;
use crate::Error;
use ffmpeg_next::{Dictionary, Rational};

/// Opens rung `rung`'s encoder (`rung.codec` is AV1 or HEVC).
pub(crate) fn open_encoder(
    rung: &RungPlan,
    (tb, fps): (Rational, Rational),
    keyint: KeyInt,
    (threads, keep): (usize, Option<(Hdr, &Colour)>),
    settings: &Settings,
) -> Result<Encoder, Error> {
    let name = match rung.codec {
        VideoCodec::Av1 => "libsvtav1",
        VideoCodec::Hevc => "libx265",
        VideoCodec::H264 => "libx264",
    };
    let mut enc = super::x264::rung_context(name, rung, (tb, fps))?;
    if let Some((hdr, _)) = keep {
        super::hdrkeep::set_encoder(&mut enc, hdr);
    }
    let threads = threads.max(1);
    let opts = match rung.codec {
        VideoCodec::Av1 => {
            enc.set_gop(keyint.grid.unwrap_or(keyint.max).max(1));
            let hdr = keep.map_or(String::new(), |(h, c)| super::hdrkeep::svt_params(c, h));
            av1_options(rung, settings, (threads, &hdr))
        }
        _ => {
            let hdr = keep.map_or(String::new(), |(h, c)| super::hdrkeep::x265_params(c, h));
            hevc_options(rung, (keyint.max, &hdr), settings, threads)
        }
    };
    // SVT-AV1 opens in its turn (see `svtlock`).
    super::svtlock::open(rung.codec == VideoCodec::Av1, || enc.open_with(opts))
        .map_err(|e| Error::Media(format!("opening {name}: {e}")))
}

/// What a kept HDR rung's encoder was opened with, to open it again once
/// the first frame has said the HDR metadata its stream did not (SEI
/// only: libx265 and SVT-AV1 take them as options when they open, not per
/// frame).
pub(crate) struct Reopen {
    rung: RungPlan,
    rate: (Rational, Rational),
    keyint: KeyInt,
    threads: usize,
    hdr: Hdr,
    settings: Settings,
}

impl Reopen {
    /// For rung `rung` opened with these arguments, if it keeps HDR.
    pub(crate) fn of(
        rung: &RungPlan,
        rate: (Rational, Rational),
        keyint: KeyInt,
        (threads, keep): (usize, Option<Hdr>),
        settings: &Settings,
    ) -> Option<Reopen> {
        let hdr = keep.filter(|_| rung.codec != VideoCodec::H264)?;
        Some(Reopen {
            rung: rung.clone(),
            rate,
            keyint,
            threads,
            hdr,
            settings: settings.clone(),
        })
    }

    /// The encoder again, with `colour`'s HDR metadata.
    pub(crate) fn open(&self, colour: &Colour) -> Result<Encoder, Error> {
        let keep = (self.threads, Some((self.hdr, colour)));
        open_encoder(&self.rung, self.rate, self.keyint, keep, &self.settings)
    }
}

/// An AV1 rung's cap, as a share of the H.264 rung's: what AV1 is for is
/// fewer bytes, and uncapped CRF spends more than capped x264 on grain
/// (BENCHMARKS.md).
const AV1_RATE_SHARE: f64 = 0.7;

/// SVT-AV1's options: capped CRF, closed GOPs (key frames, not forward
/// ones: every segment decodes alone), the rung's share of the cores, and
/// no lookahead beyond the mini-GOP (`lookahead=0`: 44 MiB less per 720p
/// rung, the same SSIM on a grain clip; BENCHMARKS.md).
fn av1_options(
    rung: &RungPlan,
    settings: &Settings,
    (threads, hdr): (usize, &str),
) -> Dictionary<'static> {
    let cap = rung.maxrate_kbps.min(settings.max_video_kbps).max(64);
    let cap = (f64::from(cap) * AV1_RATE_SHARE) as u32;
    let mut opts = Dictionary::new();
    opts.set("preset", &settings.av1_preset.to_string());
    opts.set("crf", &settings.av1_crf.to_string());
    opts.set("maxrate", &format!("{cap}k"));
    opts.set("bufsize", &format!("{}k", cap * 2));
    opts.set(
        "svtav1-params",
        &format!("lp={threads}:irefresh-type=2:lookahead=0:hierarchical-levels=3{hdr}"),
    );
    opts
}

fn hevc_options(
    rung: &RungPlan,
    (keyint, hdr): (u32, &str),
    settings: &Settings,
    threads: usize,
) -> Dictionary<'static> {
    let maxrate = rung.maxrate_kbps.min(settings.max_video_kbps).max(64);
    let mut opts = Dictionary::new();
    opts.set("preset", &settings.hevc_preset);
    opts.set("crf", &settings.hevc_crf.to_string());
    opts.set("forced-idr", "1");
    opts.set(
        "x265-params",
        &format!(
            "keyint={}:min-keyint=1:scenecut=0:open-gop=0:vbv-maxrate={maxrate}\
             :vbv-bufsize={}:pools={threads}:frame-threads={}:log-level=error{hdr}",
            keyint.max(2),
            maxrate * 2,
            threads.min(4),
        ),
    );
    opts
}
