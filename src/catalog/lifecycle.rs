//! One door per video: every change to a video goes through here.
//!
//! A video's changes are serialised by its *door* (a per-video lock): a
//! change is checked against the table in [`super::change`], written
//! durably with the events it implies, and only then seen by anyone (the
//! HTTP answer, SSE, metrics, the webhook outbox). Flows that write a
//! video's files for a while (its job, an upload's bytes) register as
//! *writers*; the tombstone (`deleting`, durable) refuses new writers and
//! every later change, stops the writers, and the files go only once the
//! last one has left, the record last of all, so nothing a deletion
//! removed is written again, and a crash part-way finishes the deletion
//! at the next start.
//!
//! | state | changes allowed |
//! |---|---|
//! | `receiving` | received, offset, length, restarted, complete, resumed; the job's (below); captions, title, stored, deleting |
//! | `queued`, `processing` | probed, started, progress, generation, requeued, outputs, ready, failed, renewed, claimed; captions, title, stored, deleting |
//! | `ready` | captions, first_playlist, title, stored, renewed, deleting |
//! | `failed` | title, stored, renewed, deleting (captions: 409) |
//! | `deleting` | nothing (404): the deletion completes |
//!
//! Events (`video.created`, `video.ready`, `video.failed`,
//! `video.deleted`) are written in the record by the change that implies
//! them, in the same atomic write, then handed to the outbox and cleared;
//! a crash between the two hands them over at the next start (at least
//! once, with a stable id).

use super::change::Change;
use super::record::{Event, Record, Status};
use super::Catalog;
use crate::storage::{Quota, Store, VideoId};
use crate::Error;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Where events go once their change is durable (the webhook outbox).
pub trait Outbox: Send + Sync + std::fmt::Debug {
    /// Puts `event` about `rec` in the outbox, durably.
    fn put(&self, event: Event, rec: &Record) -> std::io::Result<()>;
}

/// Stops a writer (cancels a job, aborts an upload's spool).
pub type Stop = Arc<dyn Fn() + Send + Sync>;

/// One video's door.
#[derive(Default)]
struct Door {
    /// True while a change (or a flow that must check and change at once)
    /// holds the door; `free` wakes the next one.
    busy: Mutex<bool>,
    free: std::sync::Condvar,
    /// Writers of the video's files now, by number, with how to stop each.
    writers: Mutex<Vec<(u64, Stop)>>,
    /// The number of writers, for a deletion waiting for them to leave.
    left: tokio::sync::watch::Sender<usize>,
}

impl std::fmt::Debug for Door {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Door").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The owner of every video's changes.
#[derive(Debug)]
pub struct Lifecycle {
    catalog: Arc<Catalog>,
    /// `--max-storage-bytes`: what each video stores and is promised.
    quota: Arc<Quota>,
    /// Doors of the videos touched since start (removed with the video).
    doors: Mutex<HashMap<VideoId, Arc<Door>>>,
    /// The webhook outbox, when there is one (events are recorded only
    /// then).
    outbox: std::sync::OnceLock<Arc<dyn Outbox>>,
    /// Numbers writers.
    next_writer: std::sync::atomic::AtomicU64,
}

/// A video's door, held: its record as it is, and changes made under it.
/// The door opens again when it is dropped.
pub struct Held<'a> {
    life: &'a Lifecycle,
    id: VideoId,
    door: Turn,
    record: Record,
}

/// A door's turn, taken; given back on drop.
struct Turn(Arc<Door>);

impl Turn {
    /// The turn if the door is free now.
    fn try_take(door: Arc<Door>) -> Option<Turn> {
        let mut busy = lock(&door.busy);
        if *busy {
            return None;
        }
        *busy = true;
        drop(busy);
        Some(Turn(door))
    }

