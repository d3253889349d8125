//! HLS packaging with no libav in it: what the transcode's muxers produce
//! becomes what players read. Pure Rust over bytes, files and typed
//! playlists; `media` drives it, and it never imports media.
//!
//! # Layout
//! - `ladder`: which rungs (sizes, bit rates) a source gets.
//! - `timeline`: a stream's timestamps kept moving forward (repeats,
//!   jumps, overlaps) before they reach the encoders and muxers.
//! - `keys`: AES-128 keys and their rotation (the muxer's key-info file).
//! - `publish`: a rung's public playlist, written as the muxer's segments
//!   close and only after they are durable; `queue`: the job's publishing
//!   thread and its bounded queue, which keeps that order while the
//!   encoder goes on.
//! - `master` / `iframes`: the master playlist (from plain per-rung
//!   numbers, [`master::RungSummary`], or from a record) and the I-frame
//!   playlists, found by scanning finished MPEG-TS segments (`ts`).
//! - `captions`: caption tracks as renditions: segment windows, the
//!   MPEG-TS origin, a track's WebVTT segments and playlist.
//! - `codecs`: RFC 6381 codec strings for `CODECS`.
//!
//! Writes go through [`crate::storage::Store`]; playlist text through
//! [`crate::playlist`].

pub(crate) mod captions;
pub(crate) mod codecs;
pub(crate) mod edge;
pub(crate) mod fmp4;
pub(crate) mod iframes;
pub(crate) mod keys;
pub(crate) mod ladder;
pub(crate) mod lowlat;
pub(crate) mod master;
pub(crate) mod publish;
pub(crate) mod queue;
pub(crate) mod timeline;
pub(crate) mod ts;
