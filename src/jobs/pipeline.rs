//! One pipeline thread: probe the upload, wait for a transcode slot,
//! transcode, then record the outcome (ready, failed, or nothing left of a
//! refused upload).

use super::{Jobs, SlotHolder, Start, CANCEL_DELETE, CANCEL_PARK, CANCEL_SHUTDOWN};
use crate::catalog::{CaptionSource, CaptionTrack, Rendition, SourceInfo, Status};
use crate::config::KeepSource;
use crate::media::{self, JobContext, JobEvents, Produced, RungProgress, Settings, Source};
use crate::spool::SpoolReader;
use crate::storage::VideoId;
use crate::Error;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How often a persisted record follows progress (memory follows 4×/s).
const PERSIST_EVERY: Duration = Duration::from_secs(2);
/// How often memory follows progress.
const SHOW_EVERY: Duration = Duration::from_millis(250);

/// One pipeline thread's context.
pub(super) struct Pipeline {
    pub jobs: Arc<Jobs>,
    pub id: VideoId,
    pub cancel: Arc<AtomicBool>,
    pub reason: Arc<AtomicU8>,
    pub running: Arc<AtomicBool>,
    pub start: Start,
}

/// How a pipeline ended badly.
enum Failure {
    /// The probe refused the file.
    Rejected(Error),
    /// The job failed after the probe.
    Failed(Error),
}

