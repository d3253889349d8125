//! The live edge of a low-latency (LL-HLS) rung, shared by the job that
//! moves it and the requests that wait on it: the position of its
//! playlist's last part, and the parts themselves while they are fresh
//! (served from memory: a viewer at the edge never waits on the disk).
//!
//! A rung's job opens its edge ([`open`]); requests find it by video and
//! rung ([`find`]). Blocking playlist reloads (`_HLS_msn`, `_HLS_part`,
//! RFC 8216bis §6.2.5.2) and requests for the preload-hinted part wait on
//! [`Edge::wait`], a bounded wait, and at most [`MAX_WAITING`] requests of
//! the whole server wait at once (others get `503`).

use crate::storage::VideoId;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Requests waiting on some edge at once, at most (server-wide).
pub(crate) const MAX_WAITING: u64 = 4096;
/// Fresh parts kept in memory per rung (a few segments' worth).
const FRESH_PARTS: usize = 32;

/// Open edges by (video, rung).
type Edges = HashMap<(VideoId, String), Arc<Edge>>;

static EDGES: LazyLock<Mutex<Edges>> = LazyLock::new(Default::default);
/// Edges open now: with none (no low-latency live running), [`find`] is an
/// atomic load on the play route, no lock and no key.
static OPEN: AtomicU64 = AtomicU64::new(0);
/// Requests waiting now; waits begun (for `/metrics`).
static WAITING: AtomicU64 = AtomicU64::new(0);
static WAITS: AtomicU64 = AtomicU64::new(0);

/// (requests waiting now, waits begun) over every edge.
pub fn stats() -> (u64, u64) {
    (
        WAITING.load(Ordering::Relaxed),
        WAITS.load(Ordering::Relaxed),
    )
}

/// Where a rung's public playlist ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Position {
    /// Media sequence number of the segment being made (its parts are the
    /// last ones listed); every segment before it is whole.
    pub open_msn: u64,
    /// Parts of that segment listed so far.
    pub parts: u64,
    /// Parts of the segment before it (rendition reports).
    pub prev_parts: u64,
    /// The preload hint's URI (the next part's name).
    pub hint: String,
    /// The broadcast is over: nothing more will come.
    pub ended: bool,
}

impl Position {
    /// True once a playlist at this position holds part `part` of segment
    /// `msn` (the whole segment when `part` is `None`), or never will.
    pub(crate) fn reached(&self, msn: u64, part: Option<u64>) -> bool {
        self.ended
            || self.open_msn > msn
            || (self.open_msn == msn && part.is_some_and(|p| self.parts > p))
    }
}

/// One rung's edge.
pub(crate) struct Edge {
    position: watch::Sender<Position>,
    fresh: Mutex<VecDeque<(String, Bytes)>>,
    /// Seconds a blocked request waits at most (3 target durations).
    patience: Duration,
}

impl Edge {
    /// Where the published playlist ends now.
    pub(crate) fn position(&self) -> Position {
        self.position.borrow().clone()
    }

    /// A fresh part's bytes, if it is still held.
    pub(crate) fn part(&self, name: &str) -> Option<Bytes> {
        let fresh = lock(&self.fresh);
        fresh
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
    }

    /// Holds a part (before any playlist lists it).
    pub(crate) fn add_part(&self, name: String, bytes: Bytes) {
        let mut fresh = lock(&self.fresh);
        if fresh.len() == FRESH_PARTS {
            fresh.pop_front();
        }
        fresh.push_back((name, bytes));
    }

    /// Moves the edge (after the playlist at `to` is written).
    pub(crate) fn moved(&self, to: Position) {
        self.position.send_replace(to);
    }

    /// Waits until `done` holds of the position, at most the edge's
    /// patience; false when it did not (or too many wait already).
    pub(crate) async fn wait(&self, done: impl Fn(&Position) -> bool) -> Result<bool, Busy> {
        if WAITING.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            WAITING.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        WAITS.fetch_add(1, Ordering::Relaxed);
        let mut rx = self.position.subscribe();
        let waited = tokio::time::timeout(self.patience, rx.wait_for(|p| done(p))).await;
        WAITING.fetch_sub(1, Ordering::SeqCst);
        Ok(matches!(waited, Ok(Ok(_))))
    }
}

/// Too many requests wait on edges already.
#[derive(Debug)]
pub(crate) struct Busy;

