//! What the server opens before it serves: its store and records, crash
//! recovery, the webhook outbox, the lives' registry and RTMP socket.

use crate::catalog::Catalog;
use crate::config::Config;
use crate::jobs::Jobs;
use crate::storage::Store;
use crate::Error;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The lives' registry, and `--rtmp-listen`'s socket when asked for.
pub(super) async fn open_lives(
    config: &Config,
    metrics: &Arc<crate::metrics::Metrics>,
    jobs: &Arc<Jobs>,
    videos: &Arc<crate::catalog::Lifecycle>,
    quota: &Arc<crate::storage::Quota>,
) -> Result<(Arc<crate::ingest::live::Lives>, Doors), Error> {
    let lives = crate::ingest::live::Lives::new(crate::ingest::live::Env {
        jobs: jobs.clone(),
        videos: videos.clone(),
        quota: quota.clone(),
        max_upload_bytes: config.max_upload_bytes,
        max_lives: config.max_lives,
        max_kbps: config.live_max_kbps,
        reconnect: std::time::Duration::from_secs(config.live_reconnect_secs),
        metrics: metrics.clone(),
    });
    let mut doors = Doors::default();
    if let Some(addr) = config.rtmp_listen {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Internal(format!("cannot listen for RTMP on {addr}: {e}")))?;
        lives.set_rtmp_addr(l.local_addr()?);
        doors.rtmp = Some(l);
    }
    if let Some(addr) = config.srt_listen {
        let (l, incoming, local) = crate::ingest::live::srt::bind(addr)
            .await
            .map_err(|e| Error::Internal(format!("cannot listen for SRT on {addr}: {e}")))?;
        lives.set_srt_addr(local);
        doors.srt = Some((l, incoming));
    }
    Ok((lives, doors))
}

/// The live doors' sockets, bound.
#[derive(Default)]
pub(crate) struct Doors {
    pub rtmp: Option<TcpListener>,
    pub srt: Option<(srt_tokio::SrtListener, srt_tokio::SrtIncoming)>,
}

impl Doors {
    /// Serves both doors until dropped (every publisher's connection
    /// dropped with them; a broadcast cut so is kept by the next start's
    /// recovery).
    pub(crate) fn serve(self, lives: &Arc<crate::ingest::live::Lives>) -> Vec<super::AbortOnDrop> {
        use crate::ingest::live::{rtmp, srt};
        let mut tasks = Vec::new();
        if let Some(l) = self.rtmp {
            let serve = rtmp::serve(l, lives.clone(), std::future::pending());
            tasks.push(super::AbortOnDrop(tokio::spawn(serve)));
        }
        if let Some(l) = self.srt {
            let serve = srt::serve(l, lives.clone(), std::future::pending());
            tasks.push(super::AbortOnDrop(tokio::spawn(serve)));
        }
        tasks
    }
}

/// Opens the webhook outbox, where the lifecycle hands its events.
pub(super) async fn open_webhooks(
    config: &Config,
    clock: &crate::clock::SharedClock,
    metrics: &Arc<crate::metrics::Metrics>,
    videos: &crate::catalog::Lifecycle,
) -> Result<Option<Arc<crate::webhooks::Webhooks>>, Error> {
    let (config, clock, metrics) = (config.clone(), clock.clone(), metrics.clone());
    let webhooks = tokio::task::spawn_blocking(move || {
        crate::webhooks::Webhooks::open(&config, clock, metrics)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    if let Some(w) = &webhooks {
        videos.set_outbox(w.clone());
    }
    Ok(webhooks)
}

/// The bucket settings of `--store s3://…` (credentials from the
/// environment); `None` for a folder.
pub(super) fn s3_settings(config: &Config) -> Option<crate::storage::s3::S3Settings> {
    let crate::config::StoreKind::S3 { bucket, prefix } = &config.store else {
        return None;
    };
    let s = crate::storage::s3::S3Settings {
        bucket: bucket.clone(),
        prefix: prefix.clone(),
        endpoint: config.s3_endpoint.clone(),
        region: config.s3_region.clone(),
        path_style: config.s3_path_style,
        ..Default::default()
    };
    Some(s.with_env_credentials())
}

/// Opens the store `config` names and loads its records.
pub(super) fn open_catalog(
    config: &Config,
    clock: crate::clock::SharedClock,
) -> Result<(Catalog, Vec<crate::catalog::Unreadable>), Error> {
    let Some(s3) = s3_settings(config) else {
        return Ok(Catalog::open(Store::open(&config.storage)?, clock)?);
    };
    let keep = config.keep_source == crate::config::KeepSource::Always;
    let store = Store::open_s3(&config.storage, &s3)?.keeping_uploads(keep);
    let node = config.node();
    let store = store
        .probe_writes(&format!("_probe/{node}"))
        .map_err(|e| Error::Internal(format!("cannot use the bucket {}: {e}", s3.bucket)))?;
    let cas = store.traits().exclusive_writes;
    tracing::info!(bucket = %s3.bucket, prefix = %s3.prefix, node = %node,
        conditional_writes = cas, "videos in an S3 bucket");
    if !cas {
        tracing::warn!(
            "the S3 server ignores conditional writes: a lost node's jobs are not taken over \
             and changes made through two nodes at once may overwrite each other; run one node, \
             or use a store that has them (AWS S3, R2, MinIO)"
        );
    }
    let lease = std::time::Duration::from_secs(config.lease_secs);
    Ok(Catalog::open_as(store, clock, Some((node, lease)))?)
}

/// Runs crash recovery, then counts what each video holds in the quota
/// (re-queued jobs keep their reservations); the imports to take up again.
pub(super) async fn recover(
    videos: &Arc<crate::catalog::Lifecycle>,
    unreadable: Vec<crate::catalog::Unreadable>,
    jobs: &Arc<Jobs>,
    quota: &Arc<crate::storage::Quota>,
    keep: crate::config::KeepSource,
) -> Result<Vec<crate::storage::VideoId>, Error> {
    let catalog = videos.catalog();
    let (recovering, jobs) = (videos.clone(), jobs.clone());
    let report = tokio::task::spawn_blocking(move || {
        crate::recovery::recover(&recovering, unreadable, &jobs, keep)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?;
    tracing::info!(
        requeued = report.requeued,
        resumable = report.resumable,
        imports = report.imports.len(),
        interrupted = report.interrupted,
        strays_removed = report.strays_removed,
        rebuilt = report.rebuilt,
        damaged = report.damaged,
        deleted = report.deleted,
        errors = report.errors,
        "storage recovered"
    );
    let (catalog, quota) = (catalog.clone(), quota.clone());
    tokio::task::spawn_blocking(move || {
        // One listing (a bucket also holds other nodes' videos).
        match catalog.store().sizes() {
            Ok(sizes) => quota.sync(&sizes),
            Err(e) => tracing::warn!(error = %e, "cannot measure the store"),
        }
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(report.imports)
}
