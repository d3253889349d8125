//! Jobs across nodes of a shared store (issue 15). A node's active records
//! name it and carry a lease it renews every third of `--lease-secs` (and
//! with every write). Every node also scans the bucket: a record whose
//! node let its lease run out (half a lease more is allowed for clock skew)
//! is claimed by a conditional write, so at most one node wins it. The
//! winner takes the job over when the upload is in the bucket
//! (`--keep-source always` puts it there before the upload is
//! acknowledged), or marks the video `failed` with `node_lost`.
//!
//! A store whose conditional writes do not hold (Garage ignores them) gets
//! no claims at all: two nodes could both win one.
//!
//! A renewal that finds its record taken over stops the job without
//! touching the video; one that finds it being deleted (a `DELETE` through
//! another node) stops the job and deletes the video's objects.

use super::Jobs;
use crate::catalog::{Change, Status};
use crate::storage::{names, VideoId};
use crate::Error;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// What a renewal found out about one of this node's records.
enum Found {
    TakenOver(VideoId),
    Deleted(VideoId),
}

/// Starts the lease renewer and the orphan scanner (each its own task, so
/// a slow scan never delays a renewal) when the store is shared; they end
/// with the runtime.
pub(crate) fn spawn(jobs: &Arc<Jobs>) {
    let Some(lease) = jobs.catalog.lease() else {
        return;
    };
    every_period(jobs, lease / 3, |jobs| async move {
        let j = jobs.clone();
        let found = tokio::task::spawn_blocking(move || renew(&j)).await;
        for f in found.unwrap_or_default() {
            stop(&jobs, f).await;
        }
    });
    every_period(jobs, lease / 2, move |jobs| async move {
        let j = jobs.clone();
        let found = tokio::task::spawn_blocking(move || scan(&j, lease)).await;
        let (claimed, deletions) = found.unwrap_or_default();
        for id in claimed {
            let j = jobs.clone();
            let _ = tokio::task::spawn_blocking(move || take_over(&j, id)).await;
        }
        // Deletions handed to a node that never came back: finished here.
        for id in deletions {
            tracing::warn!(id = %id, "finishing a deletion its node left undone");
            if let Err(e) = jobs.videos.delete(id, Duration::MAX).await {
                tracing::warn!(id = %id, error = %e, "cannot finish the deletion");
            }
        }
    });
}

/// Runs `f` every `period` on the runtime.
fn every_period<F, Fut>(jobs: &Arc<Jobs>, period: Duration, f: F)
where
    F: Fn(Arc<Jobs>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let jobs = jobs.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            f(jobs.clone()).await;
        }
    });
}

/// Measures the whole bucket again every `every` for `--max-storage-bytes`
/// (other nodes add and remove videos), when the store is shared.
pub(crate) fn spawn_quota_refresh(jobs: &Arc<Jobs>, period: Duration) {
    if jobs.catalog.lease().is_none() {
        return;
    }
    every_period(jobs, period, |jobs| async move {
        let j = jobs.clone();
        match tokio::task::spawn_blocking(move || j.catalog.store().sizes()).await {
            Ok(Ok(sizes)) => jobs.quota.sync(&sizes),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot measure the bucket"),
            Err(_) => {}
        }
    });
}

/// What this node works on: its live pipelines (uploading, queued,
/// transcoding), its resumable uploads waiting for their client (their
/// spool is here), its lives awaiting their publisher (their doors are
/// here), and deletions handed to it.
fn held_here(jobs: &Jobs) -> HashSet<VideoId> {
    let catalog = &jobs.catalog;
    let me = catalog.node();
    let mut ids: HashSet<VideoId> = jobs.live_ids().into_iter().collect();
    for id in catalog.ids() {
        let waiting = catalog.peek(id, |r| {
            r.node.as_deref() == me
                && matches!(
                    r.status,
                    Status::Receiving | Status::Live | Status::Deleting
                )
        });
        if waiting == Some(true) {
            ids.insert(id);
        }
    }
    ids
}

/// Renews the lease of everything this node works on (what it runs, not
/// what its copies of the records say: a conflict may have brought in
/// another node's change), writes failures the store refused earlier, and
/// reports what another node took or deleted.
fn renew(jobs: &Jobs) -> Vec<Found> {
    let catalog = &jobs.catalog;
    jobs.write_unwritten_failures();
    let me = catalog.node().map(str::to_owned);
    let mut found = Vec::new();
    for id in held_here(jobs) {
        match jobs.videos.apply(id, Change::Renewed) {
            Ok(r) if r.node != me && r.status.is_active() => found.push(Found::TakenOver(id)),
            Ok(_) => {}
            Err(Error::NotFound) => found.push(Found::Deleted(id)),
            Err(Error::OtherNode) => found.push(Found::TakenOver(id)),
            Err(e) => tracing::warn!(id = %id, error = %e, "cannot renew the lease"),
        }
    }
    found
}

