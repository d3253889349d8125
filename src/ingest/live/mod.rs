//! Live broadcasts (issue 27). A live is a video that `POST /lives` makes
//! (status `live`, a secret stream key in its record); a publisher that
//! pushes to the key is one more door into the spool: its RTMP messages
//! become an FLV file ([`flv`]) that the video's pipeline demuxes,
//! transcodes and publishes as it arrives, exactly as an upload still
//! arriving (the playlist grows as an `EVENT` playlist). When the
//! publisher stops, the spool is complete and the video ends `ready`, a
//! VOD at the same playback URL.
//!
//! [`Lives`] is the registry the RTMP listener ([`rtmp`]) asks: which
//! live a key opens, whether it is already published (a second publisher
//! is refused), `--max-lives`, and the clients that failed too many keys.

pub(crate) mod broadcast;
mod flv;
pub(crate) mod rtmp;
pub(crate) mod srt;
pub(crate) mod tsconf;
mod window;

use crate::catalog::{Lifecycle, Status};
use crate::jobs::Jobs;
use crate::storage::{Quota, VideoId};
use crate::Error;
use broadcast::Msg;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Failed keys a client may send within [`FAILURE_WINDOW`]; then its
/// connections are closed before the handshake until the window ends.
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(600);
/// Clients whose failures are remembered (the oldest are forgotten).
const MAX_TRACKED: usize = 4096;
/// Messages a publisher's connection may be ahead of its broadcast
/// (then the connection waits: back-pressure to the socket).
const FEED_DEPTH: usize = 512;
/// How often a broadcast awaiting its publisher looks for a deletion.
const PARKED_CHECK: Duration = Duration::from_millis(500);

/// What the lives need from the server.
pub(crate) struct Env {
    pub jobs: Arc<Jobs>,
    pub videos: Arc<Lifecycle>,
    pub quota: Arc<Quota>,
    pub max_upload_bytes: u64,
    /// `--max-lives`.
    pub max_lives: usize,
    /// `--live-max-kbps`.
    pub max_kbps: u64,
    /// `--live-reconnect-secs`: how long a cut broadcast awaits its
    /// publisher before it ends.
    pub reconnect: Duration,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Why a publish is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No live has this key (or it has ended).
    BadKey,
    /// The live is already being published.
    Taken,
    /// `--max-lives` broadcasts are arriving.
    Full,
}

impl Refusal {
    /// What the publisher is told (RTMP `onStatus` description).
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::BadKey => "unknown or ended stream key",
            Refusal::Taken => "this live already has a publisher",
            Refusal::Full => "the server carries as many lives as it may (--max-lives)",
        }
    }
}

