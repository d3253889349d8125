//! Serving a file of a video. A cache hit costs no disk I/O and no
//! blocking-pool hop; a miss costs one hop that opens, stats and, for a
//! file small enough to cache, reads it whole. Larger files stream in
//! 512 KiB reads. Every file carries a strong `ETag` and `Last-Modified`
//! (`If-None-Match` / `If-Modified-Since` → 304, `If-Range` honoured),
//! byte ranges (RFC 9110 §14), and playlists go gzipped when the client
//! takes it (media never).

use super::cache::CachedFile;
use super::conditional::{gzip_etag, not_modified, parse_range, range_applies, Current};
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

/// Bytes made for one answer (a playlist rewritten, trimmed or cut down, a
/// part from memory) as a loaded file last changed at `modified`.
pub(crate) fn made(bytes: impl Into<Bytes>, modified: SystemTime) -> Loaded {
    Loaded::Whole(Arc::new(CachedFile::new(bytes.into(), modified)))
}

/// Loads `rel` of video `id`: from the cache, else in one blocking hop.
/// Missing files, folders and symlinks (never followed) are 404.
pub(crate) async fn load(state: &AppState, id: VideoId, rel: &str) -> Result<Loaded, Error> {
    let store = state.catalog.store();
    if store.traits().remote {
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
    let loaded = read_object(store, id, rel, state.cache.max_file)
        .await
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

/// Stats an object and (up to `max` bytes) reads it.
async fn read_object(
    store: crate::storage::Store,
    id: VideoId,
    rel: &str,
    max: usize,
) -> std::io::Result<Loaded> {
    let stat = store.stat_async(id, rel).await?;
    let (len, modified) = stat.ok_or(std::io::ErrorKind::NotFound)?;
    if len as usize > max {
        let rel = rel.to_owned();
        return Ok(Loaded::Remote {
            store,
            id,
            rel,
            len,
            modified,
        });
    }
    let bytes = store.read_async(id, rel).await?;
    let file = CachedFile::new(Bytes::from(bytes), modified);
    Ok(Loaded::Whole(Arc::new(file)))
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
            let bytes = store.read_range_async(id, &rel, at, n).await?;
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
