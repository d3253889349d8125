//! Every knob's default (`DEFAULT_*`), and the limits no flag changes.

/// Where the server listens unless told otherwise (the tutorial's port).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:3300";
/// Data root, relative to the working directory.
pub const DEFAULT_STORAGE: &str = "./storage";
/// HLS target segment duration (RFC 8216 §4.3.3.1 `EXT-X-TARGETDURATION`).
pub const DEFAULT_SEGMENT_SECONDS: u32 = 6;
/// Keyframe interval inside a segment: players seek and switch on keyframes.
pub const DEFAULT_KEYFRAME_SECONDS: f64 = 2.0;
/// 4 GiB: a long phone video fits, a runaway client does not.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 4 << 30;
/// One job at a time: libx264 already uses every core of a 2-core box.
pub const DEFAULT_JOBS: usize = 1;
/// libx264 `preset`: the prototype measured 3.6× real time for 720p30 on 2 cores.
pub const DEFAULT_X264_PRESET: &str = "veryfast";
/// libx264 `crf`: visually good for web delivery.
pub const DEFAULT_CRF: u32 = 23;
/// SVT-AV1 preset: 12 runs at libx264 `veryfast`'s speed here
/// (BENCHMARKS.md).
pub const DEFAULT_AV1_PRESET: u32 = 12;
pub const DEFAULT_AV1_CRF: u32 = 35;
/// libx265 preset (BENCHMARKS.md).
pub const DEFAULT_HEVC_PRESET: &str = "ultrafast";
pub const DEFAULT_HEVC_CRF: u32 = 28;
/// Cap on libx264's `rc-lookahead`, frames. Each frame of lookahead is a
/// picture held per rung; 5 (veryfast's own is 10) keeps a 720/480/360 job
/// under 200 MiB, at a measured cost of 0.03–0.07 SSIM points on a test
/// pattern and 0.15–0.26 on grain starved by the bit rate cap
/// (BENCHMARKS.md, issue 17).
pub const DEFAULT_X264_LOOKAHEAD: u32 = 5;
/// libx264's `b-pyramid`. A pyramid makes x264 keep four reference pictures
/// in its decoded picture buffer where `none` keeps two: −43 MiB on a 1080p
/// ladder, for SSIM within 0.09 points either way and ±3% of the bytes at
/// veryfast with one reference (BENCHMARKS.md, issue 17).
pub const DEFAULT_X264_B_PYRAMID: &str = "none";
/// Chunks of a split encode, seconds (`--chunk-seconds`).
pub const DEFAULT_CHUNK_SECONDS: u32 = 60;
/// Chunks encoded at once by default: half the cores (each chunk's
/// encoders already keep about two cores busy), at most 4.
pub fn default_chunk_workers() -> usize {
    (std::thread::available_parallelism().map_or(2, |n| n.get()) / 2).clamp(1, 4)
}
/// Cap for the CRF encode (`maxrate`, kbit/s); `bufsize` is twice this.
pub const DEFAULT_MAX_VIDEO_KBPS: u32 = 8000;
/// AAC-LC stereo bitrate, bit/s.
pub const DEFAULT_AUDIO_BPS: usize = 128_000;
/// Uploads, queued and running jobs alive at once; more are refused with 503.
pub const DEFAULT_MAX_PENDING: usize = 16;
/// Open connections at once (each holds a permit of a semaphore).
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// hyper's `header_read_timeout` (slowloris protection), seconds.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 30;
/// An upload that sends nothing for this long is aborted, seconds.
pub const DEFAULT_BODY_IDLE_TIMEOUT_SECS: u64 = 60;
/// Slowest average upload we accept once the idle timeout has passed,
/// bytes/s (4 KiB/s: far below any real link, far above a slow-drip attack).
pub const DEFAULT_MIN_UPLOAD_BYTES_PER_SEC: u64 = 4096;
/// Largest frame we agree to decode: 8K UHD (7680×4320).
pub const DEFAULT_MAX_PIXELS: u64 = 7680 * 4320;
/// Longest source we agree to transcode, seconds (12 h).
pub const DEFAULT_MAX_DURATION_SECS: u64 = 12 * 3600;
/// Most streams in an upload we agree to open (a file with thousands of
/// streams is an attack on the demuxer, not a video).
pub const DEFAULT_MAX_STREAMS: usize = 16;
/// Uploads receiving at once; more get 503.
pub const DEFAULT_MAX_UPLOADS: usize = 8;
/// Uploads one client address may start per minute; more get 429.
pub const DEFAULT_UPLOADS_PER_MINUTE: u32 = 30;
/// Lifetime of a signed playback URL, seconds (6 h).
pub const DEFAULT_PLAYBACK_TOKEN_TTL_SECS: u64 = 6 * 3600;
/// `/readyz` fails below this much free disk (256 MiB).
pub const DEFAULT_MIN_FREE_BYTES: u64 = 256 << 20;
/// Total bytes the storage may hold; 0 means no quota (only the disk's size).
pub const DEFAULT_MAX_STORAGE_BYTES: u64 = 0;
/// `Access-Control-Allow-Origin` on playback responses (the tutorial's `cors()`).
pub const DEFAULT_CORS_ORIGIN: &str = "*";
/// Live broadcasts at once, and each one's input cap (kbit/s).
pub const DEFAULT_MAX_LIVES: usize = 4;
pub const DEFAULT_LIVE_MAX_KBPS: u64 = 20_000;
/// Connections one client address may hold.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
/// Seconds a response may wait for the client to read before it is dropped.
pub const DEFAULT_SEND_TIMEOUT_SECS: u64 = 60;
/// Server-Sent Event streams open at once.
pub const DEFAULT_MAX_EVENT_STREAMS: usize = 256;
/// The in-memory cache of hot files: 128 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 128 << 20;
/// A connection with no request in progress for this long is closed, seconds
/// (nginx's `keepalive_timeout`).
pub const DEFAULT_KEEP_ALIVE_SECS: u64 = 75;
/// An unfinished resumable upload is removed this long after it was
/// created, seconds (24 h).
pub const DEFAULT_UPLOAD_EXPIRY_SECS: u64 = 24 * 3600;
/// Shortest API token accepted: 16 bytes (128 bits when random).
pub const MIN_TOKEN_BYTES: usize = 16;
/// Longest lifetime of a signed playback URL: 10 years.
pub const MAX_TOKEN_TTL_SECS: u64 = 10 * 365 * 24 * 3600;
