//! Every m3u8 hlsd writes or reads, from typed values (RFC 8216): media
//! playlists ([`MediaPlaylist`], EVENT while growing, VOD when done, I-frame
//! only), master playlists ([`MasterPlaylist`]), and the URI rewriting that
//! signed playback URLs need ([`rewrite_uris`]). Nothing here does I/O.
//!
//! The libavformat `hls` muxer writes its own playlist as scratch; the job
//! parses it ([`MediaPlaylist::parse`]) and publishes the playlist players
//! see with [`MediaPlaylist::to_string`], so every playlist served has one
//! writer and one shape.

mod attrs;
mod clip;
mod delta;
mod master;
mod media;
mod rewrite;

pub use clip::Clip;
pub use delta::skip_older;
pub use master::{IFrameVariant, MasterPlaylist, MediaKind, Rendition, Variant};
pub use media::{ByteRange, Key, MediaPlaylist, PlaylistType, Segment};
pub use rewrite::{rewrite_uris, with_query};

/// The `Content-Type` of every playlist (RFC 8216 §4).
pub const CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";
