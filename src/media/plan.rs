//! What a job is planned from: the source's streams opened (audio,
//! subtitles), its bit rate, and the bytes its outputs may take.

use super::audio::AudioChain;
use super::copy;
use super::input::Source;
use super::timing::{rescale, MICROS};
use super::video::OpenedVideo;
use crate::hls::ladder;
use crate::Error;
use ffmpeg_next::Rational;

/// The audio of a job: none, encoded once, or copied.
pub(super) enum Audio {
    None,
    Encode(AudioChain),
    Copy {
        params: ffmpeg_next::codec::Parameters,
        tb: Rational,
        offset: i64,
        /// Proves each copied packet (see `copycheck`).
        check: Box<super::copycheck::AudioCopy>,
    },
}

/// An upper bound of the bytes a job's outputs will take: each encoded
/// rung at its VBV maxrate plus one VBV buffer (`bufsize`, which x264 may
/// spend on top of the rate), a copied rung at the source's video bit rate,
/// the audio in every rung, 10% of MPEG-TS overhead, over the probed
/// duration (0 when the duration is unknown); plus the poster and
/// thumbnail, the storyboard and the caption tracks (the download reserves
/// its own place at the end).
pub(super) fn estimate_bytes(
    source: &Source,
    audio: &Audio,
    captions: usize,
    rungs: &[ladder::RungPlan],
    vparams: &ffmpeg_next::codec::Parameters,
    settings: &super::Settings,
) -> u64 {
    let secs = source.info.duration.unwrap_or(0.0);
    let secs = secs.clamp(0.0, settings.max_duration_secs as f64);
    let source_bps = source_video_bps(source, vparams).unwrap_or(0.0);
    let audio_bps = if matches!(audio, Audio::None) {
        0.0
    } else {
        settings.audio_bps as f64
    };
    let bits: f64 = rungs
        .iter()
        .map(|r| {
            let maxrate = f64::from(r.maxrate_kbps) * 1000.0;
            let video = if r.copy {
                source_bps * secs
            } else {
                maxrate * secs + 2.0 * maxrate
            };
            video + audio_bps * secs
        })
        .sum();
    let top = rungs
        .first()
        .map_or(0, |r| u64::from(r.width) * u64::from(r.height));
    let extras =
        super::storyboard::estimate_bytes(source.info.duration) + 16 * 1024 * captions as u64;
    (bits / 8.0 * 1.1) as u64 + top / 2 + (64 << 10) + extras
}

/// Decoders of the source's text subtitle streams (one that does not open
/// is left out: captions never fail a video).
pub(super) fn open_subtitles(source: &Source, origin_us: i64) -> Vec<super::subs::SubtitleTrack> {
    source
        .subtitles
        .iter()
        .filter_map(|s| {
            let st = source.ictx.stream(s.index)?;
            super::subs::SubtitleTrack::open(s.clone(), st.parameters(), st.time_base(), origin_us)
                .inspect_err(
                    |e| tracing::warn!(stream = s.index, error = %e, "subtitle stream left out"),
                )
                .ok()
        })
        .collect()
}

/// The source's video bit rate, bit/s: from the stream, else the upload's
/// size over its duration (an upper bound: the audio is in it).
pub(super) fn source_video_bps(
    source: &Source,
    vparams: &ffmpeg_next::codec::Parameters,
) -> Option<f64> {
    let from_stream = crate::ffi::par_bit_rate(vparams) as f64;
    if from_stream > 0.0 {
        return Some(from_stream);
    }
    let secs = source.info.duration.filter(|d| *d > 0.0)?;
    let bytes = source.spool.as_ref()?.written();
    Some(bytes as f64 * 8.0 / secs)
}

/// The audio chain for `source`: copied with the video, else encoded once.
pub(super) fn open_audio(
    source: &Source,
    copy: bool,
    origin_us: i64,
    settings: &super::Settings,
) -> Result<Audio, Error> {
    let Some(ast) = source.audio_index.and_then(|i| source.ictx.stream(i)) else {
        return Ok(Audio::None);
    };
    let offset = rescale(origin_us, MICROS, ast.time_base());
    Ok(if copy && !adts_into_fmp4(&ast, settings) {
        Audio::Copy {
            params: ast.parameters(),
            tb: ast.time_base(),
            offset,
            check: Box::new(super::copycheck::AudioCopy::new(&ast)?),
        }
    } else {
        Audio::Encode(AudioChain::new(&ast, offset, settings)?)
    })
}

