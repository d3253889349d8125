//! hlsd: a self-hosted video server. An upload is spooled to disk as it
//! arrives and transcoded in-process (libav through ffmpeg-next) into HLS
//! while it is still arriving.
//!
//! # Layout
//! - [`server`]: accept loop, limits, TLS, graceful shutdown; `prepare`
//!   loads the catalog and runs `recovery`.
//! - `http`: the route table (`route`: every path parsed once), who may do
//!   what (`access`: the Host rule, origins, every credential's scope),
//!   one file per resource (`upload`, `tus`, `import`, `lives`, `play`, `videos`,
//!   `captions`, `share`, `embed`, `oembed`, `ops`, `ui`); the only place
//!   an error becomes a response.
//! - `ingest`: multipart field → spool; size limit; idle timeout;
//!   resumable (tus) uploads, whose bytes come in many requests; imports
//!   from a URL (`ingest::import`: the fetcher, every hop checked);
//!   live broadcasts (`ingest::live`: the RTMP and SRT doors, the lives'
//!   registry, each broadcast's task framing its publisher into the
//!   spool).
//! - `recovery`: the start-up sweep after a crash: replays what each
//!   record and its files justify.
//! - `jobs`: pipeline threads, transcode slots, leases on a shared store,
//!   caption tracks (`jobs::captions`: every caption change).
//! - [`media`]: all libav work (probe, decode, filter graph, encoders, the
//!   HLS muxers); `media::Settings` is what a job is told.
//! - [`webhooks`]: signed events, a persisted outbox, delivery with retries.
//! - `hls`: HLS packaging without libav: the ladder, timestamps kept
//!   moving, keys, publishing what the muxers close, the master, I-frame
//!   and caption playlists, MPEG-TS parsing.
//! - [`catalog`]: video records persisted as `meta.json`, and their
//!   lifecycle (`catalog::Lifecycle`: one door per video, the table of
//!   states and changes, tombstones, events written with their change).
//! - [`failpoint`]: named crash points between durable steps (tests).
//! - `ffi`: the crate's only `unsafe` code.
//! - [`captions`]: WebVTT/SRT parsing, cue cleaning, segmented WebVTT.
//! - [`storage`]: the layout: [`storage::VideoId`], file names, paths,
//!   durable atomic writes, the folder and bucket backends, quota, removal.
//! - `spool`: the growing file and its blocking `Read + Seek` view.
//! - [`playlist`]: every m3u8 written or read, from typed values.
//! - `auth`, [`clock`], [`config`], [`error`], [`metrics`], `tlsclient`:
//!   tokens, time, settings, the one error type, Prometheus text, the TLS
//!   settings of outgoing connections.
//! - [`netpolicy`] (address ranges, where an import may connect) and
//!   `percent` (URL escapes): plain functions under everything.
//!
//! Dependencies point one way, top to bottom (`tests/structure.rs` reads
//! this line and checks every `crate::` path of `src/` against it):
//! `{server, fuzzing} → http → {ingest, recovery} → jobs → {media, webhooks} → hls → catalog → failpoint → ffi → {captions, storage, spool} → {auth, clock, config, error, metrics, playlist, tlsclient} → {netpolicy, percent}`
#![warn(clippy::unwrap_used, clippy::expect_used)]
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod auth;
pub mod captions;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod failpoint;
mod ffi;
#[doc(hidden)]
pub mod fuzzing;
mod hls;
mod http;
mod ingest;
mod jobs;
pub mod media;
pub mod metrics;
pub mod netpolicy;
mod percent;
pub mod playlist;
mod recovery;
pub mod server;
mod spool;
pub mod storage;
mod tlsclient;
pub mod webhooks;

pub use config::Config;
pub use error::Error;