/// A job's hold on its rung's edge: found by requests while it lives;
/// dropping it ends the edge (waiters wake) and forgets it.
pub(crate) struct EdgeGuard {
    key: (VideoId, String),
    edge: Arc<Edge>,
}

impl EdgeGuard {
    pub(crate) fn edge(&self) -> &Arc<Edge> {
        &self.edge
    }

    /// (video, rung) of the edge.
    pub(crate) fn key(&self) -> (VideoId, &str) {
        (self.key.0, &self.key.1)
    }
}

impl Drop for EdgeGuard {
    fn drop(&mut self) {
        self.edge.position.send_modify(|p| p.ended = true);
        let mut edges = lock(&EDGES);
        if edges
            .get(&self.key)
            .is_some_and(|e| Arc::ptr_eq(e, &self.edge))
        {
            edges.remove(&self.key);
        }
        OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Opens the edge of video `id`'s rung `rung` (`""` for one rendition);
/// a blocked request waits at most `patience`.
pub(crate) fn open(id: VideoId, rung: &str, patience: Duration) -> EdgeGuard {
    let edge = Arc::new(Edge {
        position: watch::Sender::new(Position::default()),
        fresh: Mutex::new(VecDeque::new()),
        patience,
    });
    let key = (id, rung.to_owned());
    OPEN.fetch_add(1, Ordering::SeqCst);
    lock(&EDGES).insert(key.clone(), edge.clone());
    EdgeGuard { key, edge }
}

/// An edge no job opens and [`find`] does not know: another node's live
/// followed through the bucket (see `http::lowmirror`).
pub(crate) fn detached(patience: Duration, at: Position) -> Arc<Edge> {
    Arc::new(Edge {
        position: watch::Sender::new(at),
        fresh: Mutex::new(VecDeque::new()),
        patience,
    })
}

/// The open edge of video `id`'s rung, if its job has one.
pub(crate) fn find(id: VideoId, rung: &str) -> Option<Arc<Edge>> {
    if OPEN.load(Ordering::SeqCst) == 0 {
        return None;
    }
    lock(&EDGES).get(&(id, rung.to_owned())).cloned()
}

/// Every open edge of video `id` but `rung`'s: (rung, position), for the
/// rendition reports.
pub(crate) fn siblings(id: VideoId, rung: &str) -> Vec<(String, Position)> {
    let mut v: Vec<_> = lock(&EDGES)
        .iter()
        .filter(|((vid, r), _)| *vid == id && r != rung)
        .map(|((_, r), e)| (r.clone(), e.position()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_reached_by_later_parts_and_segments() {
        let p = Position {
            open_msn: 5,
            parts: 2,
            ..Position::default()
        };
        assert!(p.reached(4, None) && p.reached(4, Some(9)));
        assert!(p.reached(5, Some(1)) && !p.reached(5, Some(2)));
        assert!(!p.reached(5, None) && !p.reached(6, Some(0)));
        let ended = Position {
            ended: true,
            ..p.clone()
        };
        assert!(ended.reached(100, None));
    }

    #[tokio::test]
    async fn waiters_wake_when_the_edge_moves_or_ends() {
        let id = VideoId::random();
        let guard = open(id, "720p", Duration::from_secs(60));
        let edge = find(id, "720p").unwrap();
        edge.add_part("p0.ts".into(), Bytes::from_static(b"x"));
        assert_eq!(edge.part("p0.ts").as_deref(), Some(&b"x"[..]));
        let e2 = edge.clone();
        let waiter = tokio::spawn(async move { e2.wait(|p| p.reached(0, Some(0))).await });
        guard.edge().moved(Position {
            parts: 1,
            ..Position::default()
        });
        assert!(waiter.await.unwrap().unwrap());
        let e3 = edge.clone();
        let waiter = tokio::spawn(async move { e3.wait(|p| p.reached(9, None)).await });
        drop(guard);
        assert!(waiter.await.unwrap().unwrap());
        assert!(find(id, "720p").is_none());
        assert_eq!(siblings(id, ""), vec![]);
    }

    #[tokio::test]
    async fn a_wait_gives_up_after_its_patience() {
        let guard = open(VideoId::random(), "", Duration::from_millis(1));
        assert!(!guard.edge().wait(|p| p.open_msn > 0).await.unwrap());
    }
}
