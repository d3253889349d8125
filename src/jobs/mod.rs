//! Jobs: one dedicated OS thread per upload ("pipeline"), at most
//! `--max-pending` alive, at most `--jobs` transcoding at once.
//!
//! A pipeline opens and probes the upload as soon as its first bytes are on
//! the spool (cheap, not limited by `--jobs`, so a bad upload is refused
//! while it arrives even when the encoder is busy), reports the probe to the
//! ingest, then waits for a transcode slot (`queued`) and transcodes.
//!
//! Who removes files:
//! - a rejected or cut-off upload (probe failed, spool aborted): the pipeline
//!   thread removes the whole folder, then signals `done`; the ingest waits
//!   for that before answering, so a 4xx leaves nothing in storage;
//! - a deleted video: the deleter, after the thread has ended;
//! - a job cancelled by shutdown: nobody; `recovery` re-queues it at start.

pub(crate) mod captions;
mod events;
pub(crate) mod lease;
mod persist;
mod pipeline;
mod slots;

use crate::catalog::{Catalog, Change, Lifecycle, SourceInfo};
use crate::config::KeepSource;
use crate::media::Settings;
use crate::spool::{SpoolControl, SpoolReader};
use crate::storage::{Quota, VideoId};
use crate::Error;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

pub(crate) use slots::{SlotHolder, Slots};

/// The generation a video transcoded again takes: after its record's and
/// after every name in the store (one rule, for recovery and takeovers),
/// so no published name is ever given other bytes.
pub(crate) fn next_generation(store: &crate::storage::Store, rec: &crate::catalog::Record) -> u32 {
    rec.generation.max(store.highest_generation(rec.id)) + 1
}

/// Why a pipeline was cancelled (stored in an `AtomicU8`).
const CANCEL_NONE: u8 = 0;
const CANCEL_SHUTDOWN: u8 = 1;
const CANCEL_DELETE: u8 = 2;
/// A resumable upload went quiet: its job stops, record and spool stay.
const CANCEL_PARK: u8 = 3;

/// How a pipeline came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// A new upload in one request.
    New,
    /// A complete upload re-queued at start: its upload was accepted long
    /// ago, so a probe failure marks it failed instead of erasing it.
    Recovered,
    /// A resumable upload (its bytes come in many requests): stopped by
    /// shutdown or parking, it keeps its record and spool for the next
    /// start.
    Resumable,
    /// An import from a URL or an exact clip: its client was answered
    /// `201` before the bytes came, so it is never erased; a failure before
    /// every byte is in is recorded by its producer (which knows why).
    Import,
    /// A live broadcast: it transcodes as it arrives (real time), so it
    /// never waits for a `--jobs` slot (`--max-lives` bounds lives); what
    /// ends it early is its publisher's to handle, as an import's.
    Live,
}

/// A live pipeline, as the registry sees it.
#[derive(Debug)]
struct Live {
    id: VideoId,
    /// Polled by libav's interrupt callback and the packet loop.
    cancel: Arc<AtomicBool>,
    reason: Arc<AtomicU8>,
    spool: SpoolControl,
    /// Becomes `true` when the thread has ended.
    ended: watch::Receiver<bool>,
}

