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
//!   interrupted") and its files removed, record kept; an import is
//!   emptied and fetched again once the server runs; a resumable (tus)
//!   one is kept instead, its spool cut back to the offset its client was
//!   told, and goes on with the client's next bytes;
//! - a completed upload whose job had not finished (queued/processing) is
//!   transcoded again from its spool, as a new generation of file names
//!   (on a bucket, the spool is fetched again from the bucket when it was
//!   kept there and this node's scratch lacks it);
//! - a finished video whose `ready` was not written yet is said ready
//!   (its outputs are never thrown away because a later step did not
//!   happen);
//! - a video being deleted (its tombstone) is deleted, its event first;
//! - events a change wrote into a record but the crash kept from the
//!   webhook outbox are handed over;
//! - `--keep-source` is applied to finished videos.
//!
//! One folder that fails to recover is logged and skipped; the server
//! still starts. No record is left saying `processing` with no job behind.

mod rebuild;

use crate::catalog::{Change, Lifecycle, Record, Status, Unreadable};
use crate::config::KeepSource;
use crate::jobs::Jobs;
use crate::storage::{fsio, names, VideoId};
use crate::Error;
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
    /// Finished videos whose `ready` had not been written: said now.
    pub finished: usize,
    pub errors: usize,
    /// Imports stopped in the middle, emptied: the server takes them up
    /// again once it runs.
    pub imports: Vec<VideoId>,
}

/// Runs recovery over every folder of the store. A node of a shared store
/// recovers only what it was doing (records naming it), and leaves an
/// unreadable record in the bucket alone (another node may be writing
/// it). Events a crash left in records go to the outbox last.
pub(crate) fn recover(
    videos: &Lifecycle,
    unreadable: Vec<Unreadable>,
    jobs: &Arc<Jobs>,
    keep: KeepSource,
) -> Report {
    let mut report = Report::default();
    let catalog = videos.catalog();
    let me = catalog.node().map(str::to_owned);
    for u in unreadable {
        if me.is_some() {
            tracing::error!(id = %u.id, reason = %u.reason, "unreadable record in the store; left alone");
            report.damaged += 1;
            continue;
        }
        report.strays_removed += fsio::remove_tmp_files(&catalog.store().dir(u.id));
        if let Err(e) = rebuild::recover_unreadable(videos, &u, jobs, &mut report) {
            tracing::error!(id = %u.id, error = %e, "cannot recover this video; skipped");
            report.errors += 1;
        }
    }
    let ids = catalog.ids().into_iter();
    let mine = ids.filter(|id| me.is_none() || catalog.peek(*id, |r| r.node == me) == Some(true));
    for id in mine {
        report.strays_removed += fsio::remove_tmp_files(&catalog.store().dir(id));
        if let Err(e) = recover_one(videos, id, jobs, keep, &mut report) {
            tracing::error!(id = %id, error = %e, "cannot recover this video; skipped");
            report.errors += 1;
        }
    }
    videos.hand_over_all();
    report
}

