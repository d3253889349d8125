//! The copy fast path: when the source is already what players take, its
//! video packets become the top rung as they are (no decode, no encode),
//! and its AAC audio is copied into every rung.
//!
//! # Eligibility (decided from the stream; `--copy never` turns it off)
//! - video: H.264, 8-bit 4:2:0 (`yuv420p`/`yuvj420p`), profile Constrained
//!   Baseline, Baseline, Main or High, level known and at most 5.1; or,
//!   when the video gets an HEVC group (`--codecs …,hevc`), HEVC Main
//!   (8-bit 4:2:0) at level 5.1 at most, copied into the HEVC group's top
//!   rung (tagged `hvc1`) while every H.264 rung is encoded; likewise AV1
//!   Main into the AV1 group's, when its keyframes are every N frames
//!   (see [`frame_grid`]; with an AV1 group an H.264 or HEVC source needs
//!   that too); no rotation
//!   and square pixels with even sides (what we would show is exactly
//!   what is coded);
//! - container: one with timestamps (not a raw `.h264` stream);
//! - audio: none, or AAC-LC mono/stereo;
//! - keyframes: the cuts the `hls` muxer will make (the first keyframe at or
//!   after each multiple of the target duration) give segments no longer
//!   than the target + 0.5 s. When the demuxer has an index (mp4's `stss`)
//!   this is checked before starting; otherwise, and always as a guard, the
//!   [`Cadence`] follows the packets, and a source whose keyframes break the
//!   rule stops the job with [`crate::Error::CopyFallback`]: the job then starts
//!   over, encoding every rung.

use super::input::Source;
use super::Settings;
use crate::config::{CopyMode, VideoCodec};
use ffmpeg_next::codec;

/// Longest a segment may overrun its target, seconds (ARCHITECTURE.md).
pub(crate) const OVERRUN: f64 = 0.5;

/// What a source is copied into: the top rung of its own codec's group,
/// and, when the video has an AV1 group, the grid of frames the source's
/// keyframes are on (every rung then cuts there, SVT-AV1's too).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Copied {
    pub codec: VideoCodec,
    pub every: Option<u64>,
}

/// What the source is copied into (H.264's group, or HEVC's or AV1's when
/// the video has one); otherwise why it is not.
pub(crate) fn eligible(
    source: &Source,
    display: (u32, u32),
    settings: &Settings,
) -> Result<Copied, String> {
    if settings.copy == CopyMode::Never {
        return Err("copy disabled (--copy never)".into());
    }
    if settings.clip {
        return Err(
            "an exact clip's source is not copied (its parameter sets change at the cut)".into(),
        );
    }
    // A raw elementary stream has no timestamps to copy.
    if matches!(source.info.container.as_str(), "h264" | "hevc") {
        return Err("a raw elementary stream has no timestamps".into());
    }
    let vst = source
        .ictx
        .stream(source.video_index)
        .ok_or("no video stream")?;
    let par = vst.parameters();
    let into = copied_codec(par.id(), &source.info.video.codec, settings)?;
    let (profile, level, sar, w, h) = crate::ffi::video_par_fields(&par);
    let format = &source.info.video.pixel_format;
    if !matches!(format.as_str(), "yuv420p" | "yuvj420p") {
        return Err(format!("pixel format {format} is not 8-bit 4:2:0"));
    }
    profile_fits(into, profile, level)?;
    if source.info.video.rotation != 0 {
        return Err("the video is rotated".into());
    }
    if let Some(c) = &source.info.video.colour {
        colour_fits(c)?;
    }
    if sar.0 > 0 && sar.0 != sar.1 {
        return Err("the pixels are not square".into());
    }
    if (w, h) != display {
        return Err("the coded size is not what is shown".into());
    }
    if let Some(ai) = source.audio_index {
        let ast = source.ictx.stream(ai).ok_or("audio stream vanished")?;
        let apar = ast.parameters();
        let aprofile = crate::ffi::par_profile(&apar);
        let channels = source.info.audio.as_ref().map_or(0, |a| a.channels);
        // FF_PROFILE_AAC_LOW = 1.
        if apar.id() != codec::Id::AAC || aprofile != 1 {
            return Err("audio is not AAC-LC".into());
        }
        if !(1..=2).contains(&channels) {
            return Err(format!("audio has {channels} channels"));
        }
    }
    let (keys, entries) = crate::ffi::index_keyframes(&vst);
    if entries > 0 {
        let tb = f64::from(vst.time_base());
        let mut c = Cadence::new(settings.segment_seconds);
        let first = keys.first().map_or(0, |k| k.1);
        for (_, k) in &keys {
            c.packet((k - first) as f64 * tb, true)?;
        }
        // The tail after the last keyframe must fit too.
        if let Some(d) = source.info.duration {
            c.finish(d)?;
        }
    }
    let every = match settings.codecs.has(VideoCodec::Av1) {
        true => Some(frame_grid(&keys, entries)?),
        false => None,
    };
    Ok(Copied { codec: into, every })
}

