//! Serving a file of a video. A cache hit costs no disk I/O and no
//! blocking-pool hop; a miss costs one hop that opens, stats and, for a
//! file small enough to cache, reads it whole. Larger files stream in
//! 512 KiB reads. Every file carries a strong `ETag` and `Last-Modified`
//! (`If-None-Match` / `If-Modified-Since` → 304, `If-Range` honoured),
//! byte ranges (RFC 9110 §14), and playlists go gzipped when the client
//! takes it (media never).

use super::cache::CachedFile;
use super::{empty, encoding, full, AppState, Body};
use crate::storage::names::FileKind;
use crate::storage::VideoId;
use crate::Error;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::SystemTime;

/// Read size when streaming a large file.
const STREAM_CHUNK: usize = 512 * 1024;

/// A file ready to serve.
pub(crate) enum Loaded {
    /// Whole in memory (and in the cache).
    Whole(Arc<CachedFile>),
    /// Too large to cache: an open file to stream.
    Large {
        file: std::fs::File,
        len: u64,
        modified: SystemTime,
    },
    /// Too large to cache and in a bucket: read in ranges as it is sent.
    Remote {
        store: crate::storage::Store,
        id: VideoId,
        rel: String,
        len: u64,
        modified: SystemTime,
    },
}

impl Loaded {
    fn len(&self) -> u64 {
        match self {
            Loaded::Whole(f) => f.bytes.len() as u64,
            Loaded::Large { len, .. } | Loaded::Remote { len, .. } => *len,
        }
    }

    fn modified(&self) -> SystemTime {
        match self {
            Loaded::Whole(f) => f.modified,
            Loaded::Large { modified, .. } | Loaded::Remote { modified, .. } => *modified,
        }
    }

    fn etag(&self) -> String {
        match self {
            Loaded::Whole(f) => f.etag.clone(),
            Loaded::Large { len, modified, .. } | Loaded::Remote { len, modified, .. } => {
                let nanos = modified
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                format!("\"{len:x}-{nanos:x}\"")
            }
        }
    }
}

/// Loads `rel` of video `id`: from the cache, else in one blocking hop.
/// Missing files, folders and symlinks (never followed) are 404.
pub(crate) async fn load(state: &AppState, id: VideoId, rel: &str) -> Result<Loaded, Error> {
    let store = state.catalog.store();
    if store.is_shared() {
        return load_object(state, id, rel).await;
    }
    let path = store.path(id, rel);
    let epoch = store.epoch(id);
    if let Some(f) = state.cache.get(&path, epoch) {
        return Ok(Loaded::Whole(f));
    }
    let max = state.cache.max_file;
    let (loaded, path) = tokio::task::spawn_blocking(move || (read(&path, max), path))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    let loaded = loaded.map_err(|_| Error::NotFound)?;
    if let Loaded::Whole(f) = &loaded {
        state.cache.put(path, epoch, f.clone());
    }
    Ok(loaded)
}

/// True for the files whose name is never given other bytes: segments,
/// init segments and keys (named by generation), caption segments (by
/// version). Playlists, posters, storyboards and downloads keep their
/// names when a video is processed again.
fn never_rewritten(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let caption = rel.starts_with("cc-") && name.ends_with(".vtt");
    let init = name.ends_with(".mp4") && name != crate::storage::names::DOWNLOAD;
    name.ends_with(".ts") || name.ends_with(".m4s") || name.ends_with(".key") || init || caption
}

/// [`load`] from a bucket. Other nodes write it, and the file cache's
/// counters only see this node's writes: only files whose name never gets
/// other bytes are cached; the rest is read on every request.
async fn load_object(state: &AppState, id: VideoId, rel: &str) -> Result<Loaded, Error> {
    let store = state.catalog.store().clone();
    let cached = never_rewritten(rel);
    let path = store.path(id, rel);
    if let Some(f) = cached.then(|| state.cache.get(&path, 0)).flatten() {
        return Ok(Loaded::Whole(f));
    }
    let (max, rel) = (state.cache.max_file, rel.to_owned());
    let loaded = tokio::task::spawn_blocking(move || -> std::io::Result<Loaded> {
        let (len, modified) = store.stat(id, &rel)?.ok_or(std::io::ErrorKind::NotFound)?;
        if len as usize > max {
            return Ok(Loaded::Remote {
                store,
                id,
                rel,
                len,
                modified,
            });
        }
        let bytes = store.read(id, &rel)?;
        Ok(Loaded::Whole(Arc::new(CachedFile::new(
            Bytes::from(bytes),
            modified,
        ))))
    })
    .await?
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound,
        // A bucket that fails is not a missing file (503, not 404).
        _ => Error::from(e),
    })?;
    if let (true, Loaded::Whole(f)) = (cached, &loaded) {
        state.cache.put(path, 0, f.clone());
    }
    Ok(loaded)
}

