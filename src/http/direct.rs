//! Media straight from the bucket (issue 15): with `--signing-key`, the
//! media URIs of a served playlist (segments, init segments, caption and
//! thumbnail files) become presigned S3 GET URLs that expire with the
//! viewer's playback token, so segment bytes never pass through hlsd and
//! access stays signed; with `--media-base-url` and no signing key, they
//! become absolute URLs under that base (a CDN or a public bucket). URIs of
//! playlists and keys stay hlsd's (its token check guards the keys).

use super::AppState;
use crate::playlist;
use crate::storage::{Store, VideoId};
use std::time::Duration;

/// How a playlist's media URIs reach the bucket.
pub(crate) enum Direct {
    /// Presigned, valid this long.
    Presigned(Duration),
    /// Under this base (no trailing slash).
    Base(String),
}

/// The direct mode of a playlist served with `token` (the viewer's
/// playback token when `--signing-key` is set); `None`: media through hlsd.
pub(crate) fn mode(state: &AppState, token: Option<&str>) -> Option<Direct> {
    if !state.catalog.store().traits().remote {
        return None;
    }
    if state.config.signing_key.is_some() {
        // A token is `<expiry>.<signature>` and was verified already.
        let expires: u64 = token?.split_once('.')?.0.parse().ok()?;
        let left = expires.saturating_sub(state.clock.unix()).max(1);
        return Some(Direct::Presigned(Duration::from_secs(left)));
    }
    let base = state.config.media_base_url.as_deref()?;
    Some(Direct::Base(base.trim_end_matches('/').to_owned()))
}

/// A media file's URI in a playlist: relative, no query, not a playlist.
fn is_media(uri: &str) -> bool {
    !uri.contains("://") && !uri.starts_with('/') && !uri.contains('?') && !uri.ends_with(".m3u8")
}

/// `text`, the playlist of video `id` in folder `dir` (`""` or
/// `"<rung>/"`), with its media URIs direct and the others carrying
/// `token`. Blocking (presigning runs on the bucket client's runtime).
pub(crate) fn rewrite(
    store: &Store,
    id: VideoId,
    dir: &str,
    text: &str,
    direct: &Direct,
    token: Option<&str>,
) -> String {
    let through_hlsd = |u: &str| match token {
        Some(t) => playlist::with_query(u, "token", t),
        None => u.to_owned(),
    };
    playlist::rewrite_uris(text, |u| {
        if !is_media(u) {
            return through_hlsd(u);
        }
        let rel = format!("{dir}{u}");
        // Keys are only ever behind hlsd's token check.
        if rel.starts_with(crate::storage::names::KEYS_DIR) {
            return through_hlsd(u);
        }
        match direct {
            Direct::Presigned(left) => store
                .presign_get(id, &rel, *left)
                .unwrap_or_else(|| through_hlsd(u)),
            Direct::Base(base) => format!("{base}/{id}/{rel}"),
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_relative_media_uris_go_direct() {
        for m in [
            "seg_00001.ts",
            "g2_seg_00001.m4s",
            "init.mp4",
            "c_00001.vtt",
            "sheet_0.jpg",
        ] {
            assert!(super::is_media(m), "{m}");
        }
        for m in [
            "720p/video.m3u8",
            "/keys/x/k.key",
            "https://cdn/x.ts",
            "s.ts?token=1",
        ] {
            assert!(!super::is_media(m), "{m}");
        }
    }
}