/// With an AV1 group every rung cuts where SVT-AV1 puts its keyframes:
/// every N frames, and nowhere else (it ignores a frame asked to be one).
/// A copy needs the source's keyframes on exactly such a grid, read from
/// an index of every frame (an mp4's: entry numbers are frames in
/// decoding order); the copy checks it again as it goes (`copycheck`).
fn frame_grid(keys: &[(usize, i64)], entries: usize) -> Result<u64, String> {
    let why = "the AV1 group needs the source's keyframes every N frames";
    if entries <= keys.len() {
        return Err(format!("{why}, and no index of its frames tells"));
    }
    let frames: Vec<usize> = keys.iter().map(|k| k.0).collect();
    match frames[..] {
        // One keyframe: one step of the grid covers the whole video.
        [0] => Ok(entries as u64),
        [0, n, ..] if n > 0 && frames.iter().enumerate().all(|(i, k)| *k == i * n) => Ok(n as u64),
        _ => Err(format!(
            "{why}: they are at frames {:?}…",
            &frames[..frames.len().min(4)]
        )),
    }
}

/// The group a `id` stream is copied into: H.264's, or HEVC's when the
/// video has one.
fn copied_codec(id: codec::Id, name: &str, settings: &Settings) -> Result<VideoCodec, String> {
    match id {
        codec::Id::H264 => Ok(VideoCodec::H264),
        codec::Id::HEVC if settings.codecs.has(VideoCodec::Hevc) => Ok(VideoCodec::Hevc),
        codec::Id::HEVC => Err("video is hevc, not H.264, and the video has no HEVC group".into()),
        codec::Id::AV1 if settings.codecs.has(VideoCodec::Av1) => Ok(VideoCodec::Av1),
        _ => Err(format!("video is {name}, not H.264")),
    }
}

/// The profiles and levels every player of the group decodes.
fn profile_fits(into: VideoCodec, profile: i32, level: i32) -> Result<(), String> {
    match into {
        // FF_PROFILE_H264_{BASELINE, CONSTRAINED_BASELINE, MAIN, HIGH}.
        VideoCodec::H264 if !matches!(profile, 66 | 578 | 77 | 100) => Err(format!(
            "H.264 profile {profile} is not Baseline, Main or High"
        )),
        VideoCodec::H264 if !(1..=51).contains(&level) => {
            Err(format!("H.264 level {level} is unknown or above 5.1"))
        }
        // FF_PROFILE_HEVC_MAIN; general_level_idc is 30 × the level.
        VideoCodec::Hevc if profile != 1 => Err(format!("HEVC profile {profile} is not Main")),
        VideoCodec::Hevc if !(1..=153).contains(&level) => Err(format!(
            "HEVC level {:.1} is unknown or above 5.1",
            f64::from(level) / 30.0
        )),
        // FF_PROFILE_AV1_MAIN; seq_level_idx 13 is level 5.1 (-99: not
        // said, as the container may not).
        VideoCodec::Av1 if profile != 0 => Err(format!("AV1 profile {profile} is not Main")),
        VideoCodec::Av1 if level != -99 && !(0..=13).contains(&level) => {
            Err(format!("AV1 seq_level_idx {level} is above 5.1"))
        }
        _ => Ok(()),
    }
}