/// Whether `ast` is AAC in ADTS frames (MPEG-TS's: no AudioSpecificConfig
/// in the stream) while some rung is fMP4: the mp4 muxer refuses ADTS
/// headers, so such audio is encoded, the video still copied.
fn adts_into_fmp4(ast: &ffmpeg_next::format::stream::Stream, settings: &super::Settings) -> bool {
    use crate::config::VideoCodec;
    let par = ast.parameters();
    let adts =
        par.id() == ffmpeg_next::codec::Id::AAC && crate::ffi::par_extradata(&par).is_empty();
    let fmp4 = super::muxer::is_fmp4(settings)
        || settings.codecs.has(VideoCodec::Av1)
        || settings.codecs.has(VideoCodec::Hevc);
    adts && fmp4
}

/// What the source's video stream decides before anything is opened.
pub(super) struct VideoPlan {
    pub(super) tb: Rational,
    pub(super) vparams: ffmpeg_next::codec::Parameters,
    /// The instant that becomes output time 0 (where the video starts).
    pub(super) origin_us: i64,
    /// The group whose top rung the source is copied into, else why not.
    pub(super) copy_check: Result<copy::Copied, String>,
    pub(super) opened: OpenedVideo,
    /// How it was opened (a chunk opens its own the same way).
    pub(super) decoder: super::video::DecoderPlan,
    /// The H.264 ladder, then each codec group's.
    pub(super) rungs: Vec<ladder::RungPlan>,
}

/// Opens the video decoder and plans the ladder (copying when eligible).
pub(super) fn plan_video(source: &Source, settings: &super::Settings) -> Result<VideoPlan, Error> {
    let vanished = || Error::Internal("video stream vanished".into());
    let vst = source
        .ictx
        .stream(source.video_index)
        .ok_or_else(vanished)?;
    let (tb, vparams) = (vst.time_base(), vst.parameters());
    let origin_us = match vst.start_time() {
        t if t != ffmpeg_next::ffi::AV_NOPTS_VALUE => rescale(t, tb, MICROS),
        _ => 0,
    };
    let (_, _, sar, w, h) = crate::ffi::video_par_fields(&vparams);
    let rotation = source.info.video.rotation;
    let display =
        super::vgraph::output_size(w, h, Rational(sar.0, sar.1), rotation, settings.max_pixels);
    let copy_check = copy::eligible(source, display, settings);
    let copy = copy_check.is_ok();
    let source_kbps = source_video_bps(source, &vparams).map(|b| (b / 1000.0).ceil() as u32);
    let fps = super::video::stream_fps(&vst);
    // Planned before the decoder opens: its threads follow the number of
    // encoded rungs.
    let rungs = ladder::plan(
        &settings.ladder,
        display.0,
        display.1,
        f64::from(fps),
        copy.then(|| source_kbps.unwrap_or(settings.max_video_kbps).max(64)),
        settings.max_video_kbps,
    );
    let encoded = rungs.iter().filter(|r| !r.copy).count();
    let decoder = super::video::DecoderPlan {
        rotation,
        display,
        fps,
        cfr: super::video::constant_rate(&vst),
        strict: copy,
        threads: super::video::decoder_threads(encoded, settings.cores),
    };
    let opened = OpenedVideo::open(&vst, settings, decoder)?;
    let copied = copy_check.as_ref().ok().map(|c| c.codec);
    let rungs = with_codec_groups(rungs, settings, copied, f64::from(fps));
    Ok(VideoPlan {
        tb,
        vparams,
        origin_us,
        copy_check,
        opened,
        decoder,
        rungs,
    })
}

/// The H.264 rungs, then each extra codec group's (`--codecs`, the
/// video's `codecs`). An encrypted video's groups are encrypted by their
/// publishers (FFmpeg 5.1's hls muxer encrypts MPEG-TS only).
///
/// A source copied into another group than H.264's (an HEVC source, with
/// an HEVC group) gives that group's top rung the copy, at the source's
/// rate; the H.264 top rung at the same size is then encoded, at its
/// usual cap.
fn with_codec_groups(
    mut rungs: Vec<ladder::RungPlan>,
    settings: &super::Settings,
    copied: Option<crate::config::VideoCodec>,
    fps: f64,
) -> Vec<ladder::RungPlan> {
    let mut twins = ladder::twins(&rungs, &settings.codecs);
    if let Some(c) = copied.filter(|c| *c != crate::config::VideoCodec::H264) {
        let twin = twins.iter_mut().find(|t| t.codec == c);
        if let (Some(top), Some(twin)) = (rungs.first_mut().filter(|r| r.copy), twin) {
            twin.copy = true;
            top.copy = false;
            let cap = settings.max_video_kbps;
            top.maxrate_kbps = ladder::maxrate_kbps(top.width, top.height, fps, cap);
        }
    }
    rungs.extend(twins);
    rungs
}
