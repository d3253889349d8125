//! The record of one video and its parts, as `meta.json` stores them and
//! the API shows them.

pub use super::event::Event;
pub use super::status::Status;
use crate::storage::VideoId;
use serde::{Deserialize, Serialize};

/// What the probe learnt about the uploaded file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// libavformat's demuxer name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub container: String,
    /// Seconds, when the container says.
    pub duration: Option<f64>,
    pub video: VideoInfo,
    pub audio: Option<AudioInfo>,
}

/// The source's video stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoInfo {
    pub codec: String,
    /// Coded size, before rotation.
    pub width: u32,
    pub height: u32,
    /// Average frame rate, when known.
    pub fps: Option<f64>,
    /// Display rotation in degrees clockwise (0, 90, 180, 270).
    pub rotation: u32,
    pub pixel_format: String,
    /// Its colour: transfer (SDR, PQ, HLG), gamut, matrix, range, bit
    /// depth, HDR metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<super::ColourInfo>,
}

/// The source's audio stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioInfo {
    pub codec: String,
    pub channels: u16,
    pub sample_rate: u32,
    /// Channel layout as libav names it (`stereo`, `5.1`, …).
    #[serde(default)]
    pub layout: String,
}

/// What the transcode produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputInfo {
    /// Displayed size: rotation applied, square pixels, even.
    pub width: u32,
    pub height: u32,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub segments: usize,
    /// Video frames encoded.
    #[serde(default)]
    pub frames: u64,
    /// Seconds of media in the playlist.
    pub duration: f64,
    pub segment_seconds: u32,
    /// Wall time of the job's own work (decode, encode, mux), seconds: time
    /// spent waiting for a streaming upload to arrive is not counted.
    #[serde(default)]
    pub processing_seconds: f64,
    /// Chunks the video was encoded in side by side (`--chunk-seconds`);
    /// 1 when it was not split, 0 when not known (rebuilt after a crash).
    #[serde(default = "one")]
    pub chunks: u32,
}

fn one() -> u32 {
    1
}

/// One rendition (rung of the ladder).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    /// Playlist path relative to `/play/{id}/`.
    pub playlist: String,
    pub width: u32,
    pub height: u32,
    /// `720p`: its folder under the video's.
    #[serde(default)]
    pub name: String,
    /// Measured peak segment bit rate, bit/s (the master's `BANDWIDTH`).
    #[serde(default)]
    pub bandwidth: u64,
    /// Measured average bit rate, bit/s.
    #[serde(default)]
    pub average_bandwidth: u64,
    /// RFC 6381 codecs (`avc1.64001f,mp4a.40.2`).
    #[serde(default)]
    pub codecs: String,
    /// Its video codec: `h264` (also when a record says nothing), `av1`,
    /// `hevc`.
    #[serde(default = "super::codec::h264")]
    pub codec: String,
    #[serde(default)]
    pub frame_rate: f64,
    /// Made by copying the source's packets, not encoding.
    #[serde(default)]
    pub copied: bool,
    /// 0..1 while processing.
    #[serde(default)]
    pub progress: f64,
    /// Its I-frame-only playlist, relative to `/play/{id}/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iframe_playlist: Option<String>,
    /// `VIDEO-RANGE`: `PQ`/`HLG` for a rung kept HDR, `SDR` beside one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_range: Option<String>,
}

/// Why a video failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

/// One video, as `GET /videos/{id}` shows it and `meta.json` stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: VideoId,
    pub status: Status,
    /// 0..1, processing progress.
    #[serde(default)]
    pub progress: f64,
    #[serde(default)]
    pub bytes_received: u64,
    /// The client's file name, sanitised; never used as a path.
    #[serde(default)]
    pub file_name: Option<String>,
    /// A human title: the file name without extension unless changed.
    #[serde(default)]
    pub title: String,
    /// Bytes on disk in the video's folder (updated when a job ends).
    #[serde(default)]
    pub storage_bytes: u64,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: u64,
    /// Unix milliseconds: orders the library (newest first) within a second.
    #[serde(default)]
    pub created_ms: u64,
    #[serde(default)]
    pub updated_at: u64,
    #[serde(default)]
    pub source: Option<SourceInfo>,
    #[serde(default)]
    pub output: Option<OutputInfo>,
    #[serde(default)]
    pub renditions: Vec<Rendition>,
    /// Segments are AES-128 encrypted; keys at `/keys/{id}/…`.
    #[serde(default)]
    pub encrypted: bool,
    /// The codec groups asked for it (`h264`, `av1`, `hevc`; none said:
    /// H.264 alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codecs: Vec<String>,
    /// The top rendition is the source's own packets (copy fast path).
    #[serde(default)]
    pub copied: bool,
    /// Why the source was not copied (when it was not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_note: Option<String>,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
    /// The generation of segment and key names in use (see
    /// `storage::names`): a redone job writes the next one.
    #[serde(default)]
    pub generation: u32,
    /// A resumable (tus) upload's state, while and after it arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<Resumable>,
    /// An import from a URL (`POST /videos {"url"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportInfo>,
    /// An exact clip: the video it was cut from, and the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipped_from: Option<VideoId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipRange>,
    /// A live broadcast's settings (`POST /lives`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveInfo>,
    /// Caption tracks (embedded in the upload, or uploaded later).
    #[serde(default)]
    pub captions: Vec<CaptionTrack>,
    /// Audio renditions, when the source has several audio tracks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audio_tracks: Vec<AudioTrack>,
    /// `storyboard.vtt` and its sheets exist.
    #[serde(default)]
    pub storyboard: bool,
    /// `download.mp4` exists.
    #[serde(default)]
    pub download: bool,
    /// What was left out of the source (bitmap subtitles, extra audio).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// With a shared store: the node whose upload or job this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Until when (Unix ms) that node's claim holds unless renewed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lease_until_ms: u64,
    /// Events a change implied, written with it, not yet in the webhook
    /// outbox (handed over right after; at the next start otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// No event has told of this video yet (a multipart upload still
    /// arriving): its refusal or deletion is not reported either.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unannounced: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where a caption track came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptionSource {
    Embedded,
    Uploaded,
}

