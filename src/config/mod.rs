//! Configuration: every knob has a flag, an environment variable and a
//! `DEFAULT_*` const. Parsing is clap's; nothing here does I/O.

mod checks;
mod defaults;
mod types;

pub use defaults::*;

use checks::{parse_node_name, parse_on_off, parse_positive};

pub use types::{
    canonical_ip, Cidr, ClientIpHeader, Codecs, CopyMode, HdrMode, KeepSource, Ladder,
    SegmentFormat, StoreKind, VideoCodec, MAX_RUNGS,
};

use std::net::SocketAddr;
use std::path::PathBuf;

/// The server's settings. Built from flags and `HLSD_*` variables by
/// `Config::parse()` in `main`, or by hand in tests and benches.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "hlsd",
    version,
    about = "Self-hosted HLS video server: upload a video, play it as HLS."
)]
pub struct Config {
    /// Address to listen on (use 127.0.0.1:0 for an ephemeral port).
    #[arg(long, env = "HLSD_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Data root: one folder per video. With `--store s3://…`, only this
    /// node's scratch (upload spools, the muxers' working files).
    #[arg(long, env = "HLSD_STORAGE", default_value = DEFAULT_STORAGE)]
    pub storage: PathBuf,
    /// Where videos live: `file` (the `--storage` folder) or
    /// `s3://BUCKET[/PREFIX]`, an S3-compatible bucket several nodes can
    /// share; credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
    /// (and AWS_SESSION_TOKEN).
    #[arg(long, env = "HLSD_STORE", default_value = "file", value_parser = StoreKind::parse_arg)]
    pub store: StoreKind,
    /// The S3 server, e.g. `http://127.0.0.1:3900` (AWS's regional
    /// endpoint when not given).
    #[arg(long, env = "HLSD_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// The region signed into S3 requests.
    #[arg(long, env = "HLSD_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// Address the bucket in the path (`host/bucket/key`, what most
    /// self-hosted S3 servers want) instead of the host name.
    #[arg(long, env = "HLSD_S3_PATH_STYLE")]
    pub s3_path_style: bool,
    /// With `--store s3://…` and no `--signing-key`: playlists name media
    /// files (segments, init segments, captions, thumbnails) at
    /// `<this>/<id>/…` (a CDN or public bucket in front of the bucket's
    /// prefix) instead of through hlsd.
    #[arg(long, env = "HLSD_MEDIA_BASE_URL")]
    pub media_base_url: Option<String>,
    /// This node's name in the records of the jobs it runs (with a shared
    /// `--store`); the host name by default.
    #[arg(long, env = "HLSD_NODE_NAME", value_parser = parse_node_name)]
    pub node_name: Option<String>,
    /// A node's claim on its running jobs lasts this long without renewal;
    /// after it (and half as long again for clock skew) another node takes
    /// the job over or marks it failed (`node_lost`), seconds.
    #[arg(long, env = "HLSD_LEASE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(3..=600))]
    pub lease_secs: u64,
    /// With a shared store, how often `--max-storage-bytes` is measured
    /// again over the whole bucket (other nodes' videos), seconds.
    #[arg(long, env = "HLSD_QUOTA_REFRESH_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..), hide = true)]
    pub quota_refresh_secs: u64,
    /// Target HLS segment duration, seconds.
    #[arg(long, env = "HLSD_SEGMENT_SECONDS", default_value_t = DEFAULT_SEGMENT_SECONDS,
          value_parser = clap::value_parser!(u32).range(1..=60))]
    pub segment_seconds: u32,
    /// Largest accepted upload, bytes; larger bodies get 413.
    #[arg(long, env = "HLSD_MAX_UPLOAD_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: u64,
    /// Transcode jobs running at once; the rest wait as `queued`.
    #[arg(long, env = "HLSD_JOBS", default_value_t = DEFAULT_JOBS,
          value_parser = parse_positive)]
    pub jobs: usize,
    /// libx264 preset (ultrafast … veryslow).
    #[arg(long, env = "HLSD_X264_PRESET", default_value = DEFAULT_X264_PRESET)]
    pub x264_preset: String,
    /// libx264 constant rate factor (lower is better quality).
    #[arg(long, env = "HLSD_CRF", default_value_t = DEFAULT_CRF,
          value_parser = clap::value_parser!(u32).range(0..=51))]
    pub crf: u32,
    /// Most frames libx264 looks ahead (rc-lookahead; the preset's own when
    /// that is smaller). Each costs one picture of memory per rung.
    #[arg(long, env = "HLSD_X264_LOOKAHEAD", default_value_t = DEFAULT_X264_LOOKAHEAD,
          value_parser = clap::value_parser!(u32).range(0..=250))]
    pub x264_lookahead: u32,
    /// libx264 b-pyramid: none (the least memory), strict or normal (the
    /// presets' own; two more reference pictures per rung).
    #[arg(long, env = "HLSD_X264_B_PYRAMID", default_value = DEFAULT_X264_B_PYRAMID,
          value_parser = ["none", "strict", "normal"])]
    pub x264_b_pyramid: String,
    /// A long video's encode is split in time into chunks of about this
    /// many seconds, cut on the keyframe grid, encoded side by side and
    /// stitched into the same segments (0: never split).
    #[arg(long, env = "HLSD_CHUNK_SECONDS", default_value_t = DEFAULT_CHUNK_SECONDS)]
    pub chunk_seconds: u32,
    /// Chunks of one video encoded at once (1: no splitting); each holds
    /// its own decoder and encoders. Default: half the cores, at most 4.
    #[arg(long, env = "HLSD_CHUNK_WORKERS", default_value_t = default_chunk_workers(),
          value_parser = parse_positive)]
    pub chunk_workers: usize,
    /// Codec groups every video gets, and the most an upload may ask
    /// (`codecs`): `h264[,av1][,hevc]`. Each extra codec is a whole ladder
    /// in fMP4 beside the H.264 one, in the same master.
    #[arg(long, env = "HLSD_CODECS", default_value = "h264", value_parser = Codecs::parse)]
    pub codecs: Codecs,
    /// An HDR source's HEVC/AV1 groups: `sdr` (tone-mapped) or `keep` (10-bit PQ/HLG).
    #[arg(long, env = "HLSD_HDR", value_enum, default_value_t = HdrMode::Sdr)]
    pub hdr: HdrMode,
    /// SVT-AV1 preset (0 slowest … 13 fastest).
    #[arg(long, env = "HLSD_AV1_PRESET", default_value_t = DEFAULT_AV1_PRESET,
          value_parser = clap::value_parser!(u32).range(0..=13))]
    pub av1_preset: u32,
    /// SVT-AV1 constant rate factor (lower is better quality).
    #[arg(long, env = "HLSD_AV1_CRF", default_value_t = DEFAULT_AV1_CRF,
          value_parser = clap::value_parser!(u32).range(1..=63))]
    pub av1_crf: u32,
    /// libx265 preset (ultrafast … veryslow).
    #[arg(long, env = "HLSD_HEVC_PRESET", default_value = DEFAULT_HEVC_PRESET,
          value_parser = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"])]
    pub hevc_preset: String,
    /// libx265 constant rate factor (lower is better quality).
    #[arg(long, env = "HLSD_HEVC_CRF", default_value_t = DEFAULT_HEVC_CRF,
          value_parser = clap::value_parser!(u32).range(0..=51))]
    pub hevc_crf: u32,
    /// Bitrate cap for the video encode, kbit/s (VBV maxrate).
    #[arg(long, env = "HLSD_MAX_VIDEO_KBPS", default_value_t = DEFAULT_MAX_VIDEO_KBPS)]
    pub max_video_kbps: u32,
    /// Uploads plus queued and running jobs alive at once; more get 503.
    #[arg(long, env = "HLSD_MAX_PENDING", default_value_t = DEFAULT_MAX_PENDING,
          value_parser = parse_positive)]
    pub max_pending: usize,
    /// Open connections at once.
    #[arg(long, env = "HLSD_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = parse_positive)]
    pub max_connections: usize,
    /// Seconds a client may take to send its request headers.
    #[arg(long, env = "HLSD_HEADER_TIMEOUT_SECS", default_value_t = DEFAULT_HEADER_TIMEOUT_SECS)]
    pub header_timeout_secs: u64,
    /// Seconds an upload may stay silent before it is aborted.
    #[arg(long, env = "HLSD_BODY_IDLE_TIMEOUT_SECS", default_value_t = DEFAULT_BODY_IDLE_TIMEOUT_SECS)]
    pub body_idle_timeout_secs: u64,
    /// Slowest average upload rate accepted after the first
    /// `--body-idle-timeout-secs`, bytes/s (0: no minimum); slower gets 408.
    #[arg(long, env = "HLSD_MIN_UPLOAD_BYTES_PER_SEC", default_value_t = DEFAULT_MIN_UPLOAD_BYTES_PER_SEC)]
    pub min_upload_bytes_per_sec: u64,
    /// Largest frame (width × height) we agree to decode; larger gets 422.
    #[arg(long, env = "HLSD_MAX_PIXELS", default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Longest source we agree to transcode, seconds; longer gets 422.
    #[arg(long, env = "HLSD_MAX_DURATION_SECS", default_value_t = DEFAULT_MAX_DURATION_SECS)]
    pub max_duration_secs: u64,
    /// When to delete the uploaded original (the spool): `always` keeps it,
    /// `until-ready` deletes it once the video is ready (a failed video keeps
    /// it), `never` deletes it as soon as its job ends.
    #[arg(long, env = "HLSD_KEEP_SOURCE", value_enum, default_value_t = KeepSource::UntilReady)]
    pub keep_source: KeepSource,
    /// Most bytes the storage folder may hold (0: no quota); uploads that
    /// would cross it get 507.
    #[arg(long, env = "HLSD_MAX_STORAGE_BYTES", default_value_t = DEFAULT_MAX_STORAGE_BYTES)]
    pub max_storage_bytes: u64,
    /// `/readyz` reports not ready below this much free disk, bytes.
    #[arg(long, env = "HLSD_MIN_FREE_BYTES", default_value_t = DEFAULT_MIN_FREE_BYTES)]
    pub min_free_bytes: u64,
    /// Origins allowed to play (CORS on `/play/…` and `/keys/…`): `*`, or a
    /// comma-separated list (e.g. `https://a.example,https://b.example`).
    #[arg(long, env = "HLSD_CORS_ORIGIN", default_value = DEFAULT_CORS_ORIGIN)]
    pub cors_origin: String,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` headers name
    /// the client (for per-client limits): comma-separated CIDRs. Without
    /// it those headers are ignored.
    #[arg(long = "trusted-proxy", env = "HLSD_TRUSTED_PROXY", value_delimiter = ',',
          value_parser = Cidr::parse_arg)]
    pub trusted_proxies: Vec<Cidr>,
    /// With `--trusted-proxy`: the one header that names the client (the
    /// one the proxy sets; the others are ignored): `x-forwarded-for`,
    /// `forwarded` or `x-real-ip`. Its rightmost hop that is not a trusted
    /// proxy is the client.
    #[arg(long, env = "HLSD_CLIENT_IP_HEADER", value_enum, default_value_t = ClientIpHeader::XForwardedFor)]
    pub client_ip_header: ClientIpHeader,
    /// IPv6 clients are one client per this many leading bits of their
    /// address (rate limits and connection caps): a host is given a /64,
    /// so counting /128s would let it take 2^64 places.
    #[arg(long, env = "HLSD_IPV6_PREFIX", default_value_t = 64,
          value_parser = clap::value_parser!(u8).range(1..=128))]
    pub ipv6_prefix: u8,
    /// Host names the API answers besides the listen address, IP literals,
    /// `localhost` and `--public-url`'s host (comma-separated, `name` or
    /// `name:port`). A request with any other `Host` gets 421
    /// `forbidden_host` (playback aside): a page whose DNS name was
    /// rebound to this server cannot use its API. `*` turns the check off.
    #[arg(
        long = "allowed-host",
        env = "HLSD_ALLOWED_HOST",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Open connections one client address may hold (trusted proxies are
    /// exempt); more are closed at once.
    #[arg(long, env = "HLSD_MAX_CONNECTIONS_PER_IP", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_IP,
          value_parser = parse_positive)]
    pub max_connections_per_ip: usize,
    /// A client that reads nothing of a response for this long loses its
    /// connection, seconds.
    #[arg(long, env = "HLSD_SEND_TIMEOUT_SECS", default_value_t = DEFAULT_SEND_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub send_timeout_secs: u64,
    /// Bytes of hot files (segments, playlists, keys, posters) kept in
    /// memory, so popular ones cost no disk I/O (0: no cache); a quarter of
    /// it keeps the image API's finished images.
    #[arg(long, env = "HLSD_CACHE_BYTES", default_value_t = DEFAULT_CACHE_BYTES)]
    pub cache_bytes: u64,
    /// Server-Sent Event streams open at once (`/videos/{id}/events`);
    /// they do not hold the connection places everything else needs.
    #[arg(long, env = "HLSD_MAX_EVENT_STREAMS", default_value_t = DEFAULT_MAX_EVENT_STREAMS,
          value_parser = parse_positive)]
    pub max_event_streams: usize,
    /// Let imports (`POST /videos {"url"}`) reach private, loopback and
    /// link-local addresses (the server's own network); refused otherwise.
    #[arg(long, env = "HLSD_IMPORT_ALLOW_PRIVATE")]
    pub import_allow_private: bool,
    /// One address and port (`192.168.1.5:8080`) or range (`10.1.0.0/16`)
    /// imports may reach although private; repeat or comma-separate.
    #[arg(long, env = "HLSD_IMPORT_ALLOW", value_delimiter = ',',
          value_parser = crate::netpolicy::Allow::parse_arg)]
    pub import_allow: Vec<crate::netpolicy::Allow>,
    /// Pages allowed to show `/embed/{id}` in a frame (CSP
    /// `frame-ancestors`): `*`, or origins such as `https://blog.example`
    /// (comma-separated). The management UI is never framed.
    #[arg(
        long,
        env = "HLSD_EMBED_ORIGINS",
        value_delimiter = ',',
        default_value = "*"
    )]
    pub embed_origins: Vec<String>,
    /// Origins allowed to use the management API (uploads, the library,
    /// metrics) from a browser: a comma-separated list; none by default.
    /// Writes from any other page's origin get 403 `forbidden_origin`.
    #[arg(long, env = "HLSD_API_CORS_ORIGIN", default_value = "")]
    pub api_cors_origin: String,
    /// A connection with no request in progress (nor a response still
    /// being sent) for this long is closed, seconds. HTTP/1.1 closes an
    /// idle connection sooner when `--header-timeout-secs` is shorter:
    /// hyper's header-read timer runs while it waits for the next request.
    #[arg(long, env = "HLSD_KEEP_ALIVE_SECS", default_value_t = DEFAULT_KEEP_ALIVE_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_alive_secs: u64,
    /// PEM certificate chain: with `--tls-key`, hlsd serves HTTPS
    /// (HTTP/2 and HTTP/1.1 by ALPN) instead of plain HTTP. `SIGHUP`
    /// reloads both files.
    #[arg(long, env = "HLSD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert` (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "HLSD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Make an MP4 download of every video (`/play/{id}/download.mp4`,
    /// the top rendition remuxed at the end of its job): `on` or `off`.
    #[arg(long, env = "HLSD_DOWNLOADS", default_value = "on", value_parser = parse_on_off,
          action = clap::ArgAction::Set)]
    pub downloads: bool,
    /// Where to POST events (`video.created`, `video.ready`,
    /// `video.failed`, `video.deleted`): repeat the flag for several
    /// receivers (comma-separated in HLSD_WEBHOOK_URL).
    #[arg(long = "webhook-url", env = "HLSD_WEBHOOK_URL", value_delimiter = ',')]
    pub webhook_urls: Vec<String>,
    /// The secret events are signed with (`Hlsd-Signature`); required with
    /// `--webhook-url`, at least 16 bytes.
    #[arg(long, env = "HLSD_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// A resumable (tus) upload not complete this long after its creation
    /// is removed, seconds.
    #[arg(long, env = "HLSD_UPLOAD_EXPIRY_SECS", default_value_t = DEFAULT_UPLOAD_EXPIRY_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upload_expiry_secs: u64,
    /// Most streams an upload may have; more get 422.
    #[arg(long, env = "HLSD_MAX_STREAMS", default_value_t = DEFAULT_MAX_STREAMS)]
    pub max_streams: usize,
    /// Uploads receiving at once; more get 503.
    #[arg(long, env = "HLSD_MAX_UPLOADS", default_value_t = DEFAULT_MAX_UPLOADS,
          value_parser = parse_positive)]
    pub max_uploads: usize,
    /// Uploads one client address may start per minute; more get 429.
    #[arg(long, env = "HLSD_UPLOADS_PER_MINUTE", default_value_t = DEFAULT_UPLOADS_PER_MINUTE)]
    pub uploads_per_minute: u32,
    /// Base of the URLs in API answers (e.g. https://video.example.com);
    /// by default they are built from the request's Host header.
    #[arg(long, env = "HLSD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// API token(s): uploads and every management endpoint then need
    /// `Authorization: Bearer <token>`. Repeat the flag, or separate with
    /// commas in HLSD_API_TOKEN.
    #[arg(
        long = "api-token",
        env = "HLSD_API_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_tokens: Vec<String>,
    /// A file with more API tokens, one per line.
    #[arg(long, env = "HLSD_API_TOKEN_FILE")]
    pub api_token_file: Option<PathBuf>,
    /// Key for signed playback URLs: with it, every request under
    /// `/play/{id}/` needs a valid `?token=` (playback URLs carry one).
    #[arg(long, env = "HLSD_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// A file holding the signing key (first line).
    #[arg(long, env = "HLSD_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,
    /// Lifetime of a signed playback URL, seconds.
    #[arg(long, env = "HLSD_PLAYBACK_TOKEN_TTL_SECS", default_value_t = DEFAULT_PLAYBACK_TOKEN_TTL_SECS)]
    pub playback_token_ttl_secs: u64,
    /// Run with `--signing-key` but no `--api-token` (anyone can then mint
    /// playback tokens through the API; hlsd warns).
    #[arg(long, env = "HLSD_ALLOW_OPEN_API")]
    pub allow_open_api: bool,
    /// Encrypt every video's segments with AES-128 (RFC 8216 §5.2); an
    /// upload can also ask for it with a form field `encrypt=1`.
    #[arg(long, env = "HLSD_ENCRYPT")]
    pub encrypt: bool,
    /// With encryption, a new key every this many segments (0: one key per video).
    #[arg(long, env = "HLSD_KEY_ROTATION_SEGMENTS", default_value_t = 0)]
    pub key_rotation_segments: u32,
    /// Log format: `text` (human) or `json`.
    #[arg(long, env = "HLSD_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Renditions to make: `auto` (the standard ladder up to the source's
    /// size), `source` (one rendition at the source's size), or heights
    /// like `1080,720,480` (never above the source's).
    #[arg(long, env = "HLSD_LADDER", default_value = "auto", value_parser = Ladder::parse)]
    pub ladder: Ladder,
    /// Copy an eligible H.264/AAC source into the top rendition instead of
    /// re-encoding it (`auto`), or always encode (`never`).
    #[arg(long, env = "HLSD_COPY", value_enum, default_value_t = CopyMode::Auto)]
    pub copy: CopyMode,
    /// Segment container: MPEG-TS (`ts`) or fragmented MP4 (`fmp4`, with
    /// `#EXT-X-MAP`). Encrypted videos are always TS (FFmpeg's hls muxer
    /// cannot encrypt fMP4).
    #[arg(long, env = "HLSD_SEGMENT_FORMAT", value_enum, default_value_t = SegmentFormat::Ts)]
    pub segment_format: SegmentFormat,
    /// Where lives are pushed over RTMP (`0.0.0.0:1935`); off unless given.
    #[arg(long, env = "HLSD_RTMP_LISTEN")]
    pub rtmp_listen: Option<std::net::SocketAddr>,
    /// Where lives are pushed over SRT (UDP `0.0.0.0:9000`); off unless given.
    #[arg(long, env = "HLSD_SRT_LISTEN")]
    pub srt_listen: Option<std::net::SocketAddr>,
    /// Live broadcasts arriving at once; another publisher is refused.
    #[arg(long, env = "HLSD_MAX_LIVES", default_value_t = DEFAULT_MAX_LIVES,
          value_parser = parse_positive)]
    pub max_lives: usize,
    /// A live's input bit-rate cap, kbit/s (over 4 s): a publisher above is cut.
    #[arg(long, env = "HLSD_LIVE_MAX_KBPS", default_value_t = DEFAULT_LIVE_MAX_KBPS)]
    pub live_max_kbps: u64,
    /// How long a cut live awaits its publisher's reconnect (same video).
    #[arg(long, env = "HLSD_LIVE_RECONNECT_SECS", default_value_t = 10)]
    pub live_reconnect_secs: u64,
    /// The sliding window of a live kept nowhere (`record: false`), seconds.
    #[arg(long, env = "HLSD_LIVE_WINDOW_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(6..=3600))]
    pub live_window_secs: u32,
}
