//! The image API (issue 29, item 2), in Mux's shape so front-end code
//! written for it fits: `GET /play/{id}/thumbnail.{jpg,webp,png}?time=
//! &width=&height=&fit_mode=preserve|crop|pad|stretch` (without `time`:
//! the poster) and `GET /play/{id}/animated.{gif,webp}?start=&end=&width=
//! &fps=` (at most 10 s, 640 px, 30 fps). Each is decoded in-process from
//! the segments of the smallest rendition that is large enough
//! (`media::still`), on the blocking pool, at most [`JOBS`] at once with
//! at most [`WAITING`] more queued (`503 busy` with `Retry-After`
//! beyond). Identical requests share one job; results are kept in a
//! bounded cache (a quarter of `--cache-bytes`, [`CACHE_SHARE`]), keyed by the video's generation, so a
//! URL always answers the same bytes (strong `ETag`, long caching).
//! Signed like segments; a clip's token covers its range only.

use super::files::{self, Loaded};
use super::{AppState, Body};
use crate::auth::ClipClaim;
use crate::catalog::Record;
use crate::media::still::{self, Fit, FitMode, Format};
use crate::storage::names::{self, FileKind};
use crate::storage::VideoId;
use crate::Error;
use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Response};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Image jobs at once (each decodes one segment or up to 10 s of one
/// rendition), and requests that may wait for one.
pub(crate) const JOBS: usize = 2;
pub(crate) const WAITING: usize = 16;
/// The share of `--cache-bytes` finished images may keep (a quarter).
pub(crate) const CACHE_SHARE: usize = 4;
pub(crate) const MAX_SIDE: u32 = 1920;
pub(crate) const MAX_ANIMATED_WIDTH: u32 = 640;
pub(crate) const MAX_ANIMATED_SECS: f64 = 10.0;
pub(crate) const MAX_FPS: u32 = 30;
/// A URL always gives the same bytes (the cache key has the generation).
const CACHE_CONTROL: &str = "public, max-age=31536000";

mod asked;

pub(crate) use asked::{kind_of, Kind};
use asked::{parse, Asked};

/// The image jobs, what they made, and who waits.
pub(crate) struct Images {
    /// Bytes of finished images kept at most.
    budget: usize,
    cache: Mutex<Cache>,
    running: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Bytes>>>>,
    jobs: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
}

#[derive(Default)]
struct Cache {
    map: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
}

impl std::fmt::Debug for Images {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = lock(&self.cache);
        write!(f, "Images {{ cached: {} bytes }}", c.bytes)
    }
}

impl Images {
    /// The image jobs of a server whose `--cache-bytes` is `cache_bytes`
    /// (images keep [`CACHE_SHARE`]'s part of it).
    pub(crate) fn new(cache_bytes: usize) -> Self {
        Images {
            budget: cache_bytes / CACHE_SHARE,
            cache: Mutex::default(),
            running: Mutex::default(),
            jobs: Arc::new(tokio::sync::Semaphore::new(JOBS)),
            waiting: AtomicUsize::new(0),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Images {
    fn cached(&self, key: &str) -> Option<Bytes> {
        lock(&self.cache).map.get(key).cloned()
    }

    fn keep(&self, key: &str, bytes: &Bytes) {
        let mut c = lock(&self.cache);
        if bytes.len() > self.budget / 4 || c.map.contains_key(key) {
            return;
        }
        c.bytes += bytes.len();
        c.map.insert(key.to_owned(), bytes.clone());
        c.order.push_back(key.to_owned());
        while c.bytes > self.budget {
            let Some(old) = c.order.pop_front() else {
                break;
            };
            if let Some(b) = c.map.remove(&old) {
                c.bytes -= b.len();
            }
        }
    }

    /// The image for `key`: cached, being made by another request, or made
    /// here (within the job and queue bounds).
    async fn get_or_make<F, M>(&self, key: &str, make: M) -> Result<Bytes, Error>
    where
        M: FnOnce(Permit) -> F,
        F: std::future::Future<Output = Result<Bytes, Error>>,
    {
        if let Some(b) = self.cached(key) {
            return Ok(b);
        }
        let cell = lock(&self.running)
            .entry(key.to_owned())
            .or_default()
            .clone();
        let made = cell
            .get_or_try_init(|| async {
                let permit = self.place().await?;
                make(permit).await
            })
            .await
            .cloned();
        lock(&self.running).remove(key);
        if let Ok(b) = &made {
            self.keep(key, b);
        }
        made
    }

    /// A job place, once one is free; `Busy` when too many wait already.
    async fn place(&self) -> Result<Permit, Error> {
        if let Ok(p) = self.jobs.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Busy);
        }
        // Counted out however the wait ends (a client that leaves drops it).
        let _waiting = Waiting(&self.waiting);
        self.jobs
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Busy)
    }
}

/// A job place, held by the blocking work itself: a client that leaves
/// does not free it before the work ends.
type Permit = tokio::sync::OwnedSemaphorePermit;

