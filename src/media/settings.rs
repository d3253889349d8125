//! What one job is told: encoding settings copied out of [`Config`], the
//! keyframe spacing derived from them, and the cores libav may use.

use crate::config::{Codecs, Config, CopyMode, Ladder, SegmentFormat};

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
    /// The video is an exact clip: its source (`media::cut`) is never
    /// copied into a rung.
    pub clip: bool,
    /// TS or fMP4 segments (encrypted videos are always TS).
    pub segment_format: SegmentFormat,
    /// Make `download.mp4` at the end of each job.
    pub downloads: bool,
    /// The codec groups; per video, from its record.
    pub codecs: Codecs,
    /// A live kept nowhere (`record: false`): its playlists slide over
    /// this many seconds and older segments go (per video, from its
    /// record; `None` for everything else).
    pub live_window: Option<u32>,
    /// `--live-window-secs`.
    pub live_window_secs: u32,
    /// A live with `latency: low` (LL-HLS): its muxers cut parts, its
    /// publishers group them into segments (see [`crate::hls::lowlat`]).
    pub live_low: bool,
    /// `--hdr keep`: an HDR source's HEVC/AV1 rungs stay 10-bit HDR.
    pub hdr_keep: bool,
    /// SVT-AV1 `preset` and `crf`.
    pub av1_preset: u32,
    pub av1_crf: u32,
    /// libx265 `preset` and `crf`.
    pub hevc_preset: String,
    pub hevc_crf: u32,
    /// `--chunk-seconds` and `--chunk-workers` (see `media::chunks`).
    pub chunk_seconds: u32,
    pub chunk_workers: usize,
    /// The cores the job's encoders share ([`cores`]; a chunk's share when
    /// the job is split).
    pub cores: usize,
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
            live_window: None,
            live_window_secs: config.live_window_secs,
            live_low: false,
            hdr_keep: config.hdr == crate::config::HdrMode::Keep,
            copy: config.copy,
            clip: false,
            segment_format: config.segment_format,
            downloads: config.downloads,
            codecs: config.codecs.clone(),
            av1_preset: config.av1_preset,
            av1_crf: config.av1_crf,
            hevc_preset: config.hevc_preset.clone(),
            hevc_crf: config.hevc_crf,
            chunk_seconds: config.chunk_seconds,
            chunk_workers: config.chunk_workers,
            cores: cores(),
        }
    }
}

impl Settings {
    /// A low-latency live's `PART-TARGET` for frames at `fps` (`None` for
    /// everything else).
    pub(crate) fn part_target(&self, fps: f64) -> Option<f64> {
        self.live_low.then(|| crate::hls::lowlat::part_target(fps))
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
