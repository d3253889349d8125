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
//!   for that before answering, so a 4xx leaves nothing in `storage/`;
//! - a deleted video: the deleter, after the thread has ended;
//! - a job cancelled by shutdown: nobody; `recovery` re-queues it at start.

use crate::catalog::{Catalog, ErrorInfo, Rendition, SourceInfo, Status};
use crate::config::KeepSource;
use crate::media::{self, Settings};
use crate::spool::{SpoolControl, SpoolReader};
use crate::Error;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// Why a pipeline was cancelled (stored in an `AtomicU8`).
const CANCEL_NONE: u8 = 0;
const CANCEL_SHUTDOWN: u8 = 1;
const CANCEL_DELETE: u8 = 2;

/// A live pipeline, as the registry sees it.
#[derive(Debug)]
struct Live {
    id: String,
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
    /// Free transcode slots (`--jobs` at start), with its condvar.
    free_slots: Mutex<usize>,
    slot_freed: Condvar,
    /// Pipelines alive (uploading, queued or transcoding).
    pending: AtomicUsize,
    max_pending: usize,
    /// Live pipelines, for cancel and shutdown.
    live: Mutex<Vec<Live>>,
    settings: Settings,
    keep_source: KeepSource,
    catalog: Arc<Catalog>,
    metrics: Arc<crate::metrics::Metrics>,
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

/// How often a persisted record follows progress (memory follows 4×/s).
const PERSIST_EVERY: Duration = Duration::from_secs(2);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Jobs {
    pub(crate) fn new(
        jobs: usize,
        max_pending: usize,
        settings: Settings,
        keep_source: KeepSource,
        catalog: Arc<Catalog>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<Self> {
        Arc::new(Jobs {
            free_slots: Mutex::new(jobs.max(1)),
            slot_freed: Condvar::new(),
            pending: AtomicUsize::new(0),
            max_pending,
            live: Mutex::new(Vec::new()),
            settings,
            keep_source,
            catalog,
            metrics,
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
        id: String,
        reader: SpoolReader,
        permit: PendingPermit,
    ) -> Result<JobHandle, Error> {
        self.spawn(id, reader, permit, false)
    }

    /// Re-queues a video whose upload completed before a restart.
    pub(crate) fn start_recovered(
        self: &Arc<Self>,
        id: String,
        reader: SpoolReader,
    ) -> Result<(), Error> {
        // Recovered jobs are few and were accepted already: they may exceed
        // `--max-pending` rather than be dropped.
        self.pending.fetch_add(1, Ordering::AcqRel);
        let permit = PendingPermit(self.clone());
        self.spawn(id, reader, permit, true).map(drop)
    }

    fn spawn(
        self: &Arc<Self>,
        id: String,
        reader: SpoolReader,
        permit: PendingPermit,
        recovered: bool,
    ) -> Result<JobHandle, Error> {
        let (probe_tx, probe) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let (ended_tx, ended) = watch::channel(false);
        let running = Arc::new(AtomicBool::new(false));
        let cancel = Arc::new(AtomicBool::new(false));
        let reason = Arc::new(AtomicU8::new(CANCEL_NONE));
        lock(&self.live).push(Live {
            id: id.clone(),
            cancel: cancel.clone(),
            reason: reason.clone(),
            spool: reader.control(),
            ended,
        });
        let ctx = Pipeline {
            jobs: self.clone(),
            id: id.clone(),
            cancel,
            reason,
            running: running.clone(),
            recovered,
        };
        std::thread::Builder::new()
            .name(format!("job-{}", &id[..8.min(id.len())]))
            .spawn(move || {
                let _permit = permit;
                ctx.run(reader, probe_tx);
                let _ = done_tx.send(());
                let _ = ended_tx.send(true);
            })
            .map_err(|e| {
                self.remove_live(&id);
                Error::Internal(format!("cannot start a job thread: {e}"))
            })?;
        Ok(JobHandle {
            probe,
            done,
            running,
        })
    }

    fn remove_live(&self, id: &str) {
        lock(&self.live).retain(|l| l.id != id);
    }

    fn cancel_live(l: &Live, reason: u8) {
        l.reason.store(reason, Ordering::Release);
        l.cancel.store(true, Ordering::Release);
        l.spool.abort();
    }

    /// Cancels video `id`'s pipeline, if any, for deletion; resolves when its
    /// thread has ended (or after `wait`).
    pub(crate) async fn cancel_for_delete(&self, id: &str, wait: Duration) {
        let ended = {
            let live = lock(&self.live);
            live.iter().find(|l| l.id == id).map(|l| {
                Self::cancel_live(l, CANCEL_DELETE);
                l.ended.clone()
            })
        };
        self.slot_freed.notify_all();
        if let Some(mut ended) = ended {
            let _ = tokio::time::timeout(wait, ended.wait_for(|e| *e)).await;
        }
    }

    /// Cancels every live pipeline (shutdown). Completed uploads keep their
    /// records and spools so that they resume after a restart.
    pub(crate) fn cancel_all(&self) {
        for l in lock(&self.live).iter() {
            Self::cancel_live(l, CANCEL_SHUTDOWN);
        }
        self.slot_freed.notify_all();
    }

    /// Blocks until a transcode slot is free; `None` if cancelled meanwhile.
    /// Also gives up when the upload is aborted meanwhile (a 413/408 or a
    /// gone client must not wait for a busy encoder to be answered).
    fn acquire_slot(
        self: &Arc<Self>,
        cancel: &AtomicBool,
        spool: Option<&SpoolControl>,
    ) -> Option<SlotGuard> {
        let mut free = lock(&self.free_slots);
        loop {
            if cancel.load(Ordering::Acquire) || spool.is_some_and(SpoolControl::is_aborted) {
                return None;
            }
            if *free > 0 {
                *free -= 1;
                return Some(SlotGuard(self.clone()));
            }
            free = match self
                .slot_freed
                .wait_timeout(free, Duration::from_millis(250))
            {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// A held transcode slot; freed on drop.
struct SlotGuard(Arc<Jobs>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        *lock(&self.0.free_slots) += 1;
        self.0.slot_freed.notify_one();
    }
}

/// One pipeline thread's context.
struct Pipeline {
    jobs: Arc<Jobs>,
    id: String,
    cancel: Arc<AtomicBool>,
    reason: Arc<AtomicU8>,
    running: Arc<AtomicBool>,
    /// Re-queued at start: its upload was accepted long ago, so a probe
    /// failure marks it failed instead of erasing it.
    recovered: bool,
}

/// How a pipeline ended badly.
enum Failure {
    /// The probe refused the file.
    Rejected(Error),
    /// The job failed after the probe.
    Failed(Error),
}

impl Pipeline {
    fn run(self, reader: SpoolReader, probe_tx: oneshot::Sender<Result<SourceInfo, Error>>) {
        let spool = reader.control();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.probe_and_transcode(reader, probe_tx)
        }))
        .unwrap_or_else(|_| {
            Err(Failure::Failed(Error::Internal(
                "the job thread panicked".into(),
            )))
        });
        self.jobs.remove_live(&self.id);
        let reason = self.reason.load(Ordering::Acquire);
        match outcome {
            Ok(()) => {}
            // The deleter removes everything once we are gone.
            Err(_) if reason == CANCEL_DELETE => {}
            // An upload that never completed (rejected, cut off, or cut by
            // shutdown): nothing of it may remain.
            Err(_) if spool.is_aborted() => self.discard(),
            Err(Failure::Rejected(_)) if !self.recovered => self.discard(),
            // Shutdown: keep record and spool; `recovery` re-queues it.
            Err(_) if reason == CANCEL_SHUTDOWN => {
                tracing::info!(id = %self.id, "job stopped by shutdown; it resumes at the next start");
            }
            Err(Failure::Rejected(e) | Failure::Failed(e)) => self.fail(e),
        }
    }

    fn probe_and_transcode(
        &self,
        reader: SpoolReader,
        probe_tx: oneshot::Sender<Result<SourceInfo, Error>>,
    ) -> Result<(), Failure> {
        let mut settings = self.jobs.settings.clone();
        if let Some(rec) = self.jobs.catalog.get(&self.id) {
            settings.encrypt = rec.encrypted;
        }
        let settings = &settings;
        let catalog = &self.jobs.catalog;
        // Kept for a second pass if the copy fast path has to give up.
        let spare = reader.try_clone().ok();
        let source = match media::open_spool(reader, self.cancel.clone(), settings) {
            Ok(s) => s,
            Err(e) => {
                let shown = Error::clone_for_client(&e);
                let _ = probe_tx.send(Err(e));
                return Err(Failure::Rejected(shown));
            }
        };
        let spool = source.spool.clone();
        let info = source.info.clone();
        let duration = info.duration;
        let _ = catalog.update(&self.id, true, |r| r.source = Some(info.clone()));
        let _ = probe_tx.send(Ok(info));
        let Some(_slot) = self.jobs.acquire_slot(&self.cancel, spool.as_ref()) else {
            return Err(Failure::Failed(Error::Cancelled));
        };
        self.running.store(true, Ordering::Release);
        let _ = catalog.update(&self.id, true, |r| {
            if spool.as_ref().is_none_or(|s| s.is_finished()) {
                r.status = Status::Processing;
            }
        });
        tracing::info!(id = %self.id, "job started");
        let started = Instant::now();
        let (mut last_mem, mut last_disk) = (Instant::now(), Instant::now());
        let mut first = true;
        let mut on_progress = |rungs: &[media::RungProgress]| {
            if !first && last_mem.elapsed() < Duration::from_millis(250) {
                return;
            }
            last_mem = Instant::now();
            let persist = first || last_disk.elapsed() >= PERSIST_EVERY;
            first = false;
            if persist {
                last_disk = Instant::now();
            }
            let total = duration.filter(|d| *d > 0.0);
            let frac = |secs: f64| total.map_or(0.0, |t| (secs / t).clamp(0.0, 0.99));
            let _ = catalog.update(&self.id, persist, |r| {
                let single = rungs.len() == 1;
                r.renditions = rungs
                    .iter()
                    .map(|g| Rendition {
                        playlist: if single {
                            media::PLAYLIST.to_owned()
                        } else {
                            format!("{}/{}", g.name, media::PLAYLIST)
                        },
                        name: g.name.clone(),
                        width: g.width,
                        height: g.height,
                        copied: g.copied,
                        progress: frac(g.seconds),
                        ..Rendition::default()
                    })
                    .collect();
                // Overall: the slowest rung.
                r.progress = r
                    .renditions
                    .iter()
                    .map(|x| x.progress)
                    .fold(f64::INFINITY, f64::min)
                    .min(0.99);
            });
        };
        let dir = catalog.dir(&self.id);
        let out = match media::transcode(source, &dir, settings, &self.cancel, &mut on_progress) {
            Err(Error::CopyFallback(why)) => {
                // The source's keyframes cannot make the segments: start
                // over from the spool, encoding every rung.
                tracing::info!(id = %self.id, reason = %why, "copy fast path abandoned; encoding");
                remove_outputs(&dir, true);
                let mut again = settings.clone();
                again.copy = crate::config::CopyMode::Never;
                let reader = spare
                    .ok_or_else(|| Error::Internal("no second reader of the spool".into()))
                    .map_err(Failure::Failed)?;
                let source = media::open_spool(reader, self.cancel.clone(), &again)
                    .map_err(Failure::Failed)?;
                media::transcode(source, &dir, &again, &self.cancel, &mut on_progress).map(
                    |mut p| {
                        p.copy_note = Some(why);
                        p
                    },
                )
            }
            other => other,
        }
        .map_err(Failure::Failed)?;
        let media::Produced {
            info: mut out,
            renditions,
            copied,
            copy_note,
        } = out;
        let secs = started.elapsed().as_secs_f64();
        let waited = spool.as_ref().map_or(0.0, |s| s.waited().as_secs_f64());
        out.processing_seconds = (secs - waited).max(0.0);
        tracing::info!(id = %self.id, seconds = secs, media_seconds = out.duration,
            realtime = out.duration / secs.max(1e-9), rungs = renditions.len(), copied, "job done");
        self.jobs
            .metrics
            .job_finished(secs, out.duration, out.frames);
        if self.jobs.keep_source != KeepSource::Always {
            let _ = std::fs::remove_file(dir.join(crate::ingest::SOURCE_FILE));
        }
        let size = dir_size(&dir);
        let _ = catalog.update(&self.id, true, |r| {
            r.status = Status::Ready;
            r.progress = 1.0;
            r.renditions = renditions;
            r.copied = copied;
            r.copy_note = copy_note;
            r.output = Some(out);
            r.storage_bytes = size;
        });
        Ok(())
    }

    /// Removes every file of a rejected upload and forgets its record.
    fn discard(&self) {
        self.jobs.catalog.forget(&self.id);
        let dir = self.jobs.catalog.dir(&self.id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::error!(id = %self.id, error = %e, "cannot remove a rejected upload");
            }
        }
    }

    /// Records a failure after the upload was accepted: keeps `meta.json`
    /// (and the spool unless `--keep-source never`), removes the outputs.
    fn fail(&self, e: Error) {
        if e.is_server_fault() {
            tracing::error!(id = %self.id, error = %e, "job failed");
        } else {
            tracing::info!(id = %self.id, error = %e, "job failed");
        }
        self.jobs
            .metrics
            .jobs_failed
            .fetch_add(1, Ordering::Relaxed);
        let catalog = &self.jobs.catalog;
        let dir = catalog.dir(&self.id);
        let keep_spool = self.jobs.keep_source != KeepSource::Never;
        remove_outputs(&dir, keep_spool);
        let size = dir_size(&dir);
        let _ = catalog.update(&self.id, true, |r| {
            r.status = Status::Failed;
            r.error = Some(ErrorInfo {
                code: e.code().to_owned(),
                message: e.public_message(),
            });
            r.storage_bytes = size;
        });
    }
}

/// Removes everything in a video folder but its record (and its spool when
/// `keep_spool`).
pub(crate) fn remove_outputs(dir: &std::path::Path, keep_spool: bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == crate::catalog::META_FILE || (keep_spool && name == crate::ingest::SOURCE_FILE) {
            continue;
        }
        let path = entry.path();
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

/// Bytes in the files under `dir` (not following links).
pub(crate) fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| {
            let m = e.path().symlink_metadata().ok()?;
            Some(if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            })
        })
        .sum()
}
