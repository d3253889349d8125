//! What a running job reports, turned into changes of its video (through
//! the lifecycle), and the slot it gives back while its upload is slow.

use super::{Jobs, SlotHolder};
use crate::catalog::{CaptionSource, CaptionTrack, Change, Rendition};
use crate::media::{JobEvents, RungProgress};
use crate::storage::VideoId;
use crate::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a persisted record follows progress (memory follows 4×/s).
const PERSIST_EVERY: Duration = Duration::from_secs(2);
/// How often memory follows progress.
const SHOW_EVERY: Duration = Duration::from_millis(250);

/// Gives a job's transcode slot back while its reader waits for the upload
/// (a slow upload never holds the encoder), and takes one again when the
/// bytes come.
pub(super) struct YieldSlot {
    pub slot: Arc<SlotHolder>,
    /// The slot was given back by this hook (not never taken).
    pub yielded: AtomicBool,
    pub cancel: Arc<AtomicBool>,
    pub spool: crate::spool::SpoolControl,
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
pub(super) struct Events<'a> {
    jobs: &'a Jobs,
    id: VideoId,
    duration: Option<f64>,
    last_mem: Instant,
    last_disk: Instant,
    first: bool,
    /// A live's job: when it began (its speed goes to `/metrics`).
    live: Option<Instant>,
}

impl<'a> Events<'a> {
    pub(super) fn new(jobs: &'a Jobs, id: VideoId, duration: Option<f64>, live: bool) -> Self {
        Events {
            jobs,
            id,
            duration: duration.filter(|d| *d > 0.0),
            last_mem: Instant::now(),
            last_disk: Instant::now(),
            first: true,
            live: live.then(Instant::now),
        }
    }
}

impl Drop for Events<'_> {
    fn drop(&mut self) {
        if self.live.is_some() {
            self.jobs.metrics.live_done(self.id.as_ref());
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
        if let Some(began) = self.live {
            let made = rungs
                .iter()
                .map(|g| g.seconds)
                .fold(f64::INFINITY, f64::min);
            let made = if made.is_finite() { made } else { 0.0 };
            let wall = began.elapsed().as_secs_f64();
            self.jobs
                .metrics
                .live_progress(self.id.as_ref(), made, wall);
        }
        let total = self.duration;
        let frac = |secs: f64| total.map_or(0.0, |t| (secs / t).clamp(0.0, 0.99));
        let renditions: Vec<Rendition> = rungs
            .iter()
            .map(|g| Rendition {
                playlist: g.playlist.clone(),
                name: g.name.clone(),
                width: g.width,
                height: g.height,
                copied: g.copied,
                codec: crate::catalog::codec_of_rung(&g.name).to_owned(),
                progress: frac(g.seconds),
                ..Rendition::default()
            })
            .collect();
        // Overall: the slowest rung.
        let progress = renditions
            .iter()
            .map(|x| x.progress)
            .fold(f64::INFINITY, f64::min)
            .min(0.99);
        // Noted in memory unless a change holds the door (a write to a
        // slow store): never waited for. Written by `persist`'s thread.
        let change = Change::Progress {
            renditions,
            progress,
        };
        let noted = self.jobs.videos.try_apply(self.id, change);
        if persist && noted.is_some() {
            self.jobs.progress.ask(self.id);
        }
    }

    fn planned(&mut self, bytes: u64) -> Result<(), Error> {
        let quota = &self.jobs.quota;
        quota
            .reserve(self.id, bytes)
            .map_err(|_| Error::QuotaExceeded {
                limit: quota.limit().unwrap_or(0),
            })
    }

    fn published(&mut self, bytes: u64) -> Result<(), Error> {
        let quota = &self.jobs.quota;
        quota
            .store(self.id, bytes)
            .map_err(|_| Error::QuotaExceeded {
                limit: quota.limit().unwrap_or(0),
            })
    }

    fn uploaded_captions(&self) -> Vec<CaptionTrack> {
        Events::uploaded(&self.jobs.catalog, self.id)
    }

    fn dropped(&mut self, frames: u64) {
        if self.live.is_some() {
            self.jobs.metrics.live_dropped(self.id.as_ref(), frames);
        }
    }

    fn new_generation(&mut self, generation: u32, _why: &str) -> Result<(), Error> {
        let change = Change::Generation(generation);
        self.jobs.videos.apply(self.id, change)?;
        crate::failpoint!("generation.after_record");
        Ok(())
    }
}
