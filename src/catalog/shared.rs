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
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a record read from the bucket is served before it is read
/// again: an active one (its job moves), a finished one (only a title or
/// captions change). A record this node works on is never re-read: it
/// writes it.
const ACTIVE_TTL: Duration = Duration::from_secs(1);
const FINISHED_TTL: Duration = Duration::from_secs(10);

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

    /// Active records whose claim ran out `grace` ago or more and that this
    /// node does not work on (`held`): other nodes' and, after a store
    /// outage, this node's own left behind.
    pub fn orphans(&self, grace: Duration, held: &HashSet<VideoId>) -> Vec<Record> {
        if self.shared.is_none() {
            return Vec::new();
        }
        let before = self
            .clock
            .unix_ms()
            .saturating_sub(grace.as_millis() as u64);
        lock(&self.records)
            .values()
            .filter(|r| r.status.is_active() && !held.contains(&r.id))
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
        let mut told = None;
        for _ in 0..MAX_CONFLICTS {
            let copy = self.changed_copy(s, &base, &f, &mut told);
            let json = serde_json::to_vec_pretty(&copy).map_err(io::Error::other)?;
            match s.write(&self.store, id, &json) {
                Ok(()) => {
                    lock(&self.records).insert(id, copy.clone());
                    self.notify();
                    return Ok(Some(copy));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let Some((fresh, tag)) = self.read_record(id)? else {
                        self.forget_shared(id);
                        return Ok(None);
                    };
                    if mine && fresh.node.as_deref() != Some(s.node.as_str()) {
                        // Taken over: nothing of ours is written, and the
                        // caller (the lease renewer) sees whose it is now.
                        return Ok(Some(fresh));
                    }
                    s.tagged(id, tag);
                    lock(&self.records).insert(id, fresh.clone());
                    base = fresh;
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(
            "the record keeps changing under this node",
        ))
    }

    /// `base` changed by `f` (unless it is being deleted), stamped, its
    /// lease renewed while it is this node's. Observers are told of a new
    /// status once per update (`told`), however many conflicts it meets.
    fn changed_copy(
        &self,
        s: &Shared,
        base: &Record,
        f: &impl Fn(&mut Record),
        told: &mut Option<super::Status>,
    ) -> Record {
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
        if copy.status != base.status && *told != Some(copy.status) {
            *told = Some(copy.status);
            if let Some(o) = self.observer.get() {
                o.status_changed(&copy);
            }
        }
        copy
    }

    /// A record as the store has it now, with its version tag (`None`:
    /// gone); memory is not touched.
    fn read_record(&self, id: VideoId) -> io::Result<Option<(Record, Option<String>)>> {
        if let Some(s) = &self.shared {
            lock(&s.fetched).insert(id, Instant::now());
        }
        let (bytes, tag) = match self.store.read_tagged(id, names::META_FILE) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let rec = super::parse_record(id, &bytes).map_err(io::Error::other)?;
        Ok(Some((rec, tag)))
    }

    /// Reads a record from the store into memory (`None`: it is gone, and
    /// forgotten here too).
    pub fn reload(&self, id: VideoId) -> io::Result<Option<Record>> {
        let Some((rec, tag)) = self.read_record(id)? else {
            self.forget_shared(id);
            return Ok(None);
        };
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
            lock(&s.fetched).remove(&id);
        }
        if lock(&self.records).remove(&id).is_some() {
            self.notify();
        }
    }

    /// Brings video `id`'s record up to date with the store when another
    /// node may have changed it (blocking; at most one read per second per
    /// record). Nothing to do with a store of its own.
    pub fn refresh(&self, id: VideoId) {
        if self.is_stale(id) {
            if let Err(e) = self.reload(id) {
                tracing::warn!(id = %id, error = %e, "cannot read a record from the store");
            }
        }
    }

    /// True when [`Catalog::refresh`] would read video `id`'s record from
    /// the store (memory only: the serving path asks it before it hops to
    /// a blocking thread, which most requests then need not do).
    pub fn is_stale(&self, id: VideoId) -> bool {
        let Some(s) = &self.shared else {
            return false;
        };
        let (owned, active) = self
            .peek(id, |r| (s.owns(r), r.status.is_active()))
            .unwrap_or((false, true));
        let ttl = if active { ACTIVE_TTL } else { FINISHED_TTL };
        !owned && lock(&s.fetched).get(&id).is_none_or(|t| t.elapsed() >= ttl)
    }

    /// Brings every record up to date with the store (videos other nodes
    /// added or removed included), for the library's listing. Blocking.
    pub fn refresh_all(&self) {
        self.refresh_listed(|_| true);
    }

    /// Finds videos other nodes added or removed, and brings the active
    /// records up to date (what the orphan scan needs). Blocking.
    pub fn refresh_active(&self) {
        self.refresh_listed(|r| r.is_none_or(|r| r.status.is_active()));
    }

    /// Lists the store's videos: forgets the ones gone, and refreshes those
    /// `wanted` picks (by the record held now, `None` for one unknown here).
    fn refresh_listed(&self, wanted: impl Fn(Option<&Record>) -> bool) {
        let Some(s) = &self.shared else {
            return;
        };
        let Ok(ids) = self.store.list() else {
            return;
        };
        let listed: HashSet<VideoId> = ids.iter().copied().collect();
        for id in ids {
            if self
                .peek(id, |r| wanted(Some(r)))
                .unwrap_or_else(|| wanted(None))
            {
                self.refresh(id);
            }
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