/// The job system, shared by the HTTP layer.
#[derive(Debug)]
pub(crate) struct Jobs {
    slots: Arc<Slots>,
    /// Pipelines alive (uploading, queued or transcoding).
    pending: AtomicUsize,
    max_pending: usize,
    /// Live pipelines, for cancel and shutdown.
    live: Mutex<Vec<Live>>,
    settings: Settings,
    keep_source: KeepSource,
    /// Every change of a video goes through here.
    videos: Arc<Lifecycle>,
    /// The records, to read (`videos`' own).
    catalog: Arc<Catalog>,
    /// `--max-storage-bytes`: each job reserves its estimated outputs.
    quota: Arc<Quota>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Failures a shared store refused to record (it was down): written
    /// again by the lease renewer until they land (code, message).
    unwritten: Mutex<Vec<(VideoId, &'static str, String)>>,
    /// Writes jobs' progress off their threads.
    progress: persist::Persister,
}

/// A reserved place among `--max-pending`; released on drop.
#[derive(Debug)]
pub(crate) struct PendingPermit(Arc<Jobs>);

impl Drop for PendingPermit {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the ingest holds of a started pipeline.
#[derive(Debug)]
pub(crate) struct JobHandle {
    /// The probe's verdict, once the demuxer has opened the upload.
    pub probe: oneshot::Receiver<Result<SourceInfo, Error>>,
    /// Fires when the thread has ended and cleaned up.
    pub done: oneshot::Receiver<()>,
    /// True once the pipeline holds a transcode slot.
    pub running: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Jobs {
    pub(crate) fn new(
        jobs: usize,
        max_pending: usize,
        settings: Settings,
        keep_source: KeepSource,
        videos: Arc<Lifecycle>,
        quota: Arc<Quota>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<Self> {
        let catalog = videos.catalog().clone();
        Arc::new(Jobs {
            progress: persist::Persister::start(videos.clone()),
            videos,
            slots: Slots::new(jobs),
            pending: AtomicUsize::new(0),
            max_pending,
            live: Mutex::new(Vec::new()),
            settings,
            keep_source,
            catalog,
            quota,
            metrics,
            unwritten: Mutex::new(Vec::new()),
        })
    }

    /// Reserves a pipeline place, or `None` when the server is full.
    pub(crate) fn try_reserve(self: &Arc<Self>) -> Option<PendingPermit> {
        let mut cur = self.pending.load(Ordering::Acquire);
        loop {
            if cur >= self.max_pending {
                return None;
            }
            match self
                .pending
                .compare_exchange(cur, cur + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(PendingPermit(self.clone())),
                Err(now) => cur = now,
            }
        }
    }

    /// Pipelines alive now.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Starts the pipeline thread for a new upload `id` reading `reader`.
    pub(crate) fn start(
        self: &Arc<Self>,
        id: VideoId,
        reader: SpoolReader,
        permit: PendingPermit,
        how: Start,
    ) -> Result<JobHandle, Error> {
        self.spawn(id, reader, permit, how)
    }

    /// Starts the pipeline of a resumable (tus) upload: stopped by
    /// shutdown or [`Jobs::park`], it keeps its record and spool, and is
    /// started again from the spool when bytes come.
    pub(crate) fn start_resumable(
        self: &Arc<Self>,
        id: VideoId,
        reader: SpoolReader,
        permit: PendingPermit,
    ) -> Result<JobHandle, Error> {
        self.spawn(id, reader, permit, Start::Resumable)
    }

    /// Stops a resumable upload's job while its client is away; resolves
    /// once the thread has ended.
    pub(crate) async fn park(&self, id: VideoId) {
        let ended = lock(&self.live).iter().find(|l| l.id == id).map(|l| {
            Self::cancel_live(l, CANCEL_PARK);
            l.ended.clone()
        });
        self.slots.wake_all();
        if let Some(mut ended) = ended {
            let _ = ended.wait_for(|e| *e).await;
        }
    }

    /// Re-queues a video whose upload completed before a restart.
    pub(crate) fn start_recovered(
        self: &Arc<Self>,
        id: VideoId,
        reader: SpoolReader,
    ) -> Result<(), Error> {
        // Recovered jobs are few and were accepted already: they may exceed
        // `--max-pending` rather than be dropped.
        self.pending.fetch_add(1, Ordering::AcqRel);
        let permit = PendingPermit(self.clone());
        self.spawn(id, reader, permit, Start::Recovered).map(drop)
    }

    fn spawn(
        self: &Arc<Self>,
        id: VideoId,
        reader: SpoolReader,
        permit: PendingPermit,
        start: Start,
    ) -> Result<JobHandle, Error> {
        let (probe_tx, probe) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let (ended_tx, ended) = watch::channel(false);
        let running = Arc::new(AtomicBool::new(false));
        let cancel = Arc::new(AtomicBool::new(false));
        let reason = Arc::new(AtomicU8::new(CANCEL_NONE));
        // The job writes the video's files until its thread ends: a
        // deletion stops it and waits for it (its cleanup included).
        let writer = {
            let (cancel, reason, spool) = (cancel.clone(), reason.clone(), reader.control());
            let wake = self.slots.clone();
            let stop = Arc::new(move || {
                reason.store(CANCEL_DELETE, Ordering::Release);
                cancel.store(true, Ordering::Release);
                spool.abort();
                wake.wake_all();
            });
            self.videos.enter(id, stop)?
        };
        lock(&self.live).push(Live {
            id,
            cancel: cancel.clone(),
            reason: reason.clone(),
            spool: reader.control(),
            ended,
        });
        let pipeline = pipeline::Pipeline {
            jobs: self.clone(),
            id,
            cancel,
            reason,
            running: running.clone(),
            start,
        };
        std::thread::Builder::new()
            .name(format!("job-{}", id.short()))
            .spawn(move || {
                let _permit = permit;
                pipeline.run(reader, probe_tx);
                drop(writer);
                let _ = done_tx.send(());
                let _ = ended_tx.send(true);
            })
            .map_err(|e| {
                self.remove_live(id);
                Error::Internal(format!("cannot start a job thread: {e}"))
            })?;
        Ok(JobHandle {
            probe,
            done,
            running,
        })
    }

    fn remove_live(&self, id: VideoId) {
        lock(&self.live).retain(|l| l.id != id);
    }

    fn cancel_live(l: &Live, reason: u8) {
        l.reason.store(reason, Ordering::Release);
        l.cancel.store(true, Ordering::Release);
        l.spool.abort();
    }

    /// Cancels video `id`'s pipeline, if any, for deletion. Resolves `true`
    /// once its thread has ended (or when it had none), `false` if it is
    /// still running after `wait`.
    pub(crate) async fn cancel_for_delete(&self, id: VideoId, wait: Duration) -> bool {
        let ended = {
            let live = lock(&self.live);
            live.iter().find(|l| l.id == id).map(|l| {
                Self::cancel_live(l, CANCEL_DELETE);
                l.ended.clone()
            })
        };
        self.slots.wake_all();
        match ended {
            Some(mut ended) => tokio::time::timeout(wait, ended.wait_for(|e| *e))
                .await
                .is_ok_and(|r| r.is_ok()),
            None => true,
        }
    }

    /// Resolves once video `id` has no pipeline thread.
    pub(crate) async fn ended(&self, id: VideoId) {
        let ended = lock(&self.live)
            .iter()
            .find(|l| l.id == id)
            .map(|l| l.ended.clone());
        if let Some(mut ended) = ended {
            let _ = ended.wait_for(|e| *e).await;
        }
    }

    /// The videos with a live pipeline here.
    pub(crate) fn live_ids(&self) -> Vec<VideoId> {
        lock(&self.live).iter().map(|l| l.id).collect()
    }

    /// Remembers a failure the store refused to record.
    pub(crate) fn note_unwritten_failure(&self, id: VideoId, e: &Error) {
        lock(&self.unwritten).push((id, e.code(), e.public_message()));
    }

    /// Tries again to record the failures the store refused.
    pub(crate) fn write_unwritten_failures(&self) {
        let pending = std::mem::take(&mut *lock(&self.unwritten));
        for (id, code, message) in pending {
            let failed = Change::Failed {
                code: code.into(),
                message: message.clone(),
            };
            match self.videos.apply(id, failed) {
                // Written: the failure's cleanup follows, as a job's does.
                Ok(_) => {
                    let store = self.videos.store();
                    store.remove_outputs(id, self.keep_source != KeepSource::Never, &[]);
                    let size = store.size(id);
                    self.quota.settle(id, size);
                    let _ = self.videos.apply(id, Change::Stored(size));
                }
                // Gone, or another node's now: nothing to say.
                Err(Error::NotFound | Error::Conflict(_) | Error::OtherNode) => {}
                Err(_) => lock(&self.unwritten).push((id, code, message)),
            }
        }
    }

    /// Stops video `id`'s pipeline, if any, without touching the video
    /// (another node took it over).
    pub(crate) fn cancel_lost(&self, id: VideoId) {
        if let Some(l) = lock(&self.live).iter().find(|l| l.id == id) {
            Self::cancel_live(l, CANCEL_SHUTDOWN);
        }
        self.slots.wake_all();
    }

    /// Cancels every live pipeline (shutdown). Completed uploads keep their
    /// records and spools so that they resume after a restart.
    pub(crate) fn cancel_all(&self) {
        for l in lock(&self.live).iter() {
            Self::cancel_live(l, CANCEL_SHUTDOWN);
        }
        self.slots.wake_all();
    }
}
