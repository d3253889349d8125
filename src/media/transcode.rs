//! The entry point of a transcode: runs a [`Job`], and when the copy fast
//! path has to give up mid-way, runs it again encoding every rung, as a new
//! generation of file names (the first generation's files stay until the
//! owner sweeps them, after the new playlists are in place).

use super::input::Source;
use super::job::Job;
use super::Settings;
use crate::catalog::{OutputInfo, Rendition};
use crate::config::CopyMode;
use crate::storage::{Store, VideoId};
use crate::Error;
use ffmpeg_next::{Packet, Rational};
use std::sync::atomic::AtomicBool;

/// Where and how one transcode writes.
pub(crate) struct JobContext<'a> {
    pub store: &'a Store,
    pub id: VideoId,
    pub settings: &'a Settings,
    /// The generation of file names written.
    pub generation: u32,
    /// Polled by the packet loop (and libav's interrupt callback).
    pub cancel: &'a AtomicBool,
}

impl JobContext<'_> {
    /// True when the disk holding the video has less than `min` bytes free.
    pub(crate) fn disk_full(&self, min: u64) -> bool {
        super::ffi::free_bytes(&self.store.dir(self.id)).is_some_and(|b| b < min)
    }
}

/// What a job tells its owner while it runs.
pub(crate) trait JobEvents {
    /// Each rung's progress, as it grows.
    fn progress(&mut self, rungs: &[RungProgress]);
    /// `bytes` more were published; an error (quota) stops the job.
    fn published(&mut self, _bytes: u64) -> Result<(), Error> {
        Ok(())
    }
    /// The job starts over as `generation` because `why`; called before a
    /// file of that generation is written (the owner records it).
    fn new_generation(&mut self, _generation: u32, _why: &str) -> Result<(), Error> {
        Ok(())
    }
}

/// One rung's progress, as the job reports it.
#[derive(Debug, Clone)]
pub struct RungProgress {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub copied: bool,
    /// Seconds of media written so far.
    pub seconds: f64,
}

/// What a finished transcode made.
#[derive(Debug, Clone)]
pub struct Produced {
    pub info: OutputInfo,
    /// Every rung, top first.
    pub renditions: Vec<Rendition>,
    /// The top rung is the source's packets, copied.
    pub copied: bool,
    /// Why the source was not copied, when it was not.
    pub copy_note: Option<String>,
    /// The generation of file names the outputs use.
    pub generation: u32,
}

/// Transcodes `source` (already opened and probed) into video `ctx.id`.
/// `reopen` opens the source again from the start with other settings (the
/// copy fallback). On error, files already written are the caller's to
/// remove.
pub(crate) fn transcode(
    source: Source,
    reopen: &mut dyn FnMut(&Settings) -> Result<Source, Error>,
    ctx: &JobContext<'_>,
    events: &mut dyn JobEvents,
) -> Result<Produced, Error> {
    match run_once(source, ctx, events) {
        Err(Error::CopyFallback(why)) => {
            // The source's keyframes (or bytes) cannot be copied: start
            // over from the spool, encoding every rung, under new names.
            tracing::info!(id = %ctx.id, reason = %why, "copy fast path abandoned; encoding");
            let generation = ctx.generation + 1;
            events.new_generation(generation, &why)?;
            let mut settings = ctx.settings.clone();
            settings.copy = CopyMode::Never;
            let again = JobContext {
                settings: &settings,
                generation,
                ..*ctx
            };
            let source = reopen(&settings)?;
            let mut p = run_once(source, &again, events)?;
            p.copy_note = Some(why);
            Ok(p)
        }
        other => other,
    }
}

fn run_once(
    source: Source,
    ctx: &JobContext<'_>,
    events: &mut dyn JobEvents,
) -> Result<Produced, Error> {
    let result = Job::open(source, ctx, events).and_then(Job::run);
    match result {
        Err(Error::Media(_) | Error::Io(_)) if ctx.disk_full(1 << 20) => Err(Error::DiskFull),
        other => other,
    }
}

/// Subtracts `offset` from a packet's timestamps.
pub(crate) fn shift(p: &mut Packet, offset: i64) {
    p.set_pts(p.pts().map(|t| t - offset));
    p.set_dts(p.dts().map(|t| t - offset));
}

pub(crate) const MICROS: Rational = Rational(1, 1_000_000);

/// `v * from / to`, in i128 so large timestamps cannot overflow.
pub(crate) fn rescale(v: i64, from: Rational, to: Rational) -> i64 {
    let num = i128::from(v) * i128::from(from.numerator()) * i128::from(to.denominator());
    let den = i128::from(from.denominator()) * i128::from(to.numerator());
    if den == 0 {
        return 0;
    }
    i64::try_from(num / den).unwrap_or(0)
}
