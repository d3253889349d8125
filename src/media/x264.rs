//! Opening one libx264 encoder for a rung.

use super::ladder::RungPlan;
use super::Settings;
use crate::Error;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::{codec, encoder, Dictionary, Rational};

fn media_err(what: &str) -> impl Fn(ffmpeg_next::Error) -> Error + '_ {
    move |e| Error::from_av(e, what)
}

/// Opens libx264 for rung `rung` with `threads` frame threads.
pub(crate) fn open_encoder(
    rung: &RungPlan,
    tb: Rational,
    fps: Rational,
    keyint: u32,
    threads: usize,
    settings: &Settings,
) -> Result<encoder::Video, Error> {
    let (width, height) = (rung.width, rung.height);
    let codec = encoder::find_by_name("libx264")
        .ok_or_else(|| Error::Media("libx264 is not available in this FFmpeg build".into()))?;
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(media_err("video encoder"))?;
    enc.set_width(width);
    enc.set_height(height);
    enc.set_format(Pixel::YUV420P);
    enc.set_time_base(tb);
    enc.set_frame_rate(Some(fps));
    enc.set_aspect_ratio(Rational(1, 1));
    // The hls muxer wants global headers (LIBAV-NOTES.md).
    enc.set_flags(codec::Flags::GLOBAL_HEADER);
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
    // Frame threads: the rungs encode side by side (`encoders`), so each
    // gets its share of the cores, not x264's automatic 1.5 a core.
    opts.set("threads", &threads.to_string());
    opts.set(
        "x264-params",
        &format!(
            "keyint={}:min-keyint=1:scenecut=0:open-gop=0:vbv-maxrate={maxrate}:vbv-bufsize={}",
            keyint.max(2),
            maxrate * 2
        ),
    );
    enc.open_with(opts).map_err(|e| {
        Error::Media(format!(
            "opening libx264 (preset {}): {e}",
            settings.x264_preset
        ))
    })
}
