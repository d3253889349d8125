//! Crash recovery, run once at start before the server accepts requests.
//!
//! The process may have been killed at any moment (`kill -9`). Every file a
//! player reads was renamed into place atomically and every record written
//! atomically, so what is on disk is a set of consistent records plus, at
//! worst, stray `*.tmp` files and folders without a record. Here:
//! - stray `*.tmp` files and record-less video folders are removed;
//! - an upload that was still arriving is marked failed ("upload
//!   interrupted") and its files removed, record kept;
//! - a completed upload whose job had not finished (queued/processing) has
//!   its half-written outputs removed and is transcoded again from its spool;
//! - `--keep-source` is applied to finished videos.
//!
//! So no record is left saying `processing` with no job behind it.

use crate::catalog::{Catalog, ErrorInfo, Status};
use crate::config::KeepSource;
use crate::ingest::SOURCE_FILE;
use crate::jobs::{dir_size, remove_outputs, Jobs};
use std::path::Path;
use std::sync::Arc;

/// What recovery did, for the log.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub requeued: usize,
    pub interrupted: usize,
    pub strays_removed: usize,
}

/// Runs recovery over every record of `catalog`.
pub(crate) fn recover(
    catalog: &Catalog,
    jobs: &Arc<Jobs>,
    keep: KeepSource,
) -> std::io::Result<Report> {
    let mut report = Report::default();
    for entry in std::fs::read_dir(catalog.root())? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if crate::http::paths::is_video_id(name)
            && catalog.get(name).is_none()
            && entry.path().is_dir()
        {
            std::fs::remove_dir_all(entry.path())?;
            report.strays_removed += 1;
        }
    }
    for id in catalog.ids() {
        let dir = catalog.dir(&id);
        report.strays_removed += remove_tmp_files(&dir);
        let Some(rec) = catalog.get(&id) else {
            continue;
        };
        let source = dir.join(SOURCE_FILE);
        match rec.status {
            Status::Receiving => {
                remove_outputs(&dir, false);
                catalog.update(&id, true, |r| {
                    r.status = Status::Failed;
                    r.error = Some(ErrorInfo {
                        code: "upload_interrupted".into(),
                        message:
                            "upload interrupted: the server stopped before the upload was complete"
                                .into(),
                    });
                    r.storage_bytes = dir_size(&dir);
                })?;
                report.interrupted += 1;
            }
            Status::Queued | Status::Processing if source.is_file() => {
                remove_outputs(&dir, true);
                catalog.update(&id, true, |r| {
                    r.status = Status::Queued;
                    r.progress = 0.0;
                    r.output = None;
                    r.renditions.clear();
                    r.error = None;
                })?;
                let reader = crate::spool::open_finished(&source)?;
                if let Err(e) = jobs.start_recovered(id.clone(), reader) {
                    tracing::error!(id = %id, error = %e, "cannot re-queue");
                }
                report.requeued += 1;
            }
            Status::Queued | Status::Processing => {
                remove_outputs(&dir, false);
                catalog.update(&id, true, |r| {
                    r.status = Status::Failed;
                    r.error = Some(ErrorInfo {
                        code: "interrupted".into(),
                        message: "the server stopped before this video was finished and its upload is gone"
                            .into(),
                    });
                })?;
                report.interrupted += 1;
            }
            Status::Ready if keep != KeepSource::Always => remove_if_present(&source),
            Status::Failed if keep == KeepSource::Never => remove_if_present(&source),
            Status::Ready | Status::Failed => {}
        }
    }
    Ok(report)
}

fn remove_if_present(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Removes `*.tmp` files (half-written segments, playlists, records).
fn remove_tmp_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().ends_with(".tmp")
            && std::fs::remove_file(e.path()).is_ok()
        {
            n += 1;
        }
    }
    n
}
