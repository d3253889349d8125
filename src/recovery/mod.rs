//! Crash recovery, run once at start before the server accepts requests.
//!
//! The process may have been killed at any moment (`kill -9`, a power cut).
//! Every file a player reads was made durable and renamed into place, and
//! every record written the same way, so what is on disk is a set of
//! consistent records plus, at worst, stray `*.tmp` files. Here:
//! - stray `*.tmp` files are removed;
//! - a folder whose record cannot be read is never deleted while it holds a
//!   source or outputs: its record is rebuilt from what is on disk (every
//!   rung's playlist ended → `ready`; a complete spool → re-queued), else
//!   the video is listed `failed` with `damaged_record` (the unreadable
//!   record is kept beside it). Only folders with nothing of value go;
//! - an upload that was still arriving is marked failed ("upload
//!   interrupted") and its files removed, record kept; a resumable (tus)
//!   one is kept instead, its spool cut back to the offset its client was
//!   told, and goes on with the client's next bytes;
//! - a completed upload whose job had not finished (queued/processing) is
//!   transcoded again from its spool, as a new generation of file names;
//! - a video being deleted is deleted;
//! - `--keep-source` is applied to finished videos.
//!
//! One folder that fails to recover is logged and skipped; the server
//! still starts. No record is left saying `processing` with no job behind.

mod rebuild;

use crate::catalog::{Catalog, Record, Status, Unreadable};
use crate::config::KeepSource;
use crate::jobs::Jobs;
use crate::storage::{fsio, names, VideoId};
use std::sync::Arc;

/// What recovery did, for the log.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub requeued: usize,
    /// Unfinished resumable uploads kept for their clients.
    pub resumable: usize,
    pub interrupted: usize,
    pub strays_removed: usize,
    pub rebuilt: usize,
    pub damaged: usize,
    pub deleted: usize,
    pub errors: usize,
}

/// Runs recovery over every folder of `catalog`'s store. A node of a
/// shared store recovers only what it was doing (records naming it), and
/// leaves an unreadable record in the bucket alone (another node may be
/// writing it).
pub(crate) fn recover(
    catalog: &Catalog,
    unreadable: Vec<Unreadable>,
    jobs: &Arc<Jobs>,
    keep: KeepSource,
) -> Report {
    let mut report = Report::default();
    let me = catalog.node().map(str::to_owned);
    for u in unreadable {
        if me.is_some() {
            tracing::error!(id = %u.id, reason = %u.reason, "unreadable record in the store; left alone");
            report.damaged += 1;
            continue;
        }
        report.strays_removed += fsio::remove_tmp_files(&catalog.store().dir(u.id));
        if let Err(e) = rebuild::recover_unreadable(catalog, &u, jobs, &mut report) {
            tracing::error!(id = %u.id, error = %e, "cannot recover this video; skipped");
            report.errors += 1;
        }
    }
    let ids = catalog.ids().into_iter();
    let mine = ids.filter(|id| me.is_none() || catalog.peek(*id, |r| r.node == me) == Some(true));
    for id in mine {
        report.strays_removed += fsio::remove_tmp_files(&catalog.store().dir(id));
        if let Err(e) = recover_one(catalog, id, jobs, keep, &mut report) {
            tracing::error!(id = %id, error = %e, "cannot recover this video; skipped");
            report.errors += 1;
        }
    }
    report
}

fn recover_one(
    catalog: &Catalog,
    id: VideoId,
    jobs: &Arc<Jobs>,
    keep: KeepSource,
    report: &mut Report,
) -> std::io::Result<()> {
    let Some(rec) = catalog.get(id) else {
        return Ok(());
    };
    let store = catalog.store();
    let has_source = store.path(id, names::SOURCE_FILE).is_file();
    let resumable = rec.upload.as_ref().map(|u| (u.offset, u.is_complete()));
    match rec.status {
        // A resumable upload whose bytes were all in: transcode it.
        Status::Receiving if resumable.is_some_and(|(_, done)| done) && has_source => {
            requeue(catalog, jobs, &rec)?;
            report.requeued += 1;
        }
        // A resumable upload goes on where the client was told it was.
        Status::Receiving if resumable.is_some() => {
            let offset = resumable.map_or(0, |(o, _)| o);
            keep_resumable(catalog, id, offset)?;
            report.resumable += 1;
        }
        Status::Receiving => {
            store.remove_outputs(id, false);
            let size = store.size(id);
            catalog.update(id, true, |r| {
                r.fail(
                    "upload_interrupted",
                    "upload interrupted: the server stopped before the upload was complete",
                );
                r.storage_bytes = size;
            })?;
            report.interrupted += 1;
        }
        Status::Queued | Status::Processing if has_source => {
            requeue(catalog, jobs, &rec)?;
            report.requeued += 1;
        }
        Status::Queued | Status::Processing => {
            store.remove_outputs(id, false);
            catalog.update(id, true, |r| {
                r.fail(
                    "interrupted",
                    "the server stopped before this video was finished and its upload is gone",
                )
            })?;
            report.interrupted += 1;
        }
        Status::Deleting => {
            store.remove_video(id)?;
            catalog.forget(id);
            report.deleted += 1;
        }
        Status::Ready if keep != KeepSource::Always => remove_source(catalog, id)?,
        Status::Failed if keep == KeepSource::Never => remove_source(catalog, id)?,
        Status::Ready | Status::Failed => {}
    }
    Ok(())
}

/// Keeps an unfinished resumable upload: its spool cut back to the offset
/// the client was told (bytes after it were never acknowledged), its
/// partial outputs removed (its job starts over with the next bytes).
fn keep_resumable(catalog: &Catalog, id: VideoId, offset: u64) -> std::io::Result<()> {
    let store = catalog.store();
    store.remove_outputs(id, true);
    let path = store.path(id, names::SOURCE_FILE);
    match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(f) => {
            f.set_len(offset)?;
            f.sync_all()?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && offset == 0 => {
            crate::spool::create(&path)?;
        }
        Err(e) => return Err(e),
    }
    catalog.update(id, true, |r| {
        r.renditions.clear();
        r.output = None;
        r.progress = 0.0;
        r.bytes_received = offset;
    })?;
    Ok(())
}

fn remove_source(catalog: &Catalog, id: VideoId) -> std::io::Result<()> {
    catalog.store().remove_source(id)
}

/// Queues `rec`'s job again from its complete spool, as the next
/// generation of file names (what players may have cached keeps its bytes;
/// the older generation is swept once the new one is published).
fn requeue(catalog: &Catalog, jobs: &Arc<Jobs>, rec: &Record) -> std::io::Result<()> {
    let id = rec.id;
    let generation = rec.generation.max(rebuild::highest_generation(catalog, id)) + 1;
    catalog.update(id, true, |r| {
        r.status = Status::Queued;
        r.progress = 0.0;
        r.output = None;
        r.renditions.clear();
        r.error = None;
        r.generation = generation;
    })?;
    let reader = crate::spool::open_finished(&catalog.store().path(id, names::SOURCE_FILE))?;
    if let Err(e) = jobs.start_recovered(id, reader) {
        tracing::error!(id = %id, error = %e, "cannot re-queue");
    }
    Ok(())
}