fn recover_one(
    videos: &Lifecycle,
    id: VideoId,
    jobs: &Arc<Jobs>,
    keep: KeepSource,
    report: &mut Report,
) -> Result<(), Error> {
    let Some(rec) = videos.catalog().get(id) else {
        return Ok(());
    };
    let store = videos.store();
    let busy = matches!(rec.status, Status::Queued | Status::Processing);
    let has_source = store.path(id, names::SOURCE_FILE).is_file() || (busy && fetched(store, id));
    let resumable = rec.upload.as_ref().map(|u| (u.offset, u.is_complete()));
    match rec.status {
        // A resumable upload whose bytes were all in: transcode it.
        Status::Receiving if resumable.is_some_and(|(_, done)| done) && has_source => {
            requeue(videos, jobs, &rec)?;
            report.requeued += 1;
        }
        // A resumable upload goes on where the client was told it was.
        Status::Receiving if resumable.is_some() => {
            let offset = resumable.map_or(0, |(o, _)| o);
            keep_resumable(videos, &rec, offset)?;
            report.resumable += 1;
        }
        // An import was answered 201: it starts again from the remote.
        Status::Receiving if rec.import.is_some() || rec.clip.is_some() => {
            restart_import(videos, &rec)?;
            report.imports.push(id);
        }
        Status::Receiving => {
            fail(
                videos,
                &rec,
                "upload_interrupted",
                "upload interrupted: the server stopped before the upload was complete",
            )?;
            report.interrupted += 1;
        }
        Status::Queued | Status::Processing if has_source => {
            requeue(videos, jobs, &rec)?;
            report.requeued += 1;
        }
        // Finished, its `ready` not written: replayed, never thrown away.
        Status::Queued | Status::Processing if finished(store, &rec) => {
            videos.apply(id, Change::Ready)?;
            report.finished += 1;
        }
        Status::Queued | Status::Processing => {
            fail(
                videos,
                &rec,
                "interrupted",
                "the server stopped before this video was finished and its upload is gone",
            )?;
            report.interrupted += 1;
        }
        Status::Live => recover_live(videos, jobs, &rec, has_source, report)?,
        // The tombstone: the deletion finishes (its event first).
        Status::Deleting => {
            videos.remove(id)?;
            report.deleted += 1;
        }
        Status::Ready | Status::Failed => settle(videos, &rec, keep)?,
    }
    Ok(())
}

/// A finished video as it should be: its spool gone unless kept, a failed
/// one's outputs gone (a crash may have come between its failure and its
/// cleanup), and its record saying what it holds.
fn settle(videos: &Lifecycle, rec: &Record, keep: KeepSource) -> Result<(), Error> {
    let (store, id) = (videos.store(), rec.id);
    match rec.status {
        Status::Ready if keep != KeepSource::Always => store.remove_source(id)?,
        Status::Failed => store.remove_outputs(id, keep != KeepSource::Never, &[]),
        _ => {}
    }
    let size = store.size(id);
    if size != rec.storage_bytes {
        videos.apply(id, Change::Stored(size))?;
    }
    Ok(())
}

/// On a bucket: whether the unfinished job's upload, kept there
/// (`--keep-source always`) but not in this node's scratch (a crash came
/// between a takeover's claim and its fetch, or the scratch was lost), is
/// fetched again.
fn fetched(store: &crate::storage::Store, id: VideoId) -> bool {
    if !store.traits().remote || !store.exists(id, names::SOURCE_FILE) {
        return false;
    }
    match crate::jobs::lease::fetch_source(store, id) {
        Ok(len) => {
            tracing::info!(id = %id, bytes = len, "fetched the upload from the bucket again");
            true
        }
        Err(e) => {
            tracing::warn!(id = %id, error = %e, "cannot fetch the upload from the bucket");
            store.clear_scratch(id, false);
            false
        }
    }
}

/// True when every rendition the record names has its whole playlist.
fn finished(store: &crate::storage::Store, rec: &Record) -> bool {
    let ended = |p: &str| {
        store
            .read(rec.id, p)
            .map(|b| crate::playlist::MediaPlaylist::parse(&String::from_utf8_lossy(&b)))
            .is_ok_and(|m| m.ended && !m.segments.is_empty())
    };
    let media = |r: &crate::catalog::Rendition| match rec.is_flat() {
        true => r.playlist.clone(),
        false => format!("{}/{}", r.name, names::PLAYLIST),
    };
    rec.output.is_some()
        && !rec.renditions.is_empty()
        && rec.renditions.iter().all(|r| ended(&media(r)))
}

/// Fails a video whose upload or job the crash cut: the record first
/// (durably, with its event), then its outputs.
fn fail(videos: &Lifecycle, rec: &Record, code: &str, message: &str) -> Result<(), Error> {
    let failed = Change::Failed {
        code: code.into(),
        message: message.into(),
    };
    videos.apply(rec.id, failed)?;
    let store = videos.store();
    store.remove_outputs(rec.id, false, &[]);
    videos.apply(rec.id, Change::Stored(store.size(rec.id)))?;
    Ok(())
}

