//! Records in a store several nodes share (an S3 bucket).
//!
//! Every write of a `meta.json` is conditional on the version this node
//! last saw (`If-Match`, or `If-None-Match: *` for a new record). When
//! another node wrote in between, the record is read again and the change
//! re-applied to it, so no node's change is lost (a title set through one
//! node while another's job writes its progress). A node's active records
//! carry its name and a lease it renews with every write; records of other
//! nodes are read through with a short time to live.

use super::{lock, Catalog, Record};
use crate::storage::{names, Store, VideoId};
use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a record read from the bucket is served before it is read
/// again (a record this node is working on is never re-read: it writes it).
const RECORD_TTL: Duration = Duration::from_secs(1);

/// Conditional writes lost to other nodes before an update gives up.
const MAX_CONFLICTS: usize = 8;

/// This node's part in a shared store.
#[derive(Debug)]
pub(super) struct Shared {
    pub node: String,
    lease: Duration,
    /// The version of each record as this node last read or wrote it.
    tags: Mutex<HashMap<VideoId, Option<String>>>,
    /// When each record was last read from the bucket.
    fetched: Mutex<HashMap<VideoId, Instant>>,
}

impl Shared {
    pub fn new(node: String, lease: Duration) -> Shared {
        Shared {
            node,
            lease,
            tags: Mutex::new(HashMap::new()),
            fetched: Mutex::new(HashMap::new()),
        }
    }

    pub fn lease_ms(&self) -> u64 {
        self.lease.as_millis() as u64
    }

    pub fn tagged(&self, id: VideoId, tag: Option<String>) {
        lock(&self.tags).insert(id, tag);
    }

    /// Writes a record over the version last seen (`AlreadyExists` when
    /// another node wrote first).
    pub fn write(&self, store: &Store, id: VideoId, json: &[u8]) -> io::Result<()> {
        let seen = lock(&self.tags).get(&id).cloned().flatten();
        let tag = store.write_if(id, names::META_FILE, json, seen.as_deref())?;
        self.tagged(id, tag);
        Ok(())
    }

    /// True when `rec` is an upload or job of this node.
    fn owns(&self, rec: &Record) -> bool {
        rec.status.is_active() && rec.node.as_deref() == Some(self.node.as_str())
    }
}

impl Catalog {
    /// This node's name, when the store is shared.
    pub fn node(&self) -> Option<&str> {
        self.shared.as_ref().map(|s| s.node.as_str())
    }

    /// How long a node's claim on its records lasts, when the store is
    /// shared.
    pub fn lease(&self) -> Option<Duration> {
        self.shared.as_ref().map(|s| s.lease)
    }

    /// True when another node is working on `rec` and still holds it (its
    /// lease, and the grace for clock skew, not run out).
    pub fn held_elsewhere(&self, rec: &Record) -> bool {
        let Some(s) = &self.shared else {
            return false;
        };
        let grace = s.lease_ms() / 2;
        rec.status.is_active()
            && rec.node.as_deref() != Some(s.node.as_str())
            && rec.lease_until_ms + grace >= self.clock.unix_ms()
    }

    /// Records of other nodes whose claim ran out `grace` ago or more.
    pub fn orphans(&self, grace: Duration) -> Vec<Record> {
        let Some(s) = &self.shared else {
            return Vec::new();
        };
        let before = self
            .clock
            .unix_ms()
            .saturating_sub(grace.as_millis() as u64);
        lock(&self.records)
            .values()
            .filter(|r| r.status.is_active() && r.node.as_deref() != Some(s.node.as_str()))
            .filter(|r| r.lease_until_ms < before)
            .cloned()
            .collect()
    }

    /// True when `rec` is an upload or job of this node (always, with a
    /// store of its own).
    pub fn owns(&self, rec: &Record) -> bool {
        self.shared.as_ref().is_none_or(|s| s.owns(rec))
    }

