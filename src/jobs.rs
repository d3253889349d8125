//! Jobs: one dedicated OS thread per upload ("pipeline"), at most
//! `--max-pending` alive, at most `--jobs` transcoding at once.
//!
//! A pipeline opens and probes the upload as soon as its first bytes are on
//! the spool (cheap, not limited by `--jobs`, so a bad upload is refused
//! while it arrives even when the encoder is busy), reports the probe to the
//! ingest, then waits for a transcode slot (`queued`) and transcodes.
//!
//! Cleanup has one owner: the pipeline thread. When the upload is rejected
//! or cut off (spool aborted, or probe failed) it removes the whole video
//! folder and forgets the record, then signals `done`; the ingest waits for
//! that before answering, so a 4xx leaves nothing in `storage/`.

use crate::catalog::{Catalog, ErrorInfo, SourceInfo, Status};
use crate::media::{self, Settings};
use crate::spool::{SpoolControl, SpoolReader};
use crate::Error;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The job system, shared by the HTTP layer.
#[derive(Debug)]
pub(crate) struct Jobs {
    /// Free transcode slots (`--jobs` at start), with its condvar.
    free_slots: Mutex<usize>,
    slot_freed: Condvar,
    /// Pipelines alive (uploading, queued or transcoding).
    pending: AtomicUsize,
    max_pending: usize,
    /// Cancel flags of live pipelines, for shutdown.
    live: Mutex<Vec<(String, Arc<AtomicBool>, SpoolControl)>>,
    settings: Settings,
    catalog: Arc<Catalog>,
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

impl Jobs {
    pub(crate) fn new(
        jobs: usize,
        max_pending: usize,
        settings: Settings,
        catalog: Arc<Catalog>,
    ) -> Arc<Self> {
        Arc::new(Jobs {
            free_slots: Mutex::new(jobs.max(1)),
            slot_freed: Condvar::new(),
            pending: AtomicUsize::new(0),
            max_pending,
            live: Mutex::new(Vec::new()),
            settings,
            catalog,
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

    /// Starts the pipeline thread for video `id` reading `reader`.
    pub(crate) fn start(
        self: &Arc<Self>,
        id: String,
        reader: SpoolReader,
        permit: PendingPermit,
    ) -> Result<JobHandle, Error> {
        let (probe_tx, probe) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let running = Arc::new(AtomicBool::new(false));
        let cancel = Arc::new(AtomicBool::new(false));
        let spool = reader.control();
        self.lock_live().push((id.clone(), cancel.clone(), spool));
        let ctx = Pipeline {
            jobs: self.clone(),
            id: id.clone(),
            cancel,
            running: running.clone(),
        };
        std::thread::Builder::new()
            .name(format!("job-{}", &id[..8.min(id.len())]))
            .spawn(move || {
                let _permit = permit;
                ctx.run(reader, probe_tx);
                let _ = done_tx.send(());
            })
            .map_err(|e| Error::Internal(format!("cannot start a job thread: {e}")))?;
        Ok(JobHandle {
            probe,
            done,
            running,
        })
    }

    /// Cancels every live pipeline (shutdown). Their records end `failed`.
    pub(crate) fn cancel_all(&self) {
        for (_, cancel, spool) in self.lock_live().iter() {
            cancel.store(true, Ordering::Relaxed);
            spool.abort();
        }
        self.slot_freed.notify_all();
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, Vec<(String, Arc<AtomicBool>, SpoolControl)>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks until a transcode slot is free; `None` if cancelled meanwhile.
    fn acquire_slot(self: &Arc<Self>, cancel: &AtomicBool) -> Option<SlotGuard> {
        let mut free = self.free_slots.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if cancel.load(Ordering::Relaxed) {
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
        *self.0.free_slots.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.slot_freed.notify_one();
    }
}

/// One pipeline thread's context.
struct Pipeline {
    jobs: Arc<Jobs>,
    id: String,
    cancel: Arc<AtomicBool>,
    running: Arc<AtomicBool>,
}

impl Pipeline {
    fn run(self, reader: SpoolReader, probe_tx: oneshot::Sender<Result<SourceInfo, Error>>) {
        let spool = reader.control();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.probe_and_transcode(reader, probe_tx)
        }));
        let outcome = outcome.unwrap_or_else(|_| {
            Err(Failure::Failed(Error::Internal(
                "the job thread panicked".into(),
            )))
        });
        self.jobs.lock_live().retain(|(id, _, _)| id != &self.id);
        match outcome {
            Ok(()) => {}
            // Probe failed or the upload never completed: the upload is
            // rejected, so nothing of it may remain.
            Err(Failure::Rejected) => self.discard(),
            Err(Failure::Failed(_)) if spool.is_aborted() => self.discard(),
            Err(Failure::Failed(e)) => self.fail(e),
        }
    }

    fn probe_and_transcode(
        &self,
        reader: SpoolReader,
        probe_tx: oneshot::Sender<Result<SourceInfo, Error>>,
    ) -> Result<(), Failure> {
        let settings = &self.jobs.settings;
        let catalog = &self.jobs.catalog;
        let source = match media::open_spool(reader, self.cancel.clone(), settings) {
            Ok(s) => s,
            Err(e) => {
                let _ = probe_tx.send(Err(e));
                return Err(Failure::Rejected);
            }
        };
        let spool = source.spool.clone();
        let info = source.info.clone();
        let duration = info.duration;
        let _ = catalog.update(&self.id, true, |r| r.source = Some(info.clone()));
        let _ = probe_tx.send(Ok(info));
        let Some(_slot) = self.jobs.acquire_slot(&self.cancel) else {
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
        let mut on_progress = |secs: f64| {
            if last_mem.elapsed() < Duration::from_millis(250) {
                return;
            }
            last_mem = Instant::now();
            let persist = last_disk.elapsed() >= PERSIST_EVERY;
            if persist {
                last_disk = Instant::now();
            }
            if let Some(total) = duration.filter(|d| *d > 0.0) {
                let p = (secs / total).clamp(0.0, 0.99);
                let _ = catalog.update(&self.id, persist, |r| r.progress = p);
            }
        };
        let dir = catalog.dir(&self.id);
        let out = media::transcode(source, &dir, settings, &self.cancel, &mut on_progress)
            .map_err(Failure::Failed)?;
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(id = %self.id, seconds = secs, media_seconds = out.duration,
            realtime = out.duration / secs.max(1e-9), "job done");
        let _ = catalog.update(&self.id, true, |r| {
            r.status = Status::Ready;
            r.progress = 1.0;
            r.output = Some(out);
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

    /// Records a failure after the upload was accepted: keeps `meta.json`,
    /// removes the media (partial outputs are worthless and the spool of a
    /// failed video is not kept).
    fn fail(&self, e: Error) {
        if e.is_server_fault() {
            tracing::error!(id = %self.id, error = %e, "job failed");
        } else {
            tracing::info!(id = %self.id, error = %e, "job failed");
        }
        let catalog = &self.jobs.catalog;
        let (code, message) = match &e {
            Error::Cancelled => (
                "interrupted".to_owned(),
                "the server stopped before this video was finished".to_owned(),
            ),
            e => (e.code().to_owned(), e.public_message()),
        };
        let _ = catalog.update(&self.id, true, |r| {
            r.status = Status::Failed;
            r.error = Some(ErrorInfo { code, message });
        });
        let dir = catalog.dir(&self.id);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_name() != crate::catalog::META_FILE {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// How a pipeline ended badly.
enum Failure {
    /// The upload is refused (probe failed): remove everything.
    Rejected,
    /// The job failed; if the spool was aborted the upload is refused too.
    Failed(Error),
}
