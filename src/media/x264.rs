//! Opening one libx264 encoder for a rung.

use super::media_err;
use super::Settings;
use crate::hls::ladder::RungPlan;
use crate::Error;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::{codec, encoder, Dictionary, Rational};

/// Where encoders may put keyframes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyInt {
    /// The longest interval (beyond the forced IDRs' spacing, so an
    /// encoder never adds one of its own).
    pub max: u32,
    /// With an AV1 group: keyframes every this many frames, the only way
    /// SVT-AV1 places them (the others are forced on the same frames).
    pub grid: Option<u32>,
}

/// How one encoder is run: its threads and the frames it gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shape {
    /// x264 `threads`.
    pub threads: usize,
    /// One rung of several encoded side by side (`encoders`).
    pub ladder: bool,
    /// Pictures above 720p (`encoders::BIG_RUNG_PIXELS`).
    pub big: bool,
    /// The frames come at a constant rate ([`super::video::constant_rate`]).
    pub cfr: bool,
}

impl Shape {
    /// x264 options for this shape, beside `threads` itself.
    ///
    /// A rung alone keeps x264's threaded lookahead (speed). In a ladder the
    /// rungs already fill the cores side by side, so a big rung's lookahead
    /// runs in its encoding thread (`sync-lookahead=0`), which saves the
    /// frames the lookahead thread's buffer would hold (−24 MiB for a 1080p
    /// ladder; SSIM within 0.03 points). A rung of 720p or less buffers one
    /// frame (`sync-lookahead=1`): its frame threads then never wait on the
    /// lookahead, which makes a 720p ladder 3–4% faster for 3–4 MiB. x264
    /// has no lookahead thread (and ignores this) with one frame thread.
    /// Sliced threads would save a frame thread's pictures too (−20 MiB)
    /// but cost up to 0.4 SSIM points on a rung its bit rate cap starves
    /// (BENCHMARKS.md, issue 17).
    ///
    /// At a constant rate every frame lasts 1/fps, so x264 is told so
    /// (`force-cfr`) and does not hold each frame until the next one's
    /// timestamp arrives: the same pictures, one frame less in memory. A
    /// variable rate keeps the timestamps' durations for rate control.
    fn params(self) -> String {
        let mut p = String::new();
        if self.ladder {
            p.push_str(if self.big {
                ":sync-lookahead=0"
            } else {
                ":sync-lookahead=1"
            });
        }
        if self.cfr {
            p.push_str(":force-cfr=1");
        }
        p
    }
}

/// libx264's own `rc-lookahead` for `preset`, when known.
fn preset_lookahead(preset: &str) -> Option<u32> {
    Some(match preset {
        "ultrafast" | "superfast" => 0,
        "veryfast" => 10,
        "faster" => 20,
        "fast" => 30,
        "medium" => 40,
        "slow" => 50,
        "slower" | "veryslow" | "placebo" => 60,
        _ => return None,
    })
}

/// The `rc-lookahead` option for `settings`: `--x264-lookahead` when it
/// is below the preset's own (or the preset is unknown), else nothing.
fn lookahead_param(settings: &Settings) -> String {
    match preset_lookahead(&settings.x264_preset) {
        Some(own) if own <= settings.x264_lookahead => String::new(),
        _ => format!(":rc-lookahead={}", settings.x264_lookahead),
    }
}

/// An encoder context of `name` for a rung's pictures: its size, yuv420p,
/// the stream's time base and rate, square pixels, BT.709 limited range
/// (the graph makes every picture so and tags it; written in the VUI, so
/// no player guesses), and global headers (the hls muxer wants them,
/// LIBAV-NOTES.md).
pub(crate) fn rung_context(
    name: &str,
    rung: &RungPlan,
    (tb, fps): (Rational, Rational),
) -> Result<encoder::video::Video, Error> {
    let codec = encoder::find_by_name(name)
        .ok_or_else(|| Error::Media(format!("{name} is not available in this FFmpeg build")))?;
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(media_err("video encoder"))?;
    enc.set_width(rung.width);
    enc.set_height(rung.height);
    enc.set_format(Pixel::YUV420P);
    enc.set_time_base(tb);
    enc.set_frame_rate(Some(fps));
    enc.set_aspect_ratio(Rational(1, 1));
    enc.set_color_primaries(ffmpeg_next::color::Primaries::BT709);
    enc.set_color_transfer_characteristic(ffmpeg_next::color::TransferCharacteristic::BT709);
    enc.set_colorspace(ffmpeg_next::color::Space::BT709);
    enc.set_color_range(ffmpeg_next::color::Range::MPEG);
    enc.set_flags(codec::Flags::GLOBAL_HEADER);
    Ok(enc)
}

