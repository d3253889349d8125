//! Video records: kept in memory, persisted as `<id>/meta.json` through
//! [`Store`] (atomic, durable writes), loaded at start. A record that cannot
//! be read is reported, never skipped silently: `recovery` rebuilds it or
//! keeps the video as `failed` (`damaged_record`); no folder is ever deleted
//! because its record could not be read.
//!
//! Reading is lenient (every field but `id` and `status` has a default), so
//! a record written by an older or newer version still loads.

mod change;
mod codec;
mod colour;
mod event;
mod fresh;
mod lifecycle;
mod record;
mod shared;
mod status;

pub use change::{Change, Outputs};
pub use codec::{codec_of, codec_of_rung};
pub use colour::{ColourInfo, ContentLight, DolbyVision, MasteringDisplay};
pub use fresh::Reading;
pub use lifecycle::{Held, Lifecycle, Outbox, Stop, Writer};
pub use record::{
    AudioInfo, AudioTrack, CaptionSource, CaptionTrack, ClipRange, ErrorInfo, Event, Grant,
    ImportInfo, LiveInfo, OutputInfo, Record, Rendition, Resumable, SourceInfo, Status, VideoInfo,
};

use crate::clock::SharedClock;
use crate::storage::{names, Store, VideoId};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// A folder whose record could not be read at start, and why.
#[derive(Debug)]
pub struct Unreadable {
    pub id: VideoId,
    pub reason: String,
}

/// All records, with their persistence.
#[derive(Debug)]
pub struct Catalog {
    store: Store,
    clock: SharedClock,
    /// Records by id. A std mutex: never held across I/O or `.await`.
    records: Mutex<HashMap<VideoId, Record>>,
    /// Serialises writes of `meta.json`, so a file never goes back in time
    /// when two threads update the same record.
    persist: Mutex<()>,
    /// Bumped on every change; event streams wait on it.
    changed: tokio::sync::watch::Sender<u64>,
    /// With a store several nodes share: this node, its records' versions.
    shared: Option<shared::Shared>,
}