/// The lives of this server.
pub(crate) struct Lives {
    pub(crate) env: Env,
    rtmp: OnceLock<SocketAddr>,
    srt: OnceLock<SocketAddr>,
    publishing: Mutex<HashMap<VideoId, Slot>>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// A live's broadcast: arriving, or cut and awaiting its publisher
/// (a new connection's feed goes to it through the sender).
enum Slot {
    Publishing,
    Parked(oneshot::Sender<mpsc::Receiver<Msg>>),
}

/// A publisher let in: where its messages go, and whether its broadcast
/// could begin.
pub(crate) struct Publisher {
    pub feed: mpsc::Sender<Msg>,
    pub begun: oneshot::Receiver<Result<(), Error>>,
}

/// A live being published; its place is given back on drop.
pub(crate) struct Claim {
    lives: Arc<Lives>,
    pub id: VideoId,
}

impl Drop for Claim {
    fn drop(&mut self) {
        lock(&self.lives.publishing).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A new stream key: 32 characters of nanoid's alphabet (190 bits from
/// the OS's randomness), safe in a URL path and an SRT stream id.
pub(crate) fn new_key() -> String {
    nanoid::nanoid!(32)
}

impl Lives {
    pub(crate) fn new(env: Env) -> Arc<Lives> {
        Arc::new(Lives {
            env,
            rtmp: OnceLock::new(),
            srt: OnceLock::new(),
            publishing: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Where the RTMP listener listens (once bound).
    pub(crate) fn set_rtmp_addr(&self, addr: SocketAddr) {
        let _ = self.rtmp.set(addr);
    }

    pub(crate) fn rtmp_addr(&self) -> Option<SocketAddr> {
        self.rtmp.get().copied()
    }

    /// Where the SRT listener listens (once bound).
    pub(crate) fn set_srt_addr(&self, addr: SocketAddr) {
        let _ = self.srt.set(addr);
    }

    pub(crate) fn srt_addr(&self) -> Option<SocketAddr> {
        self.srt.get().copied()
    }

    /// True while a publisher pushes to live `id`.
    pub(crate) fn is_publishing(&self, id: VideoId) -> bool {
        matches!(lock(&self.publishing).get(&id), Some(Slot::Publishing))
    }

    /// Broadcasts arriving now (or awaiting a reconnect).
    pub(crate) fn publishing(&self) -> usize {
        lock(&self.publishing).len()
    }

    /// True when `ip` failed too many keys lately.
    pub(crate) fn limited(&self, ip: IpAddr) -> bool {
        let f = lock(&self.failures);
        f.get(&ip)
            .is_some_and(|(n, since)| *n >= MAX_FAILURES && since.elapsed() < FAILURE_WINDOW)
    }

    fn failed(&self, ip: IpAddr) {
        let mut f = lock(&self.failures);
        if f.len() >= MAX_TRACKED {
            f.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        if f.len() >= MAX_TRACKED && !f.contains_key(&ip) {
            return;
        }
        let e = f.entry(ip).or_insert((0, Instant::now()));
        if e.1.elapsed() >= FAILURE_WINDOW {
            *e = (0, Instant::now());
        }
        e.0 += 1;
    }

    /// Lets in a publisher from `ip` of the live `key` opens: its feed
    /// goes to the broadcast awaiting it after a cut, or to a new one.
    pub(crate) fn publish(self: &Arc<Self>, key: &str, ip: IpAddr) -> Result<Publisher, Refusal> {
        let Some(id) = self.find(key) else {
            self.failed(ip);
            return Err(Refusal::BadKey);
        };
        let (feed, rx) = mpsc::channel(FEED_DEPTH);
        let (done, begun) = oneshot::channel();
        let publisher = Publisher { feed, begun };
        let mut p = lock(&self.publishing);
        match p.remove(&id) {
            Some(Slot::Publishing) => {
                p.insert(id, Slot::Publishing);
                return Err(Refusal::Taken);
            }
            Some(Slot::Parked(resume)) => {
                if resume.send(rx).is_err() {
                    return Err(Refusal::Taken);
                }
                p.insert(id, Slot::Publishing);
                let _ = done.send(Ok(()));
                return Ok(publisher);
            }
            None if p.len() >= self.env.max_lives => return Err(Refusal::Full),
            None => p.insert(id, Slot::Publishing),
        };
        drop(p);
        let claim = Claim {
            lives: self.clone(),
            id,
        };
        tokio::spawn(broadcast::run(self.clone(), claim, rx, done));
        Ok(publisher)
    }

    /// A cut broadcast awaits its publisher for `--live-reconnect-secs`:
    /// the feed of the one that came back, or `None` (the broadcast
    /// ends; `gone` says it was deleted meanwhile).
    pub(crate) async fn park(
        &self,
        id: VideoId,
        gone: impl Fn() -> bool,
    ) -> Option<mpsc::Receiver<Msg>> {
        let wait = self.env.reconnect;
        if wait.is_zero() {
            return None;
        }
        let (resume, mut back) = oneshot::channel();
        lock(&self.publishing).insert(id, Slot::Parked(resume));
        let deadline = tokio::time::Instant::now() + wait;
        let mut tick = tokio::time::interval(PARKED_CHECK);
        loop {
            tokio::select! {
                r = &mut back => return r.ok(),
                _ = tokio::time::sleep_until(deadline) => break,
                _ = tick.tick() => if gone() { break },
            }
        }
        // A publisher may have come back between the deadline and here.
        let mut p = lock(&self.publishing);
        match back.try_recv() {
            Ok(feed) => Some(feed),
            Err(_) => {
                p.insert(id, Slot::Publishing);
                None
            }
        }
    }

    /// The live awaiting or arriving whose key is `key` (compared in
    /// constant time).
    fn find(&self, key: &str) -> Option<VideoId> {
        use subtle::ConstantTimeEq;
        if key.is_empty() {
            return None;
        }
        let catalog = self.env.videos.catalog();
        catalog.ids().into_iter().find(|id| {
            catalog.peek(*id, |r| {
                r.status == Status::Live
                    && r.live
                        .as_ref()
                        .is_some_and(|l| bool::from(l.stream_key.as_bytes().ct_eq(key.as_bytes())))
            }) == Some(true)
        })
    }
}

impl std::fmt::Debug for Lives {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lives")
            .field("rtmp", &self.rtmp.get())
            .field("publishing", &self.publishing())
            .finish_non_exhaustive()
    }
}
