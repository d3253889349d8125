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

/// A change refused because another node took the video over (its record
/// names that node now): nothing of this node's is written any more.
#[derive(Debug)]
pub struct TakenOver;

impl std::fmt::Display for TakenOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("another node took this video over")
    }
}

impl std::error::Error for TakenOver {}

/// True when `e` says the video was taken over.
pub fn is_taken_over(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<TakenOver>())
}

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
        for _ in 0..MAX_CONFLICTS {
            let copy = self.changed_copy(s, &base, &f);
            let json = serde_json::to_vec_pretty(&copy).map_err(io::Error::other)?;
            match s.write(&self.store, id, &json) {
                Ok(()) => {
                    lock(&self.records).insert(id, copy.clone());
                    self.notify();
                    return Ok(Some(copy));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let began = Instant::now();
                    let Some((fresh, tag)) = self.read_record(id)? else {
                        self.forget_shared(id);
                        return Ok(None);
                    };
                    if mine && fresh.node.as_deref() != Some(s.node.as_str()) {
                        // Taken over: nothing of ours is written; memory
                        // gets the new owner's record.
                        self.remember(s, fresh, tag, began);
                        return Err(io::Error::other(TakenOver));
                    }
                    self.remember(s, fresh.clone(), tag, began);
                    base = fresh;
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(
            "the record keeps changing under this node",
        ))
    }

    /// `base` changed by `f` (the lifecycle's change, which checks itself
    /// against the record as it is), stamped, its lease renewed while it
    /// is this node's.
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
        copy
    }

    /// A record as the store has it now, with its version tag (`None`:
    /// gone); memory is not touched.
    fn read_record(&self, id: VideoId) -> io::Result<Option<(Record, Option<String>)>> {
        let (bytes, tag) = match self.store.read_tagged(id, names::META_FILE) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let rec = super::parse_record(id, &bytes).map_err(io::Error::other)?;
        Ok(Some((rec, tag)))
    }

    /// Reads a record from the store into memory (`None`: it is gone, and
    /// forgotten here too). A store of this node's own is what memory
    /// holds (every write goes through it): nothing to read.
    ///
    /// Memory is stamped with the time the read began, and only when its
    /// answer is there: a request that finds a record fresh finds it in
    /// memory (a read still on its way marks nothing), and a read that
    /// began earlier than the one memory holds changes nothing.
    pub fn reload(&self, id: VideoId) -> io::Result<Option<Record>> {
        let Some(s) = &self.shared else {
            return Ok(self.get(id));
        };
        let began = Instant::now();
        match self.read_record(id) {
            Ok(Some((rec, tag))) => {
                self.remember(s, rec.clone(), tag, began);
                Ok(Some(rec))
            }
            Ok(None) => {
                self.forget_unless_read_since(s, id, began);
                Ok(None)
            }
            Err(e) => {
                // What memory holds is served a while longer rather than
                // the store asked again at once; nothing held, nothing
                // marked (the next request asks).
                let mut fetched = lock(&s.fetched);
                if self.peek(id, |_| ()).is_some() {
                    fetched.insert(id, began);
                }
                Err(e)
            }
        }
    }

    /// Puts `rec` as read from the store at `began` in memory, unless a
    /// read that began later is there already.
    fn remember(&self, s: &Shared, rec: Record, tag: Option<String>, began: Instant) {
        let mut fetched = lock(&s.fetched);
        if fetched.get(&rec.id).is_some_and(|t| *t > began) {
            return;
        }
        fetched.insert(rec.id, began);
        s.tagged(rec.id, tag);
        lock(&self.records).insert(rec.id, rec);
        drop(fetched);
        self.notify();
    }

    fn forget_shared(&self, id: VideoId) {
        if let Some(s) = &self.shared {
            self.forget_unless_read_since(s, id, Instant::now());
        } else if lock(&self.records).remove(&id).is_some() {
            self.notify();
        }
    }

    /// Brings video `id`'s record up to date with the store when another
    /// node may have changed it (blocking; a record read is served for a
    /// second, or ten once finished, before it is read again). Nothing to
    /// do with a store of its own. An error is the store's when the read
    /// failed (logged; what memory holds stays served).
    pub fn refresh(&self, id: VideoId) -> io::Result<()> {
        if self.is_stale(id) {
            if let Err(e) = self.reload(id) {
                tracing::warn!(id = %id, error = %e, "cannot read a record from the store");
                return Err(e);
            }
        }
        Ok(())
    }

    /// True when [`Catalog::refresh`] would read video `id`'s record from
    /// the store (memory only: the serving path asks it before it hops to
    /// a blocking thread, which most requests then need not do).
    pub(super) fn is_stale(&self, id: VideoId) -> bool {
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
    /// records and the deletions up to date (what the orphan scan needs).
    /// Blocking.
    pub fn refresh_active(&self) {
        let wanted = |r: &Record| r.status.is_active() || r.status == super::Status::Deleting;
        self.refresh_listed(|r| r.is_none_or(wanted));
    }

    /// Lists the store's videos: forgets the ones gone, and refreshes those
    /// `wanted` picks (by the record held now, `None` for one unknown here).
    /// A record read (or added here) after the listing began is newer than
    /// the listing and is kept, whatever the listing says: a request may
    /// read a video another node has just created while a scan's listing
    /// is on its way back without it.
    fn refresh_listed(&self, wanted: impl Fn(Option<&Record>) -> bool) {
        let Some(s) = &self.shared else {
            return;
        };
        let began = Instant::now();
        let known: HashSet<VideoId> = lock(&self.records).keys().copied().collect();
        let Ok(ids) = self.store.list() else {
            return;
        };
        let listed: HashSet<VideoId> = ids.iter().copied().collect();
        for id in ids {
            if self
                .peek(id, |r| wanted(Some(r)))
                .unwrap_or_else(|| wanted(None))
            {
                // Logged there; the listing goes on with the next.
                let _ = self.refresh(id);
            }
        }
        let gone = unlisted(&lock(&self.records), &listed, &known, |r| s.owns(r));
        for id in gone {
            self.forget_unless_read_since(s, id, began);
        }
    }

    /// [`Catalog::forget_shared`] unless a read that began at `began` or
    /// later is in memory (checked and forgotten under the lock a read
    /// puts its record and its time in memory under).
    fn forget_unless_read_since(&self, s: &Shared, id: VideoId, began: Instant) {
        let mut fetched = lock(&s.fetched);
        if fetched.get(&id).is_some_and(|t| *t >= began) {
            return;
        }
        fetched.remove(&id);
        lock(&s.tags).remove(&id);
        if lock(&self.records).remove(&id).is_some() {
            drop(fetched);
            self.notify();
        }
    }
}

/// The records a listing shows gone: not listed, not this node's own work,
/// and already known (`known`) when the listing began.
fn unlisted(
    records: &HashMap<VideoId, Record>,
    listed: &HashSet<VideoId>,
    known: &HashSet<VideoId>,
    owns: impl Fn(&Record) -> bool,
) -> Vec<VideoId> {
    records
        .values()
        .filter(|r| !listed.contains(&r.id) && known.contains(&r.id) && !owns(r))
        .map(|r| r.id)
        .collect()
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
