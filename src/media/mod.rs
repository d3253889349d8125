//! Everything libav: opening an upload, probing it, decoding, filtering
//! (rotation, square pixels, even sizes, resampling), encoding with libx264
//! and aac, and muxing HLS. Runs only on job threads; never imports hyper.
//!
//! # Layout
//! - `input`: open a spool through custom AVIO with a demuxer allowlist; probe.
//! - `ladder`: which rungs (sizes, bit rates) a source gets.
//! - `copy`: when the top rung can be the source's own packets.
//! - `video`: one decoder → filter graph with a scaler per rung (`vgraph`)
//!   → one libx264 per encoded rung (`x264`); `audio`: one decoder → AAC,
//!   shared by rungs.
//! - `outputs`: one `hls` muxer per rung; `hls`: its options;
//!   `publish`: the rung's public playlist, written as segments close.
//! - `master` / `iframes`: the master playlist and I-frame playlists.
//! - `job` (+ `finish`): one transcode as a struct with named steps;
//!   `transcode`: its entry point, with the copy fallback (a new
//!   generation of names); `context`: what a job is given and reports.
//! - `codecs`, `timing`, `ts`: RFC 6381 codec strings, timestamp
//!   arithmetic, MPEG-TS packet parsing.
//!
//! The few libav calls with no safe wrapper are in [`crate::ffi`], the
//! crate's one file of `unsafe` code.
//!
//! Writes go through [`crate::storage::Store`]; playlist text through
//! [`crate::playlist`].

mod audio;
mod codecs;
mod colour;
mod context;
mod copy;
mod copycheck;
mod download;
mod encoders;
mod extras;
mod finish;
mod group;
mod hls;
mod iframes;
mod input;
mod job;
mod keys;
mod ladder;
mod master;
mod opened;
mod outputs;
mod plan;
mod poster;
mod publish;
mod storyboard;
mod subs;
mod timeline;
mod timing;
mod tracks;
mod transcode;
mod ts;
mod vgraph;
mod video;
mod x264;

pub(crate) use crate::ffi::free_bytes;
pub(crate) use context::{JobContext, JobEvents, Produced, RungProgress};
pub(crate) use extras::{mpegts_origin, publish_track, windows as segment_windows};
pub(crate) use input::{open_file, open_spool, Source};
pub(crate) use master::{add_captions, republish_locked};
pub(crate) use tracks::display_name as track_name;
pub(crate) use transcode::transcode;

use crate::config::{Config, CopyMode, Ladder, SegmentFormat};

/// Encoding settings for one job, copied out of [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// HLS target segment duration, seconds (`hls_time`).
    pub segment_seconds: u32,
    /// Keyframe spacing inside a segment, seconds.
    pub keyframe_seconds: f64,
    /// libx264 `preset`.
    pub x264_preset: String,
    /// libx264 `crf`.
    pub crf: u32,
    /// Cap on libx264's `rc-lookahead`, frames.
    pub x264_lookahead: u32,
    /// libx264 `b-pyramid`.
    pub x264_b_pyramid: String,
    /// VBV cap, kbit/s.
    pub max_video_kbps: u32,
    /// AAC bitrate, bit/s.
    pub audio_bps: usize,
    /// Largest width × height we decode.
    pub max_pixels: u64,
    /// Longest source we transcode, seconds.
    pub max_duration_secs: u64,
    /// Most streams an input may have.
    pub max_streams: usize,
    /// Encrypt segments (AES-128); per video, from its record.
    pub encrypt: bool,
    /// New key every this many segments (0: one key).
    pub key_rotation_segments: u32,
    /// The renditions to make.
    pub ladder: Ladder,
    /// Whether an eligible source is copied into the top rung.
    pub copy: CopyMode,
    /// TS or fMP4 segments (encrypted videos are always TS).
    pub segment_format: SegmentFormat,
    /// Make `download.mp4` at the end of each job.
    pub downloads: bool,
}

impl Settings {
    /// The settings a server with `config` uses.
    pub fn from_config(config: &Config) -> Self {
        Settings {
            segment_seconds: config.segment_seconds,
            keyframe_seconds: keyframe_spacing(config.segment_seconds),
            x264_preset: config.x264_preset.clone(),
            crf: config.crf,
            x264_lookahead: config.x264_lookahead,
            x264_b_pyramid: config.x264_b_pyramid.clone(),
            max_video_kbps: config.max_video_kbps,
            audio_bps: crate::config::DEFAULT_AUDIO_BPS,
            max_pixels: config.max_pixels,
            max_duration_secs: config.max_duration_secs,
            max_streams: config.max_streams,
            encrypt: config.encrypt,
            key_rotation_segments: config.key_rotation_segments,
            ladder: config.ladder.clone(),
            copy: config.copy,
            segment_format: config.segment_format,
            downloads: config.downloads,
        }
    }
}

/// The cores libav's threads share (2 when the system cannot tell).
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The largest spacing of at most `DEFAULT_KEYFRAME_SECONDS` that divides
/// the segment length, so that segment boundaries fall on the keyframe grid
/// (5 s segments: 1.67 s, not 2 s, which would cut at 6 s).
pub(crate) fn keyframe_spacing(segment_seconds: u32) -> f64 {
    let seg = f64::from(segment_seconds.max(1));
    seg / (seg / crate::config::DEFAULT_KEYFRAME_SECONDS).ceil()
}

/// Initialises libav once per process and quiets its logging to errors.
pub fn init() -> Result<(), crate::Error> {
    ffmpeg_next::init().map_err(|e| crate::Error::Media(format!("libav init: {e}")))?;
    ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Error);
    Ok(())
}

/// True when both encoders we need are compiled into the system's libavcodec.
pub fn encoders_available() -> bool {
    ffmpeg_next::encoder::find_by_name("libx264").is_some()
        && ffmpeg_next::encoder::find_by_name("aac").is_some()
}

/// Ignores every event (benchmarks).
struct NoEvents;

impl JobEvents for NoEvents {
    fn progress(&mut self, _: &[RungProgress]) {}
}

#[doc(hidden)]
/// Transcodes a file on disk into a new video folder under `root`
/// (benchmarks and the comparison script use this; the server always goes
/// through the spool).
pub fn transcode_path(
    input: &std::path::Path,
    root: &std::path::Path,
    settings: &Settings,
) -> Result<crate::catalog::OutputInfo, crate::Error> {
    let store = crate::storage::Store::open(root)?;
    let id = crate::storage::VideoId::random();
    store.create(id)?;
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let ctx = JobContext {
        store: &store,
        id,
        settings,
        generation: 0,
        cancel: &cancel,
    };
    let source = open_file(input, settings)?;
    let mut reopen = |s: &Settings| open_file(input, s);
    transcode(source, &mut reopen, &ctx, &mut NoEvents).map(|p| p.info)
}