    fn take(door: Arc<Door>) -> Turn {
        let mut busy = lock(&door.busy);
        while *busy {
            busy = door.free.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy = true;
        drop(busy);
        Turn(door)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        *lock(&self.0.busy) = false;
        self.0.free.notify_one();
    }
}

/// A writer of a video's files; leaves when dropped.
#[derive(Debug)]
pub struct Writer {
    door: Arc<Door>,
    n: u64,
}

impl Drop for Writer {
    fn drop(&mut self) {
        let mut w = lock(&self.door.writers);
        w.retain(|(n, _)| *n != self.n);
        self.door.left.send_replace(w.len());
    }
}

impl Lifecycle {
    pub fn new(catalog: Arc<Catalog>, quota: Arc<Quota>) -> Arc<Lifecycle> {
        Arc::new(Lifecycle {
            catalog,
            quota,
            doors: Mutex::new(HashMap::new()),
            outbox: std::sync::OnceLock::new(),
            next_writer: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// Sets where events go (once, before recovery).
    pub fn set_outbox(&self, o: Arc<dyn Outbox>) {
        let _ = self.outbox.set(o);
    }

    /// The records, to read.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The storage.
    pub fn store(&self) -> &Store {
        self.catalog.store()
    }

    /// The storage quota's ledger.
    pub fn quota(&self) -> &Arc<Quota> {
        &self.quota
    }

    fn door(&self, id: VideoId) -> Arc<Door> {
        lock(&self.doors).entry(id).or_default().clone()
    }

    /// Creates a new video: its folder (the only place a video's folder is
    /// made) and its record; `announce`: `video.created` now (a resumable
    /// upload), else at [`Change::Complete`] (a multipart one).
    pub fn create(&self, mut rec: Record, announce: bool) -> Result<(), Error> {
        let id = rec.id;
        let _turn = Turn::take(self.door(id));
        rec.unannounced = !announce;
        if announce && self.outbox.get().is_some() {
            rec.events.push(Event::Created);
        }
        crate::failpoint!("create.before_record");
        self.catalog.create(rec.clone())?;
        crate::failpoint!("create.after_record");
        self.hand_over(id, &rec);
        Ok(())
    }

    /// Puts back the record of a video whose record could not be read,
    /// rebuilt from its files by recovery (its folder exists).
    pub fn restore(&self, rec: Record) -> Result<(), Error> {
        let _turn = Turn::take(self.door(rec.id));
        self.catalog.insert(rec)?;
        Ok(())
    }

    /// Holds video `id`'s door (`NotFound` when there is no such video).
    pub fn hold(&self, id: VideoId) -> Result<Held<'_>, Error> {
        self.held(id, Turn::take(self.door(id)))
    }

    /// Video `id`'s record under its door's `door` turn.
    fn held(&self, id: VideoId, door: Turn) -> Result<Held<'_>, Error> {
        let Some(record) = self.catalog.get(id) else {
            drop(door);
            // No door is kept for an id that names nothing.
            let mut doors = lock(&self.doors);
            if doors.get(&id).is_some_and(|d| Arc::strong_count(d) == 1) {
                doors.remove(&id);
            }
            return Err(Error::NotFound);
        };
        Ok(Held {
            life: self,
            id,
            door,
            record,
        })
    }

    /// One change of video `id`, under its door.
    pub fn apply(&self, id: VideoId, change: Change) -> Result<Record, Error> {
        self.hold(id)?.apply(change)
    }

    /// [`Lifecycle::apply`] if video `id`'s door is free now; `None` if a
    /// change holds it (what cannot wait: a job's progress, noted in
    /// memory, is skipped while a write to a slow store holds the door).
    pub fn try_apply(&self, id: VideoId, change: Change) -> Option<Result<Record, Error>> {
        let door = Turn::try_take(self.door(id))?;
        Some(self.held(id, door).and_then(|mut h| h.apply(change)))
    }

    /// Applies `change` in memory only, when the store cannot take it (a
    /// bucket that is down): this node says it now; the caller writes it
    /// durably (`apply`) once the store answers.
    pub fn note(&self, id: VideoId, change: &Change) -> Result<(), Error> {
        let held = self.hold(id)?;
        change.allowed(held.record.status)?;
        self.catalog.update(id, false, |r| {
            change.apply(r);
        })?;
        Ok(())
    }

    /// Registers a writer of video `id`'s files, stopped by `stop` when
    /// the video is deleted; refused (404) once it is being deleted.
    pub fn enter(&self, id: VideoId, stop: Stop) -> Result<Writer, Error> {
        let held = self.hold(id)?;
        if held.record.status == Status::Deleting {
            return Err(Error::NotFound);
        }
        let n = self
            .next_writer
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let door = held.door.0.clone();
        let mut w = lock(&door.writers);
        w.push((n, stop));
        door.left.send_replace(w.len());
        drop(w);
        Ok(Writer { door, n })
    }

    /// The tombstone: video `id` is `deleting` (durably, with its
    /// `video.deleted` event), refuses every change and new writer from
    /// now on, and its writers are told to stop. A video already being
    /// deleted is left as it is.
    pub fn tombstone(&self, id: VideoId) -> Result<Record, Error> {
        let mut held = self.hold(id)?;
        let rec = match held.record.status {
            Status::Deleting => held.record.clone(),
            _ => held.apply(Change::Deleting)?,
        };
        let door = held.door.0.clone();
        drop(held);
        let stops: Vec<Stop> = lock(&door.writers).iter().map(|(_, s)| s.clone()).collect();
        for stop in stops {
            stop();
        }
        Ok(rec)
    }

    /// Resolves `true` once video `id` has no writer left, `false` if one
    /// is still there after `wait`.
    pub async fn writers_gone(&self, id: VideoId, wait: Duration) -> bool {
        let mut left = self.door(id).left.subscribe();
        tokio::time::timeout(wait, left.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Removes a deleted video: its files (the record last), then its
    /// record from memory. Blocking. Only after [`Lifecycle::tombstone`].
    pub fn remove(&self, id: VideoId) -> Result<(), Error> {
        let _turn = Turn::take(self.door(id));
        if let Some(rec) = self.catalog.get(id) {
            // Events of the tombstone not yet handed over go first.
            self.hand_over(id, &rec);
        }
        crate::failpoint!("delete.before_files");
        self.store().remove_video(id)?;
        crate::failpoint!("delete.after_files");
        self.catalog.forget(id);
        self.quota.forget(id);
        lock(&self.doors).remove(&id);
        Ok(())
    }

    /// Deletes video `id`: the tombstone, its writers stopped, then, once
    /// the last has left, its files and record. `Ok(true)` when that
    /// happened within `wait`; `Ok(false)` when it goes on in the
    /// background (and at the next start, if the process stops first).
    pub async fn delete(self: &Arc<Self>, id: VideoId, wait: Duration) -> Result<bool, Error> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.tombstone(id)).await??;
        crate::failpoint!("delete.after_tombstone");
        if self.writers_gone(id, wait).await {
            let me = self.clone();
            tokio::task::spawn_blocking(move || me.remove(id)).await??;
            return Ok(true);
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut left = me.door(id).left.subscribe();
            let _ = left.wait_for(|n| *n == 0).await;
            let rm = me.clone();
            match tokio::task::spawn_blocking(move || rm.remove(id)).await {
                Ok(Ok(())) => tracing::info!(id = %id, "video deleted"),
                _ => tracing::error!(id = %id, "deletion failed; it resumes at the next start"),
            }
        });
        Ok(false)
    }