/// Video `id`'s record from the bytes of its `meta.json`, or why not.
fn parse_record(id: VideoId, bytes: &[u8]) -> Result<Record, String> {
    let rec: Record = serde_json::from_slice(bytes)
        .map_err(|e| format!("{} is not a record: {e}", names::META_FILE))?;
    if rec.id != id {
        return Err(format!(
            "{} names another video ({})",
            names::META_FILE,
            rec.id
        ));
    }
    Ok(rec)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Catalog {
    /// Loads every record in `store` as it was left, and lists the folders
    /// whose record is missing or unreadable (for `recovery`).
    pub fn open(store: Store, clock: SharedClock) -> std::io::Result<(Catalog, Vec<Unreadable>)> {
        Catalog::open_as(store, clock, None)
    }

    /// [`Catalog::open`] as node `node` (name, lease) of a shared store.
    pub fn open_as(
        store: Store,
        clock: SharedClock,
        node: Option<(String, std::time::Duration)>,
    ) -> std::io::Result<(Catalog, Vec<Unreadable>)> {
        let cat = Catalog {
            shared: node
                .filter(|_| store.traits().shared)
                .map(|(name, lease)| shared::Shared::new(name, lease)),
            store,
            clock,
            records: Mutex::new(HashMap::new()),
            persist: Mutex::new(()),
            changed: tokio::sync::watch::channel(0).0,
        };
        let mut unreadable = Vec::new();
        for id in cat.store.list()? {
            match cat.load(id) {
                Ok(rec) => {
                    lock(&cat.records).insert(id, rec);
                }
                Err(reason) => unreadable.push(Unreadable { id, reason }),
            }
        }
        Ok((cat, unreadable))
    }

    fn load(&self, id: VideoId) -> Result<Record, String> {
        let (bytes, tag) = self
            .store
            .read_tagged(id, names::META_FILE)
            .map_err(|e| format!("cannot read {}: {e}", names::META_FILE))?;
        if let Some(s) = &self.shared {
            s.tagged(id, tag);
        }
        parse_record(id, &bytes)
    }

    /// The storage the records live in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The clock records are stamped with.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// A fresh record for an upload starting now.
    pub fn new_record(&self, id: VideoId, file_name: Option<String>) -> Record {
        let mut rec = Record::new(id, file_name, self.clock.unix_ms());
        if let Some(s) = &self.shared {
            rec.node = Some(s.node.clone());
            rec.lease_until_ms = self.clock.unix_ms() + s.lease_ms();
        }
        rec
    }

    /// Ids of every record.
    pub fn ids(&self) -> Vec<VideoId> {
        lock(&self.records).keys().copied().collect()
    }

    /// Records newest first (ties by id), optionally of one status, starting
    /// after `cursor`, at most `limit`. Returns the page and the next cursor.
    /// A cursor is `<created_ms>.<id>` of the last record of a page, so a
    /// page still resumes at the right place if that record was deleted.
    pub fn list(
        &self,
        status: Option<Status>,
        cursor: Option<&str>,
        limit: usize,
    ) -> (Vec<Record>, Option<String>) {
        let key = |r: &Record| (std::cmp::Reverse(r.created_ms), r.id.to_string());
        let mut all: Vec<Record> = lock(&self.records)
            .values()
            .filter(|r| status.is_none_or(|s| r.status == s))
            .cloned()
            .collect();
        all.sort_by_key(key);
        let after = cursor.and_then(|c| {
            let (t, id) = c.split_once('.')?;
            Some((std::cmp::Reverse(t.parse::<u64>().ok()?), id.to_owned()))
        });
        let start = match &after {
            Some(a) => all.partition_point(|r| key(r) <= *a),
            None => 0,
        };
        let page: Vec<Record> = all.iter().skip(start).take(limit).cloned().collect();
        let next = if start + page.len() < all.len() {
            page.last().map(|r| format!("{}.{}", r.created_ms, r.id))
        } else {
            None
        };
        (page, next)
    }

    /// How many records have each status (without copying any record).
    /// With a shared store, active records count on their own node only
    /// (metrics are per node).
    pub fn count_by_status(&self) -> HashMap<Status, u64> {
        let mut counts = HashMap::new();
        let me = self.node();
        for r in lock(&self.records).values() {
            if me.is_none() || !r.status.is_active() || r.node.as_deref() == me {
                *counts.entry(r.status).or_insert(0) += 1;
            }
        }
        counts
    }

    /// A receiver that sees a new value after every change of any record.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn write_record(&self, rec: &Record) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
        match &self.shared {
            Some(s) => s.write(&self.store, rec.id, &json),
            None => self.store.write(rec.id, names::META_FILE, &json),
        }
    }

    /// A copy of one record.
    pub fn get(&self, id: VideoId) -> Option<Record> {
        lock(&self.records).get(&id).cloned()
    }

    /// `f` of a video's record, without copying the record (the serving
    /// path asks this on every request).
    pub fn peek<R>(&self, id: VideoId, f: impl FnOnce(&Record) -> R) -> Option<R> {
        lock(&self.records).get(&id).map(f)
    }

    /// Adds the record of a new video: visible at once (so a request for it
    /// never sees "no such video" once its folder exists), then its folder
    /// is created and the record persisted. Nothing remains on failure.
    pub(in crate::catalog) fn create(&self, rec: Record) -> std::io::Result<()> {
        let id = rec.id;
        lock(&self.records).insert(id, rec.clone());
        let made = self.store.create(id).and_then(|()| {
            let _w = lock(&self.persist);
            self.write_record(&rec)
        });
        if let Err(e) = made {
            lock(&self.records).remove(&id);
            let _ = self.store.remove_video(id);
            return Err(e);
        }
        self.notify();
        Ok(())
    }

    /// Adds (or replaces) a record whose folder exists, and persists it.
    pub(in crate::catalog) fn insert(&self, rec: Record) -> std::io::Result<()> {
        let _w = lock(&self.persist);
        self.write_record(&rec)?;
        lock(&self.records).insert(rec.id, rec);
        self.notify();
        Ok(())
    }

    /// Changes a record; when `persist` is true the change is on disk
    /// before anyone can see it (a client told `ready` can rely on it after
    /// a crash). Returns the updated copy, or `None` if the id is unknown.
    /// Only the lifecycle calls it, under the video's door, after checking
    /// the change is allowed. `f` may run twice: once on the copy that is
    /// written, once on the record in memory.
    pub(in crate::catalog) fn update(
        &self,
        id: VideoId,
        persist: bool,
        f: impl Fn(&mut Record),
    ) -> std::io::Result<Option<Record>> {
        if persist && self.shared.is_some() {
            return self.update_shared(id, f);
        }
        let _w = persist.then(|| lock(&self.persist));
        let now = self.clock.unix();
        let apply = |rec: &mut Record| {
            f(rec);
            rec.updated_at = now;
        };
        if persist {
            let Some(mut copy) = self.get(id) else {
                return Ok(None);
            };
            apply(&mut copy);
            self.write_record(&copy)?;
        }
        let copy = {
            let mut map = lock(&self.records);
            let Some(rec) = map.get_mut(&id) else {
                return Ok(None);
            };
            apply(rec);
            rec.clone()
        };
        self.notify();
        Ok(Some(copy))
    }

    /// Forgets a record (its files are the caller's to remove).
    pub(in crate::catalog) fn forget(&self, id: VideoId) -> Option<Record> {
        let _w = lock(&self.persist);
        let rec = lock(&self.records).remove(&id);
        self.notify();
        rec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn open(dir: &std::path::Path) -> (Catalog, Vec<Unreadable>) {
        Catalog::open(Store::open(dir).unwrap(), ManualClock::at(1_000_000)).unwrap()
    }

    #[test]
    fn records_survive_a_restart_and_list_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let (cat, _) = open(dir.path());
        let a = VideoId::parse("aaaaaaaaaaaaaaaaaaaaa").unwrap();
        let b = VideoId::parse("bbbbbbbbbbbbbbbbbbbbb").unwrap();
        for (id, status) in [(a, Status::Ready), (b, Status::Processing)] {
            let mut r = cat.new_record(id, Some("x.mp4".into()));
            r.status = status;
            cat.create(r).unwrap();
        }
        cat.update(a, true, |r| r.progress = 1.0).unwrap();
        drop(cat);
        let (cat, unreadable) = open(dir.path());
        assert!(unreadable.is_empty());
        let ra = cat.get(a).unwrap();
        assert_eq!((ra.status, ra.progress), (Status::Ready, 1.0));
        assert_eq!(cat.get(b).unwrap().status, Status::Processing);
        assert_eq!(ra.title, "x");
        cat.update(b, false, |r| r.created_ms += 10_000).unwrap();
        let (page, next) = cat.list(None, None, 1);
        assert_eq!(page[0].id, b);
        // The cursor still works after the record it names is gone.
        cat.forget(b);
        let (page2, next2) = cat.list(None, next.as_deref(), 1);
        assert_eq!(page2[0].id, a);
        assert_eq!(next2, None);
        let (ready, _) = cat.list(Some(Status::Ready), None, 10);
        assert_eq!(ready.len(), 1);
    }

    #[test]
    fn unreadable_records_are_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (cat, _) = open(dir.path());
        let ids: Vec<VideoId> = (0..4).map(|_| VideoId::random()).collect();
        for id in &ids {
            cat.create(cat.new_record(*id, None)).unwrap();
        }
        let store = cat.store().clone();
        store.write(ids[0], names::META_FILE, b"").unwrap();
        store
            .write(ids[1], names::META_FILE, b"{\"id\": \"x")
            .unwrap();
        store.remove(ids[2], names::META_FILE).unwrap();
        // A newer version's record with extra fields still loads.
        let mut v = serde_json::to_value(cat.get(ids[3]).unwrap()).unwrap();
        v["from_the_future"] = serde_json::json!(1);
        v.as_object_mut().unwrap().remove("title");
        store
            .write(ids[3], names::META_FILE, v.to_string().as_bytes())
            .unwrap();
        drop(cat);
        let (cat, unreadable) = open(dir.path());
        let mut bad: Vec<VideoId> = unreadable.iter().map(|u| u.id).collect();
        bad.sort();
        let mut want = ids[..3].to_vec();
        want.sort();
        assert_eq!(bad, want);
        assert!(cat.get(ids[3]).is_some());
    }
}
