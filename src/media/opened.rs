//! Opening a source's video stream: its decoder (threads, caps, strict
//! decoding for a copy), its frame rate, and what the stream says of its
//! colour, before the ladder is planned.

use super::media_err;
use super::Settings;
use crate::Error;
use ffmpeg_next::{codec, decoder, format, Rational};

/// The source's video stream, opened, before the ladder is planned.
pub(crate) struct OpenedVideo {
    pub(super) decoder: decoder::Video,
    pub(super) tb: Rational,
    pub(super) rotation: u32,
    pub fps: Rational,
    /// [`constant_rate`].
    pub(super) cfr: bool,
    /// The plan's [`decoder_threads`], which the filter graph follows.
    pub(super) threads: usize,
    /// Displayed size.
    pub width: u32,
    pub height: u32,
    /// Its colour, as the stream says it.
    pub(super) colour: super::colour::Colour,
}

/// The frame rate of stream `ist`: its average, else its base rate, else 25.
pub(crate) fn stream_fps(ist: &format::stream::Stream) -> Rational {
    [ist.avg_frame_rate(), ist.rate()]
        .into_iter()
        .find(|r| r.numerator() > 0 && r.denominator() > 0 && f64::from(*r) <= 240.0)
        .unwrap_or(Rational(25, 1))
}

/// Whether stream `ist` has a constant frame rate: its average rate is its
/// base rate (the lowest that represents every timestamp), so no frame is
/// missing and none comes early. libx264 then need not hold a frame back to
/// learn each one's duration from the next one's timestamp (`force-cfr`,
/// the same pictures, one frame less per rung: 13 MiB on a 1080p ladder).
pub(crate) fn constant_rate(ist: &format::stream::Stream) -> bool {
    let (avg, base) = (ist.avg_frame_rate(), ist.rate());
    avg.numerator() > 0
        && avg.denominator() > 0
        && i64::from(avg.numerator()) * i64::from(base.denominator())
            == i64::from(base.numerator()) * i64::from(avg.denominator())
}

/// Frame threads for the decoder of a job encoding `encoded` rungs on
/// `cores` cores, and threads for its video filter graph. Several rungs'
/// encoders fill a small machine's cores by themselves (decoding is a
/// fifth of a ladder's work), so there the decoder works alone and keeps
/// no pictures for threads that would only wait (−10 to −20 MiB at 1080p,
/// no slower), and the scaling too (swscale's slice threads waited on each
/// other: −1.3% wall and CPU); BENCHMARKS.md, issue 17. A rung alone, a
/// copy, or a big machine: libavcodec's and libavfilter's own count (0).
pub(crate) fn decoder_threads(encoded: usize, cores: usize) -> usize {
    if encoded >= 2 && cores <= 4 {
        1
    } else {
        0
    }
}

/// What the plan decided for the video decoder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecoderPlan {
    /// Degrees clockwise the pictures are turned for display.
    pub rotation: u32,
    /// Displayed size ([`super::vgraph::output_size`] of the stream's).
    pub display: (u32, u32),
    /// [`stream_fps`].
    pub fps: Rational,
    /// [`constant_rate`].
    pub cfr: bool,
    /// Errors in the bitstream are reported, not concealed (the source is
    /// being copied).
    pub strict: bool,
    /// Frame threads, 0 for libavcodec's own count ([`decoder_threads`]).
    pub threads: usize,
}

impl OpenedVideo {
    /// Opens the decoder of input stream `ist` as `plan` says.
    pub(crate) fn open(
        ist: &format::stream::Stream,
        settings: &Settings,
        plan: DecoderPlan,
    ) -> Result<Self, Error> {
        let tb = ist.time_base();
        let mut dctx = codec::context::Context::from_parameters(ist.parameters())
            .map_err(media_err("video decoder parameters"))?;
        crate::ffi::set_max_pixels(&mut dctx, settings.max_pixels);
        if plan.strict {
            crate::ffi::set_strict_decoding(&mut dctx);
        }
        dctx.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Frame,
            count: plan.threads,
            ..Default::default()
        });
        let decoder = dctx
            .decoder()
            .video()
            .map_err(|e| Error::Unprocessable(format!("video decoder: {e}")))?;
        let colour = super::colour::Colour::of_stream(ist, &decoder);
        Ok(OpenedVideo {
            colour,
            decoder,
            tb,
            rotation: plan.rotation,
            fps: plan.fps,
            cfr: plan.cfr,
            threads: plan.threads,
            width: plan.display.0,
            height: plan.display.1,
        })
    }
}