    /// Hands the events `rec` carries to the outbox, then writes the
    /// record without them. A failure leaves them for the next start.
    fn hand_over(&self, id: VideoId, rec: &Record) {
        if rec.events.is_empty() {
            return;
        }
        let Some(outbox) = self.outbox.get() else {
            return;
        };
        crate::failpoint!("events.before_outbox");
        for e in &rec.events {
            if let Err(err) = outbox.put(*e, rec) {
                tracing::error!(id = %id, event = e.name(), error = %err,
                    "cannot put a webhook event in the outbox; it is tried again at the next start");
                return;
            }
        }
        crate::failpoint!("events.after_outbox");
        let handed = rec.events.clone();
        let cleared = self.catalog.update(id, true, |r| {
            r.events.retain(|e| !handed.contains(e));
        });
        if let Err(e) = cleared {
            tracing::warn!(id = %id, error = %e, "events handed over but not cleared");
        }
    }

    /// Hands over the events every record still carries (at start).
    pub fn hand_over_all(&self) {
        for id in self.catalog.ids() {
            let _turn = Turn::take(self.door(id));
            if let Some(rec) = self.catalog.get(id) {
                self.hand_over(id, &rec);
            }
        }
    }
}

impl Held<'_> {
    /// The record as it is now.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Applies `change` if the table allows it in the current state:
    /// written durably with its events before anyone sees it, then the
    /// events handed to the outbox. Returns the new record.
    pub fn apply(&mut self, change: Change) -> Result<Record, Error> {
        change.allowed(self.record.status)?;
        let is_tombstone = matches!(change, Change::Deleting);
        let life = self.life;
        let record_events = life.outbox.get().is_some();
        let refused = std::cell::Cell::new(None);
        let written = life.catalog.update(self.id, change.durable(), |r| {
            if let Err(e) = change.allowed(r.status) {
                refused.set(Some(e.code()));
                return;
            }
            let events = change.apply(r);
            if record_events {
                r.events.extend(events);
            }
        });
        let rec = match written {
            Ok(rec) => rec.ok_or(Error::NotFound)?,
            Err(e) if super::shared::is_taken_over(&e) => return Err(Error::OtherNode),
            Err(e) => return Err(e.into()),
        };
        if refused.take().is_some() || rec.status == Status::Deleting && !is_tombstone {
            // Another node changed the record meanwhile (a bucket).
            self.record = rec.clone();
            return Err(match rec.status {
                Status::Deleting => Error::NotFound,
                s => Error::Conflict(format!("the video is {} now", s.name())),
            });
        }
        life.hand_over(self.id, &rec);
        self.record = life.catalog.get(self.id).unwrap_or(rec);
        Ok(self.record.clone())
    }

    /// The video's id.
    pub fn id(&self) -> VideoId {
        self.id
    }

    /// The storage.
    pub fn store(&self) -> &Store {
        self.life.store()
    }
}