/// Empties an import or a clip stopped in the middle (its spool and
/// partial outputs go; the next generation of names is used), to be
/// fetched or cut again.
fn restart_import(videos: &Lifecycle, rec: &Record) -> Result<(), Error> {
    let store = videos.store();
    store.remove_outputs(rec.id, false, &[]);
    videos.apply(rec.id, Change::Restarted)?;
    let nothing = Change::Received {
        bytes: 0,
        persist: true,
    };
    videos.apply(rec.id, nothing)?;
    videos.apply(rec.id, Change::Stored(store.size(rec.id)))?;
    Ok(())
}

/// Keeps an unfinished resumable upload: its spool cut back to the offset
/// the client was told (bytes after it were never acknowledged), its
/// partial outputs removed (its job starts over with the next bytes); the
/// caption tracks uploaded for it stay.
fn keep_resumable(videos: &Lifecycle, rec: &Record, offset: u64) -> Result<(), Error> {
    let (store, id) = (videos.store(), rec.id);
    let tracks: Vec<&str> = rec
        .captions
        .iter()
        .filter(|c| c.source == crate::catalog::CaptionSource::Uploaded)
        .map(|c| c.dir.as_str())
        .collect();
    store.remove_outputs(id, true, &tracks);
    let path = store.path(id, names::SOURCE_FILE);
    match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(f) => {
            f.set_len(offset)?;
            f.sync_all()?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && offset == 0 => {
            crate::spool::create(&path)?;
        }
        Err(e) => return Err(e.into()),
    }
    videos.apply(id, Change::Resumed { offset })?;
    Ok(())
}

/// Queues `rec`'s job again from its complete spool, as the next
/// generation of file names ([`crate::jobs::next_generation`]: what
/// players may have cached keeps its bytes; the older generation is swept
/// once the new one is published).
/// A live the stop found. Kept nowhere, its broadcast begun: the stop
/// ended it (its end may have been under way), and it goes. Else with a
/// spool: its broadcast was cut, what came is kept. Else it still awaits
/// its publisher.
fn recover_live(
    videos: &Lifecycle,
    jobs: &Arc<Jobs>,
    rec: &Record,
    has_source: bool,
    report: &mut Report,
) -> Result<(), Error> {
    let id = rec.id;
    if rec
        .live
        .as_ref()
        .is_some_and(|l| !l.record && l.started_ms.is_some())
    {
        videos.apply(id, Change::LiveEnded)?;
        videos.tombstone(id)?;
        videos.remove(id)?;
        report.deleted += 1;
    } else if has_source && end_broadcast(videos, jobs, rec)? {
        report.requeued += 1;
    }
    Ok(())
}

/// A live whose publisher was cut by the stop: its spool so far is the
/// whole broadcast (transcoded again into its video); an empty one goes
/// and the live awaits its publisher again. True when re-queued.
fn end_broadcast(videos: &Lifecycle, jobs: &Arc<Jobs>, rec: &Record) -> Result<bool, Error> {
    let store = videos.store();
    let path = store.path(rec.id, names::SOURCE_FILE);
    let len = std::fs::metadata(&path).map_or(0, |m| m.len());
    if len == 0 {
        store.remove_outputs(rec.id, false, &[]);
        return Ok(false);
    }
    store.mark_upload_done(rec.id, len)?;
    let ended = Change::Complete {
        bytes: len,
        running: false,
        title: None,
    };
    let rec = videos.apply(rec.id, ended)?;
    requeue(videos, jobs, &rec)?;
    Ok(true)
}

fn requeue(videos: &Lifecycle, jobs: &Arc<Jobs>, rec: &Record) -> Result<(), Error> {
    let id = rec.id;
    let generation = crate::jobs::next_generation(videos.store(), rec);
    videos.apply(id, Change::Requeued { generation })?;
    let reader = crate::spool::open_finished(&videos.store().path(id, names::SOURCE_FILE))?;
    if let Err(e) = jobs.start_recovered(id, reader) {
        tracing::error!(id = %id, error = %e, "cannot re-queue");
    }
    Ok(())
}