/// `count` bytes of an object from `start`, read a chunk at a time as the
/// client takes them.
fn object_body(
    store: crate::storage::Store,
    id: VideoId,
    rel: String,
    start: u64,
    count: u64,
) -> Body {
    let end = start + count;
    let chunks = futures_util::stream::try_unfold(start, move |at| {
        let (store, rel) = (store.clone(), rel.clone());
        async move {
            if at >= end {
                return Ok(None);
            }
            let n = (end - at).min(2 * STREAM_CHUNK as u64);
            let bytes = tokio::task::spawn_blocking(move || store.read_range(id, &rel, at, n))
                .await
                .map_err(std::io::Error::other)??;
            if bytes.is_empty() {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let next = at + bytes.len() as u64;
            Ok(Some((Frame::data(Bytes::from(bytes)), next)))
        }
    });
    StreamBody::new(chunks).boxed_unsync()
}

/// Opens, stats and (up to `max` bytes) reads a file.
fn read(path: &std::path::Path, max: usize) -> std::io::Result<Loaded> {
    let mut file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    let (len, modified) = (meta.len(), meta.modified()?);
    if len as usize > max {
        return Ok(Loaded::Large {
            file,
            len,
            modified,
        });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.read_to_end(&mut bytes)?;
    Ok(Loaded::Whole(Arc::new(CachedFile::new(
        Bytes::from(bytes),
        modified,
    ))))
}

/// Which copy of the file a client holds that is still current.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Current {
    /// The file as it is (or a date, or `*`).
    Plain,
    /// Its gzipped representation (a playlist's `…-gz` ETag).
    Gzipped,
}

/// The client's current copy, if any (RFC 9110 §13.1.2, §13.1.3):
/// `If-None-Match` decides when present, else `If-Modified-Since`. `gz`:
/// the gzipped representation's ETag, for the kinds that have one.
fn not_modified(
    req: &HeaderMap,
    etag: &str,
    gz: Option<&str>,
    modified: SystemTime,
) -> Option<Current> {
    if let Some(inm) = req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        let tags = || inm.split(',').map(|t| t.trim().trim_start_matches("W/"));
        if gz.is_some_and(|gz| tags().any(|t| t == gz)) {
            return Some(Current::Gzipped);
        }
        return tags()
            .any(|t| t == "*" || t == etag)
            .then_some(Current::Plain);
    }
    let since = req
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    since
        .is_some_and(|since| modified <= since + std::time::Duration::from_millis(999))
        .then_some(Current::Plain)
}

/// The ETag of the gzipped representation (RFC 9110 §8.8.3: a strong
/// validator differs between content codings), as Apache does it.
fn gzip_etag(etag: &str) -> String {
    format!("{}-gz\"", etag.trim_end_matches('"'))
}

/// True when a `Range` may be honoured: no `If-Range`, or one naming the
/// current representation (strong ETag, or exactly its date).
fn range_applies(req: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    let Some(v) = req.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let v = v.trim();
    if v.starts_with('"') {
        return v == etag;
    }
    httpdate::parse_http_date(v)
        .is_ok_and(|d| httpdate::fmt_http_date(d) == httpdate::fmt_http_date(modified))
}