impl Pipeline {
    pub(super) fn run(
        self,
        reader: SpoolReader,
        probe_tx: oneshot::Sender<Result<SourceInfo, Error>>,
    ) {
        let spool = reader.control();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.probe_and_transcode(reader, probe_tx)
        }))
        .unwrap_or_else(|_| {
            Err(Failure::Failed(Error::Internal(
                "the job thread panicked".into(),
            )))
        });
        self.jobs.remove_live(self.id);
        let reason = self.reason.load(Ordering::Acquire);
        match outcome {
            Ok(()) => {}
            // The deleter removes everything once we are gone.
            Err(_) if reason == CANCEL_DELETE => {}
            // A resumable upload stopped while its client is away or by
            // shutdown: it goes on when bytes come.
            Err(_)
                if self.start == Start::Resumable
                    && matches!(reason, CANCEL_SHUTDOWN | CANCEL_PARK) =>
            {
                tracing::info!(id = %self.id, "resumable upload's job stopped; it restarts with the next bytes");
            }
            // A resumable upload's refusal is answered to its next request
            // (the verdict waits in its session), which removes it.
            Err(Failure::Rejected(_)) if self.start == Start::Resumable => {}
            // An upload that never completed (rejected, cut off, or cut by
            // shutdown): nothing of it may remain.
            Err(_) if spool.is_aborted() => self.discard(),
            Err(Failure::Rejected(_)) if self.start != Start::Recovered => self.discard(),
            // Shutdown: keep record and spool; `recovery` re-queues it.
            Err(_) if reason == CANCEL_SHUTDOWN => {
                tracing::info!(id = %self.id, "job stopped by shutdown; it resumes at the next start");
            }
            Err(Failure::Rejected(e) | Failure::Failed(e)) => self.fail(e),
        }
    }

    /// The settings of this video (encryption is per video).
    fn settings(&self) -> (Settings, u32) {
        let mut settings = self.jobs.settings.clone();
        let rec = self.jobs.catalog.get(self.id);
        if let Some(rec) = &rec {
            settings.encrypt = rec.encrypted;
        }
        (settings, rec.map_or(0, |r| r.generation))
    }

    fn probe_and_transcode(
        &self,
        mut reader: SpoolReader,
        probe_tx: oneshot::Sender<Result<SourceInfo, Error>>,
    ) -> Result<(), Failure> {
        let (settings, generation) = self.settings();
        // A job waiting for upload bytes gives its slot to others meanwhile.
        let slot = SlotHolder::new(&self.jobs.slots);
        reader.set_wait_hook(Arc::new(YieldSlot {
            slot: slot.clone(),
            yielded: AtomicBool::new(false),
            cancel: self.cancel.clone(),
            spool: reader.control(),
        }));
        // Kept for a second pass if the copy fast path has to give up.
        let spare = reader.try_clone().ok();
        let source = match media::open_spool(reader, self.cancel.clone(), &settings) {
            Ok(s) => s,
            Err(e) => {
                let shown = Error::clone_for_client(&e);
                let _ = probe_tx.send(Err(e));
                return Err(Failure::Rejected(shown));
            }
        };
        let spool = source.spool.clone();
        let info = source.info.clone();
        let _ = self
            .jobs
            .catalog
            .update(self.id, true, |r| r.source = Some(info.clone()));
        let _ = probe_tx.send(Ok(info));
        let stop = || {
            self.cancel.load(Ordering::Acquire) || spool.as_ref().is_some_and(|s| s.is_aborted())
        };
        if !slot.acquire(&stop) {
            return Err(Failure::Failed(Error::Cancelled));
        }
        self.running.store(true, Ordering::Release);
        let _ = self.jobs.catalog.update(self.id, true, |r| {
            if spool.as_ref().is_none_or(|s| s.is_finished()) {
                r.status = Status::Processing;
            }
        });
        tracing::info!(id = %self.id, "job started");
        let started = Instant::now();
        let produced = self
            .transcode(source, spare, &settings, generation)
            .map_err(Failure::Failed)?;
        let waited = spool.as_ref().map_or(Duration::ZERO, |s| s.waited());
        self.ready(
            produced,
            started.elapsed().saturating_sub(waited),
            started.elapsed(),
        );
        Ok(())
    }

    fn transcode(
        &self,
        source: Source,
        spare: Option<SpoolReader>,
        settings: &Settings,
        generation: u32,
    ) -> Result<Produced, Error> {
        let store = self.jobs.catalog.store();
        let ctx = JobContext {
            store,
            id: self.id,
            settings,
            generation,
            cancel: &self.cancel,
        };
        let mut spare = spare;
        let mut reopen = |s: &Settings| {
            let reader = spare
                .take()
                .ok_or_else(|| Error::Internal("no second reader of the spool".into()))?;
            media::open_spool(reader, self.cancel.clone(), s)
        };
        let mut events = Events::new(self, source.info.duration);
        media::transcode(source, &mut reopen, &ctx, &mut events)
    }

    /// Records a finished video: ready, the older generations swept, the
    /// spool removed unless kept.
    fn ready(&self, p: Produced, work: Duration, wall: Duration) {
        let Produced {
            info: mut out,
            renditions,
            copied,
            copy_note,
            generation,
            captions,
            audio_tracks,
            storyboard,
            download,
            notes,
        } = p;
        out.processing_seconds = work.as_secs_f64();
        let secs = wall.as_secs_f64();
        tracing::info!(id = %self.id, seconds = secs, media_seconds = out.duration,
            realtime = out.duration / secs.max(1e-9), rungs = renditions.len(), copied, "job done");
        self.jobs
            .metrics
            .job_finished(secs, out.duration, out.frames);
        let store = self.jobs.catalog.store();
        // Folders in use: the rungs, the caption tracks (this job's and the
        // uploaded ones), the audio renditions.
        let uploaded = Events::uploaded(&self.jobs.catalog, self.id);
        let keep: Vec<&str> = renditions
            .iter()
            .map(|r| r.name.as_str())
            .chain(captions.iter().chain(&uploaded).map(|c| c.dir.as_str()))
            .chain(audio_tracks.iter().map(|a| a.dir.as_str()))
            .collect();
        store.remove_stale(self.id, generation, &keep);
        if self.jobs.keep_source != KeepSource::Always {
            let _ = store.remove_source(self.id);
        }
        // In a bucket: the working files here are copies now.
        // (The upload too when the bucket keeps its copy.)
        let keep_spool = self.jobs.keep_source == KeepSource::Always && !store.keeps_uploads();
        store.clear_scratch(self.id, keep_spool);
        let size = store.size(self.id);
        self.jobs.quota.settle(self.id, size);
        // Everything but the status first: "ready" is said only once the
        // uploaded captions are refitted and the master names them.
        let _ = self.jobs.catalog.update(self.id, true, |r| {
            r.renditions = renditions.clone();
            r.copied = copied;
            r.copy_note = copy_note.clone();
            r.output = Some(out.clone());
            r.storage_bytes = size;
            r.generation = generation;
            // Uploaded captions stay; embedded ones are this job's.
            r.captions.retain(|c| c.source == CaptionSource::Uploaded);
            r.captions.extend(captions.iter().cloned());
            r.audio_tracks = audio_tracks.clone();
            r.storyboard = storyboard;
            r.download = download;
            r.notes = notes.clone();
        });
        super::captions::refit_uploaded(
            &self.jobs.catalog,
            self.id,
            self.jobs.settings.segment_seconds,
        );
        self.announce_ready();
    }

    /// Says the video is ready, under its captions and master locks: a
    /// single rendition made flat while captions were uploaded first gets
    /// its master (the job's own master already lists them otherwise). A
    /// caption change made before this is in the record read here; one made
    /// after it sees a ready video and publishes itself.
    fn announce_ready(&self) {
        let catalog = &self.jobs.catalog;
        let store = catalog.store();
        let _captions = store.captions_lock(self.id);
        let _master = store.master_lock(self.id);
        let Some(rec) = catalog.get(self.id) else {
            return;
        };
        let moved = if rec.is_flat() {
            media::republish_locked(store, &rec).unwrap_or_else(|e| {
                tracing::warn!(id = %self.id, error = %e, "could not add captions to the master");
                None
            })
        } else {
            None
        };
        let _ = catalog.update(self.id, true, |r| {
            if let (Some(p), Some(first)) = (&moved, r.renditions.first_mut()) {
                first.playlist = p.clone();
            }
            r.status = Status::Ready;
            r.progress = 1.0;
        });
    }

    /// Removes every file of a rejected upload and forgets its record.
    fn discard(&self) {
        self.jobs.quota.forget(self.id);
        self.jobs.catalog.forget(self.id);
        if let Err(e) = self.jobs.catalog.store().remove_video(self.id) {
            tracing::error!(id = %self.id, error = %e, "cannot remove a rejected upload");
        }
    }

    /// Records a failure after the upload was accepted: keeps the record
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
        let store = self.jobs.catalog.store();
        store.remove_outputs(self.id, self.jobs.keep_source != KeepSource::Never);
        let size = store.size(self.id);
        self.jobs.quota.settle(self.id, size);
        let failed = |r: &mut crate::catalog::Record| {
            r.fail(e.code(), &e.public_message());
            r.storage_bytes = size;
        };
        if let Err(w) = self.jobs.catalog.update(self.id, true, failed) {
            // The store is down: this node says so now, and the lease
            // renewer writes it once the store answers.
            tracing::warn!(id = %self.id, error = %w, "cannot write the failure to the store");
            let _ = self.jobs.catalog.update(self.id, false, failed);
            self.jobs.note_unwritten_failure(self.id, &e, size);
        }
    }
}

