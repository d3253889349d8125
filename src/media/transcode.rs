//! The entry point of a transcode: runs a [`Job`], and when the copy fast
//! path has to give up mid-way, runs it again encoding every rung, as a new
//! generation of file names (the first generation's files stay until the
//! owner sweeps them, after the new playlists are in place).

use super::context::{JobContext, JobEvents, Produced};
use super::input::Source;
use super::job::Job;
use super::Settings;
use crate::config::CopyMode;
use crate::Error;

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