/// A copied picture goes to players as it is: only SDR, BT.709-gamut,
/// limited-range ones may (the others are converted by encoding).
fn colour_fits(c: &crate::catalog::ColourInfo) -> Result<(), String> {
    if c.transfer != "sdr" {
        return Err(format!("the video is HDR ({}): tone mapped", c.transfer));
    }
    if c.primaries == "bt2020" {
        return Err("the video is wide-gamut (BT.2020): mapped to BT.709".into());
    }
    if c.range == "pc" {
        return Err("the video is full-range: made limited-range".into());
    }
    Ok(())
}

/// Follows the copied stream's keyframes as the `hls` muxer will cut them
/// and reports a segment that would overrun.
pub(crate) struct Cadence {
    target: f64,
    /// First timestamp and start of the current segment, seconds.
    first: Option<f64>,
    seg_start: f64,
    /// Segments cut so far + 1 (the muxer's `number`).
    count: f64,
}

impl Cadence {
    pub(crate) fn new(segment_seconds: u32) -> Self {
        Cadence {
            target: f64::from(segment_seconds.max(1)),
            first: None,
            seg_start: 0.0,
            count: 1.0,
        }
    }

    fn too_long(&self, len: f64) -> String {
        format!(
            "the source's keyframes give a {len:.2} s segment (target {} s + {OVERRUN} s)",
            self.target
        )
    }

    /// A video packet showing at `t` seconds; `key` if it is a keyframe.
    pub(crate) fn packet(&mut self, t: f64, key: bool) -> Result<(), String> {
        let first = *self.first.get_or_insert_with(|| {
            self.seg_start = t;
            t
        });
        // The muxer's rule: cut at the first keyframe at or after
        // `target × number` from the start (av_compare_ts ≥ 0).
        if key && t - first >= self.target * self.count - 1e-6 {
            let len = t - self.seg_start;
            if len > self.target + OVERRUN {
                return Err(self.too_long(len));
            }
            self.seg_start = t;
            self.count += 1.0;
        } else if t - self.seg_start > self.target + OVERRUN {
            return Err(self.too_long(t - self.seg_start));
        }
        Ok(())
    }

    /// The stream ended at `end` seconds.
    pub(crate) fn finish(&self, end: f64) -> Result<(), String> {
        let len = end - self.seg_start;
        if self.first.is_some() && len > self.target + OVERRUN {
            return Err(self.too_long(len));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(keys: &[f64], end: f64, target: u32) -> Result<(), String> {
        let mut c = Cadence::new(target);
        let mut t = 0.0;
        while t < end {
            let key = keys.iter().any(|k| (k - t).abs() < 1e-9);
            c.packet(t, key)?;
            t = ((t * 10.0).round() + 1.0) / 10.0;
        }
        c.finish(end)
    }

    #[test]
    fn two_second_gops_fit_six_second_segments() {
        let keys: Vec<f64> = (0..10).map(|i| f64::from(i) * 2.0).collect();
        assert!(run(&keys, 20.0, 6).is_ok());
    }

    #[test]
    fn five_second_gops_overrun_six_second_segments() {
        // Cuts at 10 (first keyframe ≥ 6): a 10 s segment.
        let keys: Vec<f64> = (0..6).map(|i| f64::from(i) * 5.0).collect();
        let e = run(&keys, 30.0, 6).unwrap_err();
        assert!(e.contains("10.0") || e.contains("6.6"), "{e}");
    }

    #[test]
    fn an_av1_group_copies_keyframes_on_a_grid_of_frames_only() {
        let keys = |f: &[usize]| f.iter().map(|k| (*k, *k as i64 * 512)).collect::<Vec<_>>();
        assert_eq!(frame_grid(&keys(&[0, 60, 120]), 180), Ok(60));
        assert_eq!(frame_grid(&keys(&[0]), 180), Ok(180));
        assert!(frame_grid(&keys(&[0, 60, 123]), 180).is_err());
        assert!(frame_grid(&keys(&[5, 65]), 180).is_err());
        // An index of keyframes only (mkv cues) tells no frame numbers.
        assert!(frame_grid(&keys(&[0, 1, 2]), 3).is_err());
        assert!(frame_grid(&[], 0).is_err());
    }

    #[test]
    fn a_long_tail_without_keyframes_overruns() {
        assert!(run(&[0.0], 12.0, 6).is_err());
        assert!(run(&[0.0, 6.0], 12.0, 6).is_ok());
    }
}
