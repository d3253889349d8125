//! Operations: `GET /healthz` (liveness), `GET /readyz` (can we take an
//! upload now?) and `GET /metrics` (Prometheus text).

use super::{full, json, AppState, Body};
use crate::catalog::Status;
use crate::metrics::Gauges;
use crate::Error;
use http::{header, HeaderValue, Response, StatusCode};

pub(crate) fn healthz() -> Response<Body> {
    json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// Each check: `{"ok": bool, "detail": "…"}`; 200 when all pass, else 503.
pub(crate) async fn readyz(state: &AppState) -> Result<Response<Body>, Error> {
    let root = state.catalog.store().root().to_path_buf();
    let min_free = state.config.min_free_bytes;
    let (writable, free) = tokio::task::spawn_blocking(move || {
        // A name of its own per probe: concurrent probes never share one.
        let probe = crate::storage::fsio::tmp_path(&root.join(".readyz"));
        let writable = std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe));
        (writable, crate::media::free_bytes(&root))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?;
    let pending = state.jobs.pending();
    let store = object_store_check(state).await;
    let mut checks = serde_json::json!({
        "storage_writable": match &writable {
            Ok(()) => serde_json::json!({"ok": true}),
            Err(e) => serde_json::json!({"ok": false, "detail": format!("cannot write in the storage folder: {e}")}),
        },
        "disk_free": match free {
            Some(b) => serde_json::json!({"ok": b >= min_free, "detail": format!("{b} bytes free, need {min_free}")}),
            None => serde_json::json!({"ok": false, "detail": "cannot read free space"}),
        },
        "encoders": {
            "ok": crate::media::encoders_available(),
            "detail": "libx264 and aac in the system FFmpeg",
        },
        "job_queue": {
            "ok": pending < state.config.max_pending,
            "detail": format!("{pending} of {} uploads/jobs in flight", state.config.max_pending),
        },
    });
    if let (Some(c), Some(m)) = (store, checks.as_object_mut()) {
        m.insert("object_store".into(), c);
    }
    // Not a readiness failure: what is exposed, said where operators look.
    let exposure = state.config.exposure();
    let access = match &exposure {
        Some(e) => serde_json::json!({"ok": true, "detail": e}),
        None => {
            serde_json::json!({"ok": true, "detail": "the API needs a token, or only this machine reaches it"})
        }
    };
    if let Some(m) = checks.as_object_mut() {
        m.insert("api_access".into(), access);
    }
    let ready = checks
        .as_object()
        .is_some_and(|m| m.values().all(|c| c["ok"] == true));
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json(
        status,
        &serde_json::json!({"ready": ready, "checks": checks}),
    ))
}

/// With videos in a bucket: whether it answers within two seconds.
async fn object_store_check(state: &AppState) -> Option<serde_json::Value> {
    let store = state.catalog.store().clone();
    if !store.traits().remote {
        return None;
    }
    let store_traits = store.traits();
    let probe = tokio::task::spawn_blocking(move || store.reachable());
    let answer = tokio::time::timeout(std::time::Duration::from_secs(2), probe).await;
    Some(match answer {
        Ok(Ok(Ok(()))) => {
            let cas = match store_traits.exclusive_writes {
                true => "yes",
                false => "no (a lost node's jobs are not taken over)",
            };
            let detail = format!("the bucket answers; conditional writes: {cas}");
            serde_json::json!({"ok": true, "detail": detail})
        }
        Ok(Ok(Err(e))) => {
            serde_json::json!({"ok": false, "detail": format!("the bucket fails: {e}")})
        }
        _ => serde_json::json!({"ok": false, "detail": "the bucket does not answer"}),
    })
}

pub(crate) async fn metrics(state: &AppState) -> Result<Response<Body>, Error> {
    let mut g = Gauges::default();
    let counts = state.catalog.count_by_status();
    let count = |s| counts.get(&s).copied().unwrap_or(0);
    g.jobs_queued = count(Status::Queued);
    g.jobs_running = count(Status::Processing);
    g.uploads_receiving = count(Status::Receiving);
    g.lives = count(Status::Live);
    g.lives_publishing = state.lives.publishing() as u64;
    g.webhooks_pending = state.webhooks.as_ref().map_or(0, |w| w.pending());
    (g.publish_queued, g.publish_queue_full) = crate::hls::queue::stats();
    (g.blocking_waiting, g.blocking_total) = crate::hls::edge::stats();
    let store = state.catalog.store().clone();
    // A bucket is measured by the quota's periodic listing, not per scrape.
    let measured = store.traits().remote.then(|| state.quota.total());
    let (used, free) = tokio::task::spawn_blocking(move || {
        let used = measured.unwrap_or_else(|| store.total_size());
        (used, crate::media::free_bytes(store.root()))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?;
    g.storage_used_bytes = used;
    g.storage_free_bytes = free;
    g.quota_stored_bytes = state.quota.stored();
    let mut res = Response::new(full(state.metrics.render(&g)));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(res)
}
