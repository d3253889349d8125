//! One pipeline thread: probe the upload, wait for a transcode slot,
//! transcode, then record the outcome (ready, failed, or nothing left of a
//! refused upload).

use super::{Jobs, SlotHolder, Start, CANCEL_DELETE, CANCEL_PARK, CANCEL_SHUTDOWN};
use crate::catalog::{CaptionSource, CaptionTrack, Change, Outputs, SourceInfo};
use crate::config::KeepSource;
use crate::media::{self, JobContext, Produced, Settings, Source};
use crate::spool::SpoolReader;
use crate::storage::VideoId;
use crate::Error;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use super::events::{Events, YieldSlot};

/// One pipeline thread's context.
pub(super) struct Pipeline {
    pub jobs: Arc<Jobs>,
    pub id: VideoId,
    pub cancel: Arc<AtomicBool>,
    pub reason: Arc<AtomicU8>,
    pub running: Arc<AtomicBool>,
    pub start: Start,
}

/// A live broadcast's segment duration at most, seconds.
const LIVE_SEGMENT_SECONDS: u32 = 2;

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
            // An import not all in: its importer records why.
            Err(_) if self.start == Start::Import && !spool.is_finished() => {}
            Err(e) if self.start == Start::Live => self.live_failed(e, &spool, reason),
            // An upload that never completed (rejected, cut off, or cut by
            // shutdown): nothing of it may remain.
            Err(_) if spool.is_aborted() => self.discard(),
            Err(Failure::Rejected(_))
                if !matches!(self.start, Start::Recovered | Start::Import) =>
            {
                self.discard()
            }
            // Shutdown: keep record and spool; `recovery` re-queues it.
            Err(_) if reason == CANCEL_SHUTDOWN => {
                tracing::info!(id = %self.id, "job stopped by shutdown; it resumes at the next start");
            }
            Err(Failure::Rejected(e) | Failure::Failed(e)) => self.fail(e),
        }
    }

    /// A live's job that did not finish. Refused by the probe: its
    /// broadcast's end leaves the live awaiting its publisher. Stopped by
    /// shutdown or its broadcast's end (the spool aborted): recovery keeps
    /// what came. Failed while arriving: the video fails and its
    /// publisher is cut (its spool aborted).
    fn live_failed(&self, e: Failure, spool: &crate::spool::SpoolControl, reason: u8) {
        match e {
            Failure::Rejected(_) => {}
            _ if reason == CANCEL_SHUTDOWN || spool.is_aborted() => {}
            Failure::Failed(e) => {
                spool.abort();
                self.fail(e);
            }
        }
    }

    /// The settings of this video (encryption is per video).
    fn settings(&self) -> (Settings, u32) {
        let mut settings = self.jobs.settings.clone();
        let rec = self.jobs.catalog.get(self.id);
        if let Some(rec) = &rec {
            settings.encrypt = rec.encrypted;
            settings.codecs =
                crate::config::Codecs::parse(&rec.codecs.join(",")).unwrap_or_default();
            // A clip's source (`media::cut`) may change parameter sets at
            // its copied IDRs and is at CRF 16 elsewhere: never a rung.
            settings.clip = rec.clip.is_some();
            // A live's segments are short: a player stays ~3 of them behind
            // the live edge.
            if let Some(live) = &rec.live {
                settings.segment_seconds = settings.segment_seconds.min(LIVE_SEGMENT_SECONDS);
                let own = live.ladder.as_deref().map(crate::config::Ladder::parse);
                if let Some(Ok(ladder)) = own {
                    settings.ladder = ladder;
                }
                settings.live_window = (!live.record).then_some(settings.live_window_secs);
                settings.live_low = live.latency == "low";
                // It comes in real time (nothing to encode ahead), and a
                // publisher back moves one chain's keyframe grid.
                settings.chunk_workers = 1;
            }
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
        let live = self.start == Start::Live;
        if !live {
            reader.set_wait_hook(Arc::new(YieldSlot {
                slot: slot.clone(),
                yielded: AtomicBool::new(false),
                cancel: self.cancel.clone(),
                spool: reader.control(),
            }));
        }
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
        let probed = Change::Probed(Box::new(info.clone()));
        if let Err(e) = self.jobs.videos.apply(self.id, probed) {
            let _ = probe_tx.send(Err(Error::clone_for_client(&e)));
            return Err(Failure::Failed(e));
        }
        let _ = probe_tx.send(Ok(info));
        let stop = || {
            self.cancel.load(Ordering::Acquire) || spool.as_ref().is_some_and(|s| s.is_aborted())
        };
        if !live && !slot.acquire(&stop) {
            return Err(Failure::Failed(Error::Cancelled));
        }
        self.running.store(true, Ordering::Release);
        let upload_complete = spool.as_ref().is_none_or(|s| s.is_finished());
        let _ = self
            .jobs
            .videos
            .apply(self.id, Change::Started { upload_complete });
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
        let live = self.start == Start::Live;
        let mut events = Events::new(&self.jobs, self.id, source.info.duration, live);
        media::transcode(source, &mut reopen, &ctx, &mut events)
    }

    /// Records a finished video: its outputs (older generations swept),
    /// its uploaded captions refitted, `ready` durable; only then the
    /// spool and the scratch go (a crash before leaves a video recovery
    /// transcodes again, never one whose outputs it throws away).
    fn ready(&self, p: Produced, work: Duration, wall: Duration) {
        let generation = p.generation;
        let mut out = p.info;
        out.processing_seconds = work.as_secs_f64();
        let secs = wall.as_secs_f64();
        tracing::info!(id = %self.id, seconds = secs, media_seconds = out.duration,
            realtime = out.duration / secs.max(1e-9), rungs = p.renditions.len(),
            copied = p.copied, "job done");
        self.jobs
            .metrics
            .job_finished(secs, out.duration, out.frames);
        let outputs = Outputs {
            renditions: p.renditions,
            output: out,
            copied: p.copied,
            copy_note: p.copy_note,
            generation,
            captions: p.captions,
            audio_tracks: p.audio_tracks,
            storyboard: p.storyboard,
            download: p.download,
            notes: p.notes,
            colour: p.colour,
            storage_bytes: 0,
        };
        if let Err(e) = self.record_outputs(outputs) {
            tracing::info!(id = %self.id, error = %e, "finished job not recorded");
            return;
        }
        crate::failpoint!("ready.after_outputs");
        let videos = &self.jobs.videos;
        super::captions::refit_uploaded(videos, self.id, self.jobs.settings.segment_seconds);
        crate::failpoint!("ready.after_refit");
        if !self.announce_ready() {
            return;
        }
        crate::failpoint!("ready.after_ready");
        self.clean_up();
    }

    /// Under the video's door: older generations and folders no longer
    /// in use swept (the folders of this job's renditions, tracks and of
    /// the uploaded tracks as the record has them now), then the outputs
    /// recorded. An embedded track whose folder an uploaded one took
    /// meanwhile is not kept (a PUT replaces its language's track).
    fn record_outputs(&self, mut o: Outputs) -> Result<(), Error> {
        let videos = &self.jobs.videos;
        let mut held = videos.hold(self.id)?;
        let uploaded: Vec<CaptionTrack> = held
            .record()
            .captions
            .iter()
            .filter(|c| c.source == CaptionSource::Uploaded)
            .cloned()
            .collect();
        let keep: Vec<&str> = o
            .renditions
            .iter()
            .map(|r| r.name.as_str())
            .chain(o.captions.iter().chain(&uploaded).map(|c| c.dir.as_str()))
            .chain(o.audio_tracks.iter().map(|a| a.dir.as_str()))
            .collect();
        let store = held.store().clone();
        store.remove_stale(self.id, o.generation, &keep);
        crate::failpoint!("ready.after_sweep");
        // What it holds once the spool goes (see `clean_up`).
        let spool = match self.jobs.keep_source {
            KeepSource::Always => 0,
            _ => std::fs::metadata(store.path(self.id, crate::storage::names::SOURCE_FILE))
                .map_or(0, |m| m.len()),
        };
        o.storage_bytes = store.size(self.id).saturating_sub(spool);
        // The ledger says so from `ready` on (`clean_up` corrects it).
        self.jobs.quota.settle(self.id, o.storage_bytes);
        let dropped: Vec<CaptionTrack> = o
            .captions
            .iter()
            .filter(|c| uploaded.iter().any(|u| u.dir == c.dir))
            .cloned()
            .collect();
        held.apply(Change::Outputs(Box::new(o)))?;
        for c in &dropped {
            super::captions::remove_version(videos, self.id, c);
        }
        Ok(())
    }

    /// Says the video is ready, under its door and master lock: a single
    /// rendition made flat while captions were uploaded first gets its
    /// master (the job's own master already lists them otherwise). A
    /// caption change made before this is in the record read here; one
    /// made after it sees a ready video and publishes itself. False when
    /// the video is gone (deleted meanwhile).
    fn announce_ready(&self) -> bool {
        let videos = &self.jobs.videos;
        let Ok(mut held) = videos.hold(self.id) else {
            return false;
        };
        let store = held.store().clone();
        let _master = store.master_lock(self.id);
        let rec = held.record().clone();
        if rec.is_flat() {
            match crate::hls::master::republish_locked(&store, &rec) {
                Ok(Some(p)) => {
                    let _ = held.apply(Change::FirstPlaylist(p));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(id = %self.id, error = %e, "could not add captions to the master")
                }
            }
        }
        held.apply(Change::Ready).is_ok()
    }

    /// What a ready video no longer needs: its spool (unless kept) and,
    /// with a bucket, this node's scratch; then what it stores, measured.
    fn clean_up(&self) {
        let videos = &self.jobs.videos;
        let store = videos.store();
        if self.jobs.keep_source != KeepSource::Always {
            let _ = store.remove_source(self.id);
        }
        crate::failpoint!("ready.after_source");
        // In a bucket: the working files here are copies now.
        // (The upload too when the bucket keeps its copy.)
        let keep_spool = self.jobs.keep_source == KeepSource::Always && !store.keeps_uploads();
        store.clear_scratch(self.id, keep_spool);
        let size = store.size(self.id);
        self.jobs.quota.settle(self.id, size);
        let _ = videos.apply(self.id, Change::Stored(size));
    }

    /// Removes every file of a rejected upload and forgets its record
    /// (through the tombstone: a crash part-way finishes it at the next
    /// start). Nobody was told of it, so no event says it went.
    fn discard(&self) {
        let videos = &self.jobs.videos;
        let gone = videos
            .tombstone(self.id)
            .and_then(|_| videos.remove(self.id));
        if let Err(e) = gone {
            if !matches!(e, Error::NotFound) {
                tracing::error!(id = %self.id, error = %e, "cannot remove a rejected upload");
            }
        }
    }

    /// Records a failure after the upload was accepted: the record says
    /// `failed` (durably, with its event), then the outputs go (the spool
    /// stays unless `--keep-source never`).
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
        let videos = &self.jobs.videos;
        let store = videos.store();
        let failed = Change::Failed {
            code: e.code().into(),
            message: e.public_message(),
        };
        match videos.apply(self.id, failed.clone()) {
            Ok(_) => {}
            // Deleted meanwhile, or another node's now: nothing to record.
            Err(Error::NotFound | Error::Conflict(_) | Error::OtherNode) => return,
            Err(w) => {
                // The store is down: this node says so now, and the lease
                // renewer writes it once the store answers.
                tracing::warn!(id = %self.id, error = %w, "cannot write the failure to the store");
                let _ = videos.note(self.id, &failed);
                self.jobs.note_unwritten_failure(self.id, &e);
                return;
            }
        }
        crate::failpoint!("failed.after_record");
        store.remove_outputs(self.id, self.jobs.keep_source != KeepSource::Never, &[]);
        let size = store.size(self.id);
        self.jobs.quota.settle(self.id, size);
        let _ = videos.apply(self.id, Change::Stored(size));
    }
}