/// One request waiting for a job place, counted until it stops waiting.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `GET /play/{id}/thumbnail.*` and `/play/{id}/animated.*`.
pub(crate) async fn get(
    state: &AppState,
    req: &Parts,
    id: VideoId,
    kind: Kind,
    claim: Option<ClipClaim>,
) -> Result<Response<Body>, Error> {
    let asked = parse(kind, req.uri.query())?;
    // A cache hit reads two fields of the record, not a copy of it.
    let (generation, updated_at) = state
        .catalog
        .peek(id, |r| {
            (r.status != crate::catalog::Status::Deleting).then_some((r.generation, r.updated_at))
        })
        .flatten()
        .ok_or(Error::NotFound)?;
    if let Some(c) = claim {
        let (from, to) = asked.span().ok_or(Error::OutsideClip)?;
        let end = c.end_ms.map_or(f64::MAX, |e| e as f64 / 1000.0);
        if from < c.start_ms as f64 / 1000.0 || to > end {
            return Err(Error::OutsideClip);
        }
    }
    let key = format!("{id}/{generation}/{}", asked.key());
    let bytes = state
        .images
        .get_or_make(&key, |permit| make(state, id, asked.clone(), permit))
        .await?;
    respond(req, bytes, asked.format(), updated_at)
}

/// The rendition whose playlist images are made from: the smallest H.264
/// one that fills `need`, else the largest.
fn rendition(rec: &Record, (w, h): (u32, u32)) -> Result<String, Error> {
    let h264 = |r: &&crate::catalog::Rendition| !matches!(r.codec.as_str(), "av1" | "hevc");
    let mut r: Vec<_> = rec.renditions.iter().filter(h264).collect();
    r.sort_by_key(|r| r.height);
    // No size asked: the full-size frame.
    let fills = |r: &&&crate::catalog::Rendition| (w, h) != (0, 0) && r.width >= w && r.height >= h;
    r.iter()
        .find(fills)
        .or(r.last())
        .map(|r| r.playlist.clone())
        .ok_or(Error::NotReady)
}

async fn make(state: &AppState, id: VideoId, asked: Asked, permit: Permit) -> Result<Bytes, Error> {
    let store = state.catalog.store().clone();
    let playlist = match asked.span() {
        Some(_) => {
            let chosen = state.catalog.peek(id, |r| rendition(r, asked.needs()));
            Some(chosen.ok_or(Error::NotFound)??)
        }
        None => None,
    };
    let made = tokio::task::spawn_blocking(move || {
        let _held = permit;
        image(&store, id, asked, playlist)
    })
    .await?;
    made.map(Bytes::from).map_err(|e| match e {
        Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => Error::NotReady,
        e => e,
    })
}

/// The image `asked`, made from rendition `playlist` (or the poster).
fn image(
    store: &crate::storage::Store,
    id: VideoId,
    asked: Asked,
    playlist: Option<String>,
) -> Result<Vec<u8>, Error> {
    match (asked, playlist) {
        (Asked::Still { fit, format, .. }, None) => {
            still::reencode(store.read(id, names::POSTER)?, &fit, format)
        }
        (Asked::Still { time, fit, format }, Some(p)) => {
            let t = time.unwrap_or(0.0);
            still::thumbnail(still::pieces(store, id, &p, (t, t))?, t, &fit, format)
        }
        (
            Asked::Animated {
                range,
                width,
                fps,
                format,
            },
            Some(p),
        ) => {
            let fit = Fit {
                width: Some(width),
                height: None,
                mode: FitMode::Preserve,
            };
            let anim = still::Animation::new(fit, fps, format);
            still::animated(still::pieces(store, id, &p, range)?, range, anim, fps)
        }
        (Asked::Animated { .. }, None) => Err(Error::NotFound),
    }
}

/// The image, with a validator of its bytes.
fn respond(
    req: &Parts,
    bytes: Bytes,
    format: Format,
    updated_at: u64,
) -> Result<Response<Body>, Error> {
    use sha2::Digest;
    let modified = std::time::UNIX_EPOCH + std::time::Duration::from_secs(updated_at);
    let mut file = super::cache::CachedFile::new(bytes, modified);
    file.etag = format!(
        "\"{}\"",
        &hex::encode(sha2::Sha256::digest(&file.bytes))[..32]
    );
    let mut res = files::respond(
        req,
        Loaded::Whole(Arc::new(file)),
        FileKind::Image,
        CACHE_CONTROL,
    )?;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_that_leaves_frees_its_place() {
        let images = Images::new(1 << 20);
        let held: Vec<_> = (0..JOBS)
            .map(|_| images.jobs.try_acquire().unwrap())
            .collect();
        for _ in 0..3 * WAITING {
            // Each waits, then its client leaves (the future is dropped).
            let wait = images.place();
            let timed = tokio::time::timeout(std::time::Duration::from_millis(1), wait).await;
            assert!(timed.is_err(), "no place was free");
        }
        assert_eq!(images.waiting.load(Ordering::Acquire), 0);
        drop(held);
        assert!(images.place().await.is_ok());
    }
}