/// A low-latency live's encoders hold no frame back for later decisions
/// (x264's `zerolatency` but for sliced threads): no B-frames and no
/// lookahead, so a frame leaves the encoder as soon as its thread is done
/// (about 0.5 s sooner at 30 fps than `veryfast`'s 10-frame lookahead and
/// 3 B-frames), for some compression.
fn low_latency_param(settings: &Settings) -> &'static str {
    match settings.live_low {
        true => ":bframes=0:rc-lookahead=0:mbtree=0:sync-lookahead=0",
        false => "",
    }
}

/// Opens libx264 for rung `rung` run as `shape` says.
pub(crate) fn open_encoder(
    rung: &RungPlan,
    tb: Rational,
    fps: Rational,
    keyint: u32,
    shape: Shape,
    settings: &Settings,
) -> Result<encoder::Video, Error> {
    let enc = rung_context("libx264", rung, (tb, fps))?;
    // Keyframes come from our forced IDRs; x264's own interval is set wider
    // than their spacing and scenecut is off, so it never adds one off our
    // cut points. Closed GOPs so every segment decodes alone.
    let mut opts = Dictionary::new();
    opts.set("preset", &settings.x264_preset);
    opts.set("crf", &settings.crf.to_string());
    // High profile for every player; lossless (crf 0) needs High 4:4:4
    // Predictive, which x264 picks itself when no profile is forced.
    if settings.crf > 0 {
        opts.set("profile", "high");
    }
    opts.set("forced-idr", "1");
    let maxrate = rung.maxrate_kbps.min(settings.max_video_kbps).max(64);
    // Threads: the rungs encode side by side (`encoders`), so each gets
    // its share of the cores, not x264's automatic 1.5 a core.
    opts.set("threads", &shape.threads.to_string());
    opts.set(
        "x264-params",
        &format!(
            "keyint={}:min-keyint=1:scenecut=0:open-gop=0:vbv-maxrate={maxrate}:vbv-bufsize={}\
             :b-pyramid={}{}{}{}",
            keyint.max(2),
            maxrate * 2,
            settings.x264_b_pyramid,
            lookahead_param(settings),
            shape.params(),
            low_latency_param(settings)
        ),
    );
    enc.open_with(opts).map_err(|e| {
        Error::Media(format!(
            "opening libx264 (preset {}): {e}",
            settings.x264_preset
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::{lookahead_param, Shape};

    #[test]
    fn big_ladder_rungs_look_ahead_in_their_encoding_thread() {
        let t = |threads, ladder, big| {
            Shape {
                threads,
                ladder,
                big,
                cfr: false,
            }
            .params()
        };
        assert_eq!(t(3, false, false), "");
        assert_eq!(t(3, false, true), "");
        assert_eq!(t(1, true, true), ":sync-lookahead=0");
        assert_eq!(t(2, true, true), ":sync-lookahead=0");
        assert_eq!(t(2, true, false), ":sync-lookahead=1");
    }

    #[test]
    fn only_a_constant_rate_is_forced() {
        let t = |ladder, cfr| {
            Shape {
                threads: 1,
                ladder,
                big: true,
                cfr,
            }
            .params()
        };
        assert_eq!(t(false, true), ":force-cfr=1");
        assert_eq!(t(true, true), ":sync-lookahead=0:force-cfr=1");
        assert_eq!(t(false, false), "");
    }

    #[test]
    fn the_lookahead_cap_only_ever_lowers_the_presets_own() {
        let mut s = crate::media::Settings::from_config(&crate::Config::with_storage("x".into()));
        assert_eq!(lookahead_param(&s), ":rc-lookahead=5");
        s.x264_lookahead = 10;
        assert_eq!(lookahead_param(&s), "");
        s.x264_preset = "ultrafast".into();
        assert_eq!(lookahead_param(&s), "");
        s.x264_preset = "medium".into();
        assert_eq!(lookahead_param(&s), ":rc-lookahead=10");
        s.x264_preset = "unknown".into();
        assert_eq!(lookahead_param(&s), ":rc-lookahead=10");
    }

    #[test]
    fn the_decoder_works_alone_when_a_ladder_fills_a_small_machine() {
        use crate::media::video::decoder_threads;
        assert_eq!(decoder_threads(3, 2), 1);
        assert_eq!(decoder_threads(2, 4), 1);
        assert_eq!(decoder_threads(1, 2), 0);
        assert_eq!(decoder_threads(0, 2), 0);
        assert_eq!(decoder_threads(4, 16), 0);
    }
}
