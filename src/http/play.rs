//! `GET`/`HEAD /play/{id}/{file}`: playlists and segments, streamed from
//! `storage/<id>/`, with Range (RFC 9110 §14), CORS and cache headers.

use super::{empty, full, AppState, Body};
use crate::auth;
use crate::playlist::{self, MediaPlaylist};
use crate::storage::names::{self, FileKind};
use crate::storage::VideoId;
use crate::Error;
use futures_util::TryStreamExt;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::io::SeekFrom;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Segments never change once renamed into place.
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A finished playlist changes only if the video is re-processed.
const CACHE_READY_PLAYLIST: &str = "public, max-age=300";
/// A growing playlist must be re-fetched (RFC 8216 §6.2.1).
const CACHE_GROWING: &str = "no-cache";
/// Read size when streaming a file.
const STREAM_CHUNK: usize = 64 * 1024;
/// How long a request for a video's playlist waits for it to be published
/// (a ladder's master playlist appears once every rung has a segment,
/// about a second into the job); under hls.js's 20 s manifest timeout.
const PLAYLIST_WAIT: std::time::Duration = std::time::Duration::from_secs(12);

/// An inclusive byte range of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// Parses a `Range` header for a resource of `len` bytes (RFC 9110 §14.1.2).
/// `Ok(None)`: serve the whole resource (no header, a syntax we ignore, or
/// several ranges, which a server may answer in full). `Err`: 416.
pub(crate) fn parse_range(value: Option<&str>, len: u64) -> Result<Option<ByteRange>, Error> {
    // The range unit is case-insensitive (RFC 9110 §14.1).
    let Some(spec) = value.map(str::trim).and_then(|v| {
        v.get(..6)
            .filter(|u| u.eq_ignore_ascii_case("bytes="))
            .map(|_| &v[6..])
    }) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let unsatisfiable = Err(Error::RangeNotSatisfiable { len });
    if a.is_empty() {
        // Suffix range: the last N bytes.
        if !digits(b) {
            return Ok(None);
        }
        let n: u64 = b.parse().unwrap_or(u64::MAX);
        if n == 0 || len == 0 {
            return unsatisfiable;
        }
        return Ok(Some(ByteRange {
            start: len.saturating_sub(n),
            end: len - 1,
        }));
    }
    if !digits(a) || !(b.is_empty() || digits(b)) {
        return Ok(None);
    }
    let start: u64 = a.parse().unwrap_or(u64::MAX);
    let end: u64 = if b.is_empty() {
        u64::MAX
    } else {
        b.parse().unwrap_or(u64::MAX)
    };
    if end < start {
        return Ok(None);
    }
    if start >= len {
        return unsatisfiable;
    }
    Ok(Some(ByteRange {
        start,
        end: end.min(len - 1),
    }))
}