/// A caption track: segmented WebVTT in `dir`, version `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionTrack {
    /// Language tag (`en`, `pt-br`; `und` when the source did not say).
    pub lang: String,
    pub name: String,
    pub source: CaptionSource,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub forced: bool,
    /// Its folder under the video's (`cc-en`).
    pub dir: String,
    /// Its files' version (`v{version}.m3u8`, `v{version}_NNNNN.vtt`).
    pub version: u32,
}

impl CaptionTrack {
    /// Its playlist, relative to the video's folder.
    pub fn playlist(&self) -> String {
        format!(
            "{}/{}",
            self.dir,
            crate::storage::names::caption_playlist(self.version)
        )
    }
}

/// An audio rendition of a source with several audio tracks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioTrack {
    pub lang: String,
    pub name: String,
    pub channels: u16,
    pub default: bool,
    /// Its folder (`audio-1`).
    pub dir: String,
}

/// An exact clip's range in the video it was cut from, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClipRange {
    pub start: f64,
    pub end: f64,
}

/// An import: where from, and what the remote answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportInfo {
    pub url: String,
    /// The remote's `Content-Length`, once it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// The remote's final status (after redirects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_status: Option<u16>,
}

/// A live broadcast (`POST /lives`): its secret stream key and settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveInfo {
    /// The key a publisher names (RTMP `/live/{key}`); never in a video's
    /// public JSON, only in the live's own answers.
    pub stream_key: String,
    /// The broadcast is kept as a video when it ends.
    pub record: bool,
    /// `normal` or `low` (LL-HLS parts; see `ingest::live`).
    pub latency: String,
    /// When its broadcast began (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// Its own `--ladder` (`auto`, `source`, heights), if it asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder: Option<String>,
}

/// A resumable upload (tus): what the server told the client, durably.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resumable {
    /// Bytes of the spool on disk (fsynced): the `Upload-Offset` answered.
    pub offset: u64,
    /// `Upload-Length`, once the client said it.
    #[serde(default)]
    pub length: Option<u64>,
    /// Unix seconds after which an unfinished upload is removed.
    pub expires_at: u64,
    /// `Upload-Metadata` as the client sent it (answered by `HEAD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// A direct upload URL's grant, when the upload was made by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
}

impl Resumable {
    /// True once every byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.length == Some(self.offset)
    }
}

/// What a direct upload URL allows: this one video, until `expires_at`,
/// up to `max_size` bytes. Its secret is kept only as a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub secret_sha256: String,
    pub max_size: u64,
    pub expires_at: u64,
}

impl Record {
    /// The record as it leaves the server (API answers, webhook events):
    /// every field but a direct upload's secret — not even its digest —
    /// and the lifecycle's own bookkeeping.
    pub fn public_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.remove("events");
            obj.remove("unannounced");
        }
        if let Some(grant) = v
            .pointer_mut("/upload/grant")
            .and_then(|g| g.as_object_mut())
        {
            grant.remove("secret_sha256");
        }
        if let Some(live) = v.get_mut("live").and_then(|l| l.as_object_mut()) {
            live.remove("stream_key");
        }
        v
    }

    /// One rendition in the flat layout: its media playlist is the
    /// video's `video.m3u8` (no master yet).
    pub fn is_flat(&self) -> bool {
        matches!(&self.renditions[..], [r] if r.playlist == crate::storage::names::PLAYLIST)
    }

    /// A fresh record for an upload that started at `ms` (unix ms).
    pub fn new(id: VideoId, file_name: Option<String>, ms: u64) -> Self {
        let t = ms / 1000;
        let title = file_name
            .as_deref()
            .map(|n| match n.rsplit_once('.') {
                Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
                _ => n.to_owned(),
            })
            .unwrap_or_default();
        Record {
            id,
            status: Status::Receiving,
            progress: 0.0,
            bytes_received: 0,
            file_name,
            title,
            storage_bytes: 0,
            created_at: t,
            created_ms: ms,
            updated_at: t,
            source: None,
            output: None,
            renditions: Vec::new(),
            encrypted: false,
            codecs: Vec::new(),
            copied: false,
            copy_note: None,
            error: None,
            generation: 0,
            upload: None,
            import: None,
            clipped_from: None,
            clip: None,
            live: None,
            captions: Vec::new(),
            audio_tracks: Vec::new(),
            storyboard: false,
            download: false,
            notes: Vec::new(),
            node: None,
            lease_until_ms: 0,
            events: Vec::new(),
            unannounced: false,
        }
    }

    /// Sets `status` to failed with `code` and `message`.
    pub fn fail(&mut self, code: &str, message: &str) {
        self.status = Status::Failed;
        self.error = Some(ErrorInfo {
            code: code.to_owned(),
            message: message.to_owned(),
        });
    }
}