    /// [`Catalog::update`] of a persisted change in a shared store: the
    /// change applied to the version last seen and written conditionally;
    /// on a conflict, applied again to the record as it now is. A record
    /// another node has taken over is not changed (returned as it is).
    pub(super) fn update_shared(
        &self,
        id: VideoId,
        f: impl Fn(&mut Record),
    ) -> io::Result<Option<Record>> {
        let Some(s) = &self.shared else {
            return Ok(None);
        };
        let _w = lock(&self.persist);
        let Some(mut base) = self.get(id) else {
            return Ok(None);
        };
        let mine = s.owns(&base);
        for _ in 0..MAX_CONFLICTS {
            if mine && !s.owns(&base) && base.node.as_deref() != Some(s.node.as_str()) {
                return Ok(Some(base));
            }
            let copy = self.changed_copy(s, &base, &f);
            let json = serde_json::to_vec_pretty(&copy).map_err(io::Error::other)?;
            match s.write(&self.store, id, &json) {
                Ok(()) => {
                    lock(&self.records).insert(id, copy.clone());
                    self.notify();
                    return Ok(Some(copy));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match self.fetch(id)? {
                    Some(fresh) => base = fresh,
                    None => return Ok(None),
                },
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(
            "the record keeps changing under this node",
        ))
    }

    /// `base` changed by `f` (unless it is being deleted), stamped, its
    /// lease renewed while it is this node's; observers told of a new status.
    fn changed_copy(&self, s: &Shared, base: &Record, f: &impl Fn(&mut Record)) -> Record {
        let mut copy = base.clone();
        if copy.status != super::Status::Deleting {
            f(&mut copy);
            copy.updated_at = self.clock.unix();
        }
        copy.lease_until_ms = match s.owns(&copy) {
            true => self.clock.unix_ms() + s.lease_ms(),
            false if copy.status.is_active() => copy.lease_until_ms,
            false => 0,
        };
        if copy.status != base.status {
            if let Some(o) = self.observer.get() {
                o.status_changed(&copy);
            }
        }
        copy
    }

    /// Reads a record from the store into memory (`None`: it is gone, and
    /// forgotten here too).
    fn fetch(&self, id: VideoId) -> io::Result<Option<Record>> {
        let read = self.store.read_tagged(id, names::META_FILE);
        if let Some(s) = &self.shared {
            lock(&s.fetched).insert(id, Instant::now());
        }
        let (bytes, tag) = match read {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.forget_shared(id);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let rec: Record = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
        if rec.id != id {
            return Err(io::Error::other("a record names another video"));
        }
        if let Some(s) = &self.shared {
            s.tagged(id, tag);
        }
        lock(&self.records).insert(id, rec.clone());
        self.notify();
        Ok(Some(rec))
    }

    fn forget_shared(&self, id: VideoId) {
        if let Some(s) = &self.shared {
            lock(&s.tags).remove(&id);
        }
        if lock(&self.records).remove(&id).is_some() {
            self.notify();
        }
    }

    /// Brings video `id`'s record up to date with the store when another
    /// node may have changed it (blocking; at most one read per second per
    /// record). Nothing to do with a store of its own.
    pub fn refresh(&self, id: VideoId) {
        let Some(s) = &self.shared else {
            return;
        };
        if self.peek(id, |r| s.owns(r)) == Some(true) {
            return;
        }
        let recent = lock(&s.fetched)
            .get(&id)
            .is_some_and(|t| t.elapsed() < RECORD_TTL);
        if !recent {
            if let Err(e) = self.fetch(id) {
                tracing::warn!(id = %id, error = %e, "cannot read a record from the store");
            }
        }
    }

    /// Brings every record up to date with the store (videos other nodes
    /// added or removed included), for the library's listing. Blocking.
    pub fn refresh_all(&self) {
        let Some(s) = &self.shared else {
            return;
        };
        let Ok(ids) = self.store.list() else {
            return;
        };
        let listed: std::collections::HashSet<VideoId> = ids.iter().copied().collect();
        for id in ids {
            self.refresh(id);
        }
        let gone: Vec<VideoId> = lock(&self.records)
            .values()
            .filter(|r| !listed.contains(&r.id) && !s.owns(r))
            .map(|r| r.id)
            .collect();
        for id in gone {
            self.forget_shared(id);
        }
    }
}