fn set(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// CORS headers specific to media (the origin itself is set for every
/// answer in `http::common_headers`).
pub(crate) fn expose_headers(headers: &mut HeaderMap) {
    set(
        headers,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified",
    );
}

/// The answer for a loaded file of `kind`, with `cache_control`.
pub(crate) fn respond(
    req: &Parts,
    loaded: Loaded,
    kind: FileKind,
    cache_control: &str,
) -> Result<Response<Body>, Error> {
    let (etag, modified, len) = (loaded.etag(), loaded.modified(), loaded.len());
    let mut res = Response::new(empty());
    {
        let h = res.headers_mut();
        set(h, header::ETAG, &etag);
        set(h, header::LAST_MODIFIED, &httpdate::fmt_http_date(modified));
        set(h, header::CACHE_CONTROL, cache_control);
        expose_headers(h);
    }
    // Only playlists are ever sent gzipped.
    let gz = (kind == FileKind::Playlist).then(|| gzip_etag(&etag));
    if let Some(current) = not_modified(&req.headers, &etag, gz.as_deref(), modified) {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        if let (Current::Gzipped, Some(gz)) = (current, &gz) {
            set(res.headers_mut(), header::ETAG, gz);
        }
        return Ok(res);
    }
    let range = if range_applies(&req.headers, &etag, modified) {
        let value = req.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
        parse_range(value, len)?
    } else {
        None
    };
    let head = req.method == Method::HEAD;
    let h = res.headers_mut();
    set(h, header::CONTENT_TYPE, kind.content_type());
    set(h, header::ACCEPT_RANGES, "bytes");
    if let Some(r) = range {
        *res.status_mut() = StatusCode::PARTIAL_CONTENT;
        let h = res.headers_mut();
        set(
            h,
            header::CONTENT_RANGE,
            &format!("bytes {}-{}/{len}", r.start, r.end),
        );
    }
    let (start, count) = range.map_or((0, len), |r| (r.start, r.end - r.start + 1));
    let gzip = range.is_none() && kind == FileKind::Playlist && encoding::accepts_gzip(req);
    let (body, sent) = body_of(loaded, start, count, gzip, head)?;
    if kind == FileKind::Playlist {
        encoding::mark(&mut res, sent.1);
    }
    if let (true, Some(gz)) = (sent.1, &gz) {
        set(res.headers_mut(), header::ETAG, gz);
    }
    set(
        res.headers_mut(),
        header::CONTENT_LENGTH,
        &sent.0.to_string(),
    );
    *res.body_mut() = body;
    Ok(res)
}

/// The body for `count` bytes from `start`, gzipped when asked and worth
/// it; returns it with (length sent, gzipped).
fn body_of(
    loaded: Loaded,
    start: u64,
    count: u64,
    gzip: bool,
    head: bool,
) -> Result<(Body, (u64, bool)), Error> {
    match loaded {
        Loaded::Whole(f) => {
            let whole = start == 0 && count == f.bytes.len() as u64;
            let zipped = if gzip && whole && f.bytes.len() >= encoding::MIN_GZIP {
                f.gzip.get_or_init(|| encoding::gzip(&f.bytes)).clone()
            } else {
                None
            };
            let (bytes, gz) = match zipped {
                Some(z) => (z, true),
                None => (
                    f.bytes.slice(start as usize..(start + count) as usize),
                    false,
                ),
            };
            let n = bytes.len() as u64;
            Ok((if head { empty() } else { full(bytes) }, (n, gz)))
        }
        Loaded::Large { mut file, .. } => {
            if head || count == 0 {
                return Ok((empty(), (count, false)));
            }
            file.seek(SeekFrom::Start(start))?;
            let file = tokio::io::AsyncReadExt::take(tokio::fs::File::from_std(file), count);
            let stream =
                tokio_util::io::ReaderStream::with_capacity(file, STREAM_CHUNK).map_ok(Frame::data);
            Ok((StreamBody::new(stream).boxed_unsync(), (count, false)))
        }
        Loaded::Remote { store, id, rel, .. } => {
            if head || count == 0 {
                return Ok((empty(), (count, false)));
            }
            Ok((object_body(store, id, rel, start, count), (count, false)))
        }
    }
}

/// When a loaded file was last modified.
pub(crate) fn modified(loaded: &Loaded) -> SystemTime {
    loaded.modified()
}

/// The whole text of a small file (a playlist to rewrite).
pub(crate) fn text_of(loaded: &Loaded) -> Option<String> {
    match loaded {
        Loaded::Whole(f) => Some(String::from_utf8_lossy(&f.bytes).into_owned()),
        Loaded::Large { .. } | Loaded::Remote { .. } => None,
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn validators_decide_304_and_if_range() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(t);
        let tag = "\"a-1\"";
        let gz = Some("\"a-1-gz\"");
        let current = |h: &[(&str, &str)]| not_modified(&headers(h), tag, gz, t);
        assert_eq!(
            current(&[("if-none-match", "\"x\", \"a-1\"")]),
            Some(Current::Plain)
        );
        assert_eq!(current(&[("if-none-match", "\"b-2\"")]), None);
        assert_eq!(
            current(&[("if-none-match", "W/\"a-1-gz\"")]),
            Some(Current::Gzipped)
        );
        // A kind that is never gzipped has no gz validator.
        assert_eq!(
            not_modified(&headers(&[("if-none-match", "\"a-1-gz\"")]), tag, None, t),
            None
        );
        assert_eq!(
            current(&[("if-modified-since", &date)]),
            Some(Current::Plain)
        );
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            current(&[("if-none-match", "\"b\""), ("if-modified-since", &date)]),
            None
        );
        assert!(range_applies(&headers(&[]), tag, t));
        assert!(range_applies(&headers(&[("if-range", tag)]), tag, t));
        assert!(!range_applies(&headers(&[("if-range", "\"old\"")]), tag, t));
        assert!(range_applies(&headers(&[("if-range", &date)]), tag, t));
    }

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

#[cfg(test)]
mod object_cache_tests {
    #[test]
    fn only_names_that_never_change_bytes_are_cached_from_a_bucket() {
        for rel in [
            "720p/g1_seg_00003.ts",
            "720p/seg_00000.m4s",
            "720p/g2_init.mp4",
            "keys/key0_00001.key",
            "cc-fr/v2_00001.vtt",
        ] {
            assert!(super::never_rewritten(rel), "{rel}");
        }
        for rel in [
            "video.m3u8",
            "720p/video.m3u8",
            "poster.jpg",
            "storyboard.vtt",
            "storyboard_0.jpg",
            "download.mp4",
            "cc-fr/v2.m3u8",
        ] {
            assert!(!super::never_rewritten(rel), "{rel}");
        }
    }
}
