//! hlsd: a self-hosted video server. An upload is spooled to disk as it
//! arrives and transcoded in-process (libav through ffmpeg-next) into HLS
//! while it is still arriving.
//!
//! # Layout
//! - [`server`]: accept loop, limits, graceful shutdown; `prepare` loads
//!   the catalog and runs `recovery`.
//! - `http`: routing and one file per resource (`upload`, `play`,
//!   `videos`, `ops`, `ui`); the only place an error becomes a response.
//! - `auth`: API bearer tokens and signed playback tokens.
//! - `recovery`: the start-up sweep after a crash; rebuilds unreadable
//!   records, re-queues unfinished jobs.
//! - `ingest`: multipart field → spool; size limit; idle timeout; and
//!   resumable (tus) uploads, whose bytes come in many requests.
//! - `jobs`: pipeline threads, transcode slots, cleanup of rejected uploads.
//! - [`media`]: all libav work (probe, decode, filter, encode, HLS mux,
//!   publishing what the muxers close).
//! - [`catalog`]: video records persisted as `meta.json`.
//! - `spool`: the growing file and its blocking `Read + Seek` view.
//! - [`storage`]: the layout: [`storage::VideoId`], file names, paths,
//!   durable atomic writes, sizes, removal.
//! - [`playlist`]: every m3u8 written or read, from typed values.
//! - [`metrics`]: counters and gauges in the Prometheus text format.
//! - [`webhooks`]: signed events, a persisted outbox, delivery with retries.
//! - [`captions`]: WebVTT/SRT parsing, cue cleaning, segmented WebVTT.
//! - [`clock`], [`config`], [`error`]: time, settings, the one error type;
//!   `tlsclient`: the TLS settings of outgoing connections.
//!
//! Dependencies point one way, top to bottom of this list:
//! `server → http → recovery → ingest → jobs → media → webhooks → catalog →
//! spool → storage`, with `auth`, `captions`, `playlist`, `metrics`,
//! `clock`, `config`, `error` and `tlsclient` below everything that uses them; nothing
//! points back up.
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
mod http;
mod ingest;
mod jobs;
pub mod media;
pub mod metrics;
pub mod playlist;
mod recovery;
pub mod server;
mod spool;
pub mod storage;
mod tlsclient;
pub mod webhooks;

pub use config::Config;
pub use error::Error;
