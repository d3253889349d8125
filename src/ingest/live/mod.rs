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

use crate::catalog::{Lifecycle, Status};
use crate::jobs::Jobs;
use crate::storage::{Quota, VideoId};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Failed keys a client may send within [`FAILURE_WINDOW`]; then its
/// connections are closed before the handshake until the window ends.
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(600);
/// Clients whose failures are remembered (the oldest are forgotten).
const MAX_TRACKED: usize = 4096;

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
    publishing: Mutex<HashSet<VideoId>>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
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
            publishing: Mutex::new(HashSet::new()),
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
        lock(&self.publishing).contains(&id)
    }

    /// Broadcasts arriving now.
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

    /// The live `key` opens, claimed for its publisher from `ip`.
    pub(crate) fn claim(self: &Arc<Self>, key: &str, ip: IpAddr) -> Result<Claim, Refusal> {
        let Some(id) = self.find(key) else {
            self.failed(ip);
            return Err(Refusal::BadKey);
        };
        let mut p = lock(&self.publishing);
        if p.contains(&id) {
            return Err(Refusal::Taken);
        }
        if p.len() >= self.env.max_lives {
            return Err(Refusal::Full);
        }
        p.insert(id);
        Ok(Claim {
            lives: self.clone(),
            id,
        })
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
