//! hlsd: a self-hosted video server. An upload is spooled to disk as it
//! arrives and transcoded in-process (libav through ffmpeg-next) into HLS
//! while it is still arriving.
//!
//! # Layout
//! - [`config`]: every knob, with its flag, env var and default.
//! - [`error`]: the one error type and its HTTP mapping.
//! - `auth`: API bearer tokens, signed playback tokens, playlist rewriting.
//! - [`server`]: accept loop, limits, graceful shutdown.
//! - `http`: routing and one file per resource (`upload`, `play`, `videos`).
//! - `ingest`: multipart field → spool; size limit; idle timeout.
//! - `spool`: the growing file and its blocking `Read + Seek` view.
//! - `jobs`: pipeline threads, transcode slots, cleanup of rejected uploads.
//! - [`media`]: all libav work (probe, decode, filter, encode, HLS mux).
//! - [`catalog`]: video records persisted as `meta.json`.
//! - [`metrics`]: counters and gauges in the Prometheus text format.
//! - `recovery`: the start-up sweep after a crash; re-queues unfinished jobs.
//!
//! Dependencies point one way: `http → ingest/jobs → media → catalog`.
#![warn(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod auth;
pub mod catalog;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod ingest;
mod jobs;
pub mod media;
pub mod metrics;
mod recovery;
pub mod server;
mod spool;

pub use config::Config;
pub use error::Error;