/// Stops this node's work on a video another node took or deleted.
async fn stop(jobs: &Arc<Jobs>, found: Found) {
    match found {
        Found::TakenOver(id) => {
            tracing::warn!(id = %id, "another node took this job over; stopping it here");
            jobs.cancel_lost(id);
            jobs.ended(id).await;
            let j = jobs.clone();
            let _ = tokio::task::spawn_blocking(move || {
                // Its copy of the record here is still this node's.
                let _ = j.catalog.reload(id);
                j.catalog.store().clear_scratch(id, false);
            })
            .await;
        }
        Found::Deleted(id) => {
            tracing::info!(id = %id, "deleted through another node; stopping its job");
            match jobs.videos.delete(id, Duration::MAX).await {
                Ok(_) => {}
                // Gone from the store already: what is left here goes.
                Err(Error::NotFound) => {
                    jobs.cancel_for_delete(id, Duration::MAX).await;
                    let j = jobs.clone();
                    let _ = tokio::task::spawn_blocking(move || j.catalog.store().remove_video(id))
                        .await;
                    jobs.quota.forget(id);
                }
                Err(e) => tracing::error!(id = %id, error = %e, "cannot finish the deletion"),
            }
        }
    }
}

/// Claims the records of nodes that stopped renewing; returns the ones to
/// transcode here (their upload is in the bucket; the others end failed
/// with `node_lost`, their outputs removed), and the deletions whose node
/// let them lie a lease and a half (it would have finished them at its
/// next renewal) for this node to finish.
fn scan(jobs: &Jobs, lease: Duration) -> (Vec<VideoId>, Vec<VideoId>) {
    let catalog = &jobs.catalog;
    if !catalog.store().traits().exclusive_writes {
        // Two nodes could both win a claim: no claims at all (see start).
        return (Vec::new(), Vec::new());
    }
    catalog.refresh_active();
    let grace = (lease + lease / 2).as_secs();
    let now = catalog.clock().unix();
    let held = held_here(jobs);
    let deletions: Vec<VideoId> = catalog
        .ids()
        .into_iter()
        .filter(|id| !held.contains(id))
        .filter(|id| {
            catalog.peek(*id, |r| {
                r.status == Status::Deleting && r.updated_at + grace < now
            }) == Some(true)
        })
        .collect();
    let me = catalog.node().map(str::to_owned);
    let mut mine = Vec::new();
    for orphan in catalog.orphans(lease + lease / 2, &held) {
        let id = orphan.id;
        let store = catalog.store();
        // A store that fails to answer now decides nothing: next scan.
        let Ok(done) = store.stat(id, names::SOURCE_DONE) else {
            continue;
        };
        let upload_kept = done.is_some() && orphan.status != Status::Receiving;
        let claim = Change::Claimed {
            node: me.clone(),
            lost: (orphan.node.clone(), orphan.lease_until_ms),
            requeue: upload_kept.then(|| super::next_generation(store, &orphan)),
        };
        match jobs.videos.apply(id, claim) {
            Ok(r) if r.node == me && r.status == Status::Queued => mine.push(id),
            Ok(r) if r.node == me && r.status == Status::Failed => {
                tracing::warn!(id = %id, lost = ?orphan.node, "node lost: video failed");
                // Failed (durable), its objects not yet removed.
                crate::failpoint!("takeover.after_lost");
                store.remove_outputs(id, true, &[]);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(id = %id, error = %e, "cannot claim a lost node's job"),
        }
    }
    (mine, deletions)
}

/// Fetches a claimed video's upload from the bucket and queues its job; a
/// video whose upload cannot be fetched ends failed (`node_lost`).
fn take_over(jobs: &Arc<Jobs>, id: VideoId) {
    // Claimed (durable, this node's lease on it), nothing fetched yet.
    crate::failpoint!("takeover.after_claim");
    if let Err(e) = fetch_and_queue(jobs, id) {
        tracing::error!(id = %id, error = %e, "cannot take the job over");
        let lost = Change::Failed {
            code: "node_lost".into(),
            message: "the node handling this video stopped, and its upload could not be fetched"
                .into(),
        };
        let _ = jobs.videos.apply(id, lost);
        jobs.catalog.store().clear_scratch(id, false);
    }
}

fn fetch_and_queue(jobs: &Arc<Jobs>, id: VideoId) -> Result<(), crate::Error> {
    let store = jobs.catalog.store();
    let len = fetch_source(store, id)?;
    tracing::info!(id = %id, bytes = len, "took over a lost node's job");
    // The upload is in scratch, whole; no job yet.
    crate::failpoint!("takeover.after_fetch");
    jobs.quota.count(id, store.size(id));
    let spool = store.path(id, names::SOURCE_FILE);
    jobs.start_recovered(id, crate::spool::open_finished(&spool)?)
}

/// Brings video `id`'s upload from the bucket into this node's scratch
/// (`--keep-source always` put it there): fetched aside, then renamed, so
/// a spool under its own name is whole. Its length.
pub(crate) fn fetch_source(store: &crate::storage::Store, id: VideoId) -> Result<u64, Error> {
    store.make_scratch(id)?;
    let spool = store.path(id, names::SOURCE_FILE);
    let part = store.path(id, names::SOURCE_PART);
    let len = store.download(id, names::SOURCE_FILE, &part)?;
    std::fs::rename(&part, &spool)?;
    store.write_local(id, names::SOURCE_DONE, len.to_string().as_bytes())?;
    Ok(len)
}