fn set(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// CORS headers specific to media (the origin itself is set for every
/// answer in `http::common_headers`).
fn expose_headers(headers: &mut HeaderMap) {
    set(
        headers,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        "Content-Length, Content-Range, Accept-Ranges",
    );
}

/// `GET /keys/{id}/key_NNNNN.key`: an AES-128 key, to holders of a valid
/// playback token (or the API token) when signing is on. Never cached.
pub(crate) async fn key(
    state: &AppState,
    req: &Parts,
    id: VideoId,
    name: &str,
) -> Result<Response<Body>, Error> {
    if !names::is_key_name(name) {
        return Err(Error::NotFound);
    }
    check_token(state, req, id)?;
    live_record(state, id)?;
    let path = state
        .catalog
        .store()
        .path(id, &format!("{}/{name}", names::KEYS_DIR));
    let mut f = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .await
        .map_err(|_| Error::NotFound)?;
    let mut key = Vec::with_capacity(16);
    f.read_to_end(&mut key).await?;
    let mut res = Response::new(full(key));
    let h = res.headers_mut();
    set(h, header::CONTENT_TYPE, "application/octet-stream");
    set(h, header::CACHE_CONTROL, "private, no-store");
    expose_headers(h);
    Ok(res)
}

/// With `--signing-key`, checks the request's playback token for video `id`
/// (an API token also opens it). Returns the token to carry on.
fn check_token(state: &AppState, req: &Parts, id: VideoId) -> Result<Option<String>, Error> {
    let Some(key) = &state.config.signing_key else {
        return Ok(None);
    };
    let header = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !state.config.api_tokens.is_empty() && auth::bearer_ok(&state.config.api_tokens, header) {
        return Ok(None);
    }
    let token = auth::token_from_query(req.uri.query()).ok_or(Error::InvalidToken)?;
    auth::verify(key.as_bytes(), id.as_str(), token, state.clock.unix()).map_err(|e| match e {
        auth::TokenError::Expired => Error::TokenExpired,
        auth::TokenError::Invalid => Error::InvalidToken,
    })?;
    Ok(Some(token.to_owned()))
}

/// A playlist whose URIs are rewritten to carry `token` (read whole: they
/// are small; Range is not offered on rewritten text).
async fn signed_playlist(
    state: &AppState,
    req: &Parts,
    rec: &crate::catalog::Record,
    path: &std::path::Path,
    token: &str,
    top: bool,
) -> Result<Response<Body>, Error> {
    let read = async {
        let mut f = tokio::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .await?;
        let mut t = String::new();
        f.read_to_string(&mut t).await?;
        Ok::<_, std::io::Error>(t)
    };
    let text = match read.await {
        Ok(t) => t,
        Err(_) if rec.status.is_active() && top => {
            MediaPlaylist::placeholder(state.config.segment_seconds).to_string()
        }
        Err(_) => return Err(Error::NotFound),
    };
    let text = playlist::rewrite_uris(&text, |u| playlist::with_query(u, "token", token));
    let len = text.len();
    let head = req.method == Method::HEAD;
    let mut res = Response::new(if head { empty() } else { full(text) });
    let h = res.headers_mut();
    set(h, header::CONTENT_TYPE, FileKind::Playlist.content_type());
    set(h, header::CONTENT_LENGTH, &len.to_string());
    // Rewritten per token: never shared between viewers.
    set(h, header::CACHE_CONTROL, "private, no-cache");
    expose_headers(h);
    Ok(res)
}

/// The record of a video that exists and is not being deleted.
fn live_record(state: &AppState, id: VideoId) -> Result<crate::catalog::Record, Error> {
    state
        .catalog
        .get(id)
        .filter(|r| r.status != crate::catalog::Status::Deleting)
        .ok_or(Error::NotFound)
}

/// Waits (up to [`PLAYLIST_WAIT`]) for an active video's top playlist to
/// be published. A single rendition has its placeholder instead; a ladder's
/// master cannot be stood in for (a player that took a placeholder media
/// playlist would never look for variants), so the request waits, and
/// gets `503 not_ready` with `Retry-After` if the job has not started.
async fn await_master(
    state: &AppState,
    id: VideoId,
    path: &std::path::Path,
) -> Result<crate::catalog::Record, Error> {
    let deadline = tokio::time::Instant::now() + PLAYLIST_WAIT;
    loop {
        let rec = live_record(state, id)?;
        let present = tokio::fs::try_exists(path).await.unwrap_or(false);
        if present || !rec.status.is_active() || rec.renditions.len() == 1 {
            return Ok(rec);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::NotReady);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub(crate) async fn get(
    state: &AppState,
    req: &Parts,
    id: VideoId,
    rung: Option<&str>,
    file: &str,
) -> Result<Response<Body>, Error> {
    if !rung.is_none_or(names::is_rung_name) {
        return Err(Error::NotFound);
    }
    let kind = names::playable_file(file).ok_or(Error::NotFound)?;
    let token = check_token(state, req, id)?;
    let mut rec = live_record(state, id)?;
    let path = match rung {
        Some(r) => state.catalog.store().path(id, &format!("{r}/{file}")),
        None => state.catalog.store().path(id, file),
    };
    let top = rung.is_none() && file == names::PLAYLIST;
    if top && rec.status.is_active() {
        rec = await_master(state, id, &path).await?;
    }
    if let (FileKind::Playlist, Some(token)) = (kind, &token) {
        return signed_playlist(state, req, &rec, &path, token, top).await;
    }
    // O_NOFOLLOW: a symlink planted in a video folder is never followed.
    let opened = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .await;
    let head = req.method == Method::HEAD;
    let mut file = match opened {
        Ok(f) => f,
        Err(_) if top && rec.status.is_active() => {
            let text = MediaPlaylist::placeholder(state.config.segment_seconds).to_string();
            let len = text.len();
            let mut res = Response::new(if head { empty() } else { full(text) });
            let h = res.headers_mut();
            set(h, header::CONTENT_TYPE, kind.content_type());
            set(h, header::CONTENT_LENGTH, &len.to_string());
            set(h, header::CACHE_CONTROL, CACHE_GROWING);
            expose_headers(h);
            return Ok(res);
        }
        Err(_) => return Err(Error::NotFound),
    };
    let meta = file.metadata().await?;
    if !meta.is_file() {
        return Err(Error::NotFound);
    }
    let len = meta.len();
    let range_header = req.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // With If-Range we cannot tell the representation is unchanged (no
    // validators), so the whole resource is sent (RFC 9110 §13.1.5).
    let range = if req.headers.contains_key(header::IF_RANGE) {
        None
    } else {
        parse_range(range_header, len)?
    };
    let (status, start, count) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.start, r.end - r.start + 1),
        None => (StatusCode::OK, 0, len),
    };
    let body = if head || count == 0 {
        empty()
    } else {
        if start > 0 {
            file.seek(SeekFrom::Start(start)).await?;
        }
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(count), STREAM_CHUNK)
            .map_ok(Frame::data);
        StreamBody::new(stream).boxed_unsync()
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let h = res.headers_mut();
    set(h, header::CONTENT_TYPE, kind.content_type());
    set(h, header::CONTENT_LENGTH, &count.to_string());
    set(h, header::ACCEPT_RANGES, "bytes");
    if range.is_some() {
        set(
            h,
            header::CONTENT_RANGE,
            &format!("bytes {}-{}/{}", start, start + count - 1, len),
        );
    }
    let cache = match kind {
        FileKind::Playlist if rec.status.is_active() => CACHE_GROWING,
        FileKind::Playlist => CACHE_READY_PLAYLIST,
        _ => CACHE_IMMUTABLE,
    };
    set(h, header::CACHE_CONTROL, cache);
    expose_headers(h);
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, len: u64) -> Result<Option<(u64, u64)>, u16> {
        parse_range(Some(s), len)
            .map(|o| o.map(|r| (r.start, r.end)))
            .map_err(|e| e.status().as_u16())
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(r("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(r("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=90-200", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=-200", 100), Ok(Some((0, 99))));
        assert_eq!(r("bytes=100-", 100), Err(416));
        assert_eq!(r("bytes=-0", 100), Err(416));
        assert_eq!(r("bytes=5-1", 100), Ok(None));
        assert_eq!(r("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(r("items=0-1", 100), Ok(None));
        assert_eq!(r("bytes=a-b", 100), Ok(None));
        assert_eq!(parse_range(None, 100).unwrap(), None);
    }
}