/// Gives a job's transcode slot back while its reader waits for the upload
/// (a slow upload never holds the encoder), and takes one again when the
/// bytes come.
struct YieldSlot {
    slot: Arc<SlotHolder>,
    /// The slot was given back by this hook (not never taken).
    yielded: AtomicBool,
    cancel: Arc<AtomicBool>,
    spool: crate::spool::SpoolControl,
}

impl crate::spool::WaitHook for YieldSlot {
    fn waiting(&self) {
        if self.slot.is_held() {
            self.slot.release();
            self.yielded.store(true, Ordering::Release);
        }
    }

    fn resumed(&self) -> bool {
        if !self.yielded.swap(false, Ordering::AcqRel) {
            return true;
        }
        let stop = || self.cancel.load(Ordering::Acquire) || self.spool.is_aborted();
        self.slot.acquire(&stop)
    }
}

/// What a running job reports, turned into record updates.
struct Events<'a> {
    p: &'a Pipeline,
    duration: Option<f64>,
    last_mem: Instant,
    last_disk: Instant,
    first: bool,
}

impl<'a> Events<'a> {
    fn new(p: &'a Pipeline, duration: Option<f64>) -> Self {
        Events {
            p,
            duration: duration.filter(|d| *d > 0.0),
            last_mem: Instant::now(),
            last_disk: Instant::now(),
            first: true,
        }
    }
}

impl Events<'_> {
    /// The caption tracks uploaded for video `id`.
    fn uploaded(catalog: &crate::catalog::Catalog, id: VideoId) -> Vec<CaptionTrack> {
        catalog
            .peek(id, |r| {
                r.captions
                    .iter()
                    .filter(|c| c.source == CaptionSource::Uploaded)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl JobEvents for Events<'_> {
    fn progress(&mut self, rungs: &[RungProgress]) {
        if !self.first && self.last_mem.elapsed() < SHOW_EVERY {
            return;
        }
        self.last_mem = Instant::now();
        let persist = self.first || self.last_disk.elapsed() >= PERSIST_EVERY;
        self.first = false;
        if persist {
            self.last_disk = Instant::now();
        }
        let total = self.duration;
        let frac = |secs: f64| total.map_or(0.0, |t| (secs / t).clamp(0.0, 0.99));
        let _ = self.p.jobs.catalog.update(self.p.id, persist, |r| {
            r.renditions = rungs
                .iter()
                .map(|g| Rendition {
                    playlist: g.playlist.clone(),
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
    }

    fn planned(&mut self, bytes: u64) -> Result<(), Error> {
        let quota = &self.p.jobs.quota;
        quota
            .reserve(self.p.id, bytes)
            .map_err(|_| Error::QuotaExceeded {
                limit: quota.limit().unwrap_or(0),
            })
    }

    fn published(&mut self, bytes: u64) -> Result<(), Error> {
        let quota = &self.p.jobs.quota;
        quota
            .store(self.p.id, bytes)
            .map_err(|_| Error::QuotaExceeded {
                limit: quota.limit().unwrap_or(0),
            })
    }

    fn uploaded_captions(&self) -> Vec<CaptionTrack> {
        Events::uploaded(&self.p.jobs.catalog, self.p.id)
    }

    fn new_generation(&mut self, generation: u32, _why: &str) -> Result<(), Error> {
        self.p
            .jobs
            .catalog
            .update(self.p.id, true, |r| r.generation = generation)?;
        Ok(())
    }
}
