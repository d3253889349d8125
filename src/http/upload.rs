//! `POST /upload`: the tutorial's endpoint. Multipart, file in field `video`
//! (or the first file field); answers 201 with the playback URL once the
//! body is in and the probe accepted it.

use super::{base_url, json, AppState, Body, ReqBody};
use crate::ingest::{self, IngestContext, RawPrefix};
use crate::Error;
use futures_util::TryStreamExt;
use http::request::Parts;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Slack over `--max-upload-bytes` for the multipart framing around the file.
const FRAMING_SLACK: u64 = 1 << 20;

/// Holds one of `--max-uploads` places while an upload is received.
struct ReceivingGuard<'a>(&'a AtomicUsize);

impl Drop for ReceivingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) async fn post(
    state: &AppState,
    req: &Parts,
    body: impl ReqBody,
    client: std::net::IpAddr,
) -> Result<Response<Body>, Error> {
    let boundary = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or(Error::NotMultipart)?;
    let max = state.config.max_upload_bytes;
    let content_length = req
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Refuse before reading a byte (and before hyper sends 100-continue).
    if content_length.is_some_and(|n| n > max.saturating_add(FRAMING_SLACK)) {
        return Err(Error::TooLarge { limit: max });
    }
    state
        .upload_rate
        .check(client)
        .map_err(|retry_after| Error::RateLimited { retry_after })?;
    if state.uploads_receiving.fetch_add(1, Ordering::AcqRel) >= state.config.max_uploads {
        state.uploads_receiving.fetch_sub(1, Ordering::AcqRel);
        return Err(Error::Busy);
    }
    let _receiving = ReceivingGuard(&state.uploads_receiving);
    let permit = state.jobs.try_reserve().ok_or(Error::Busy)?;
    // Refused before reading a byte when the declared size cannot fit (the
    // place itself is reserved once the file part starts).
    let declared = content_length.map(|n| n.saturating_sub(FRAMING_SLACK.min(n / 2)));
    if !state.quota.fits(declared.unwrap_or(1)) {
        return Err(Error::QuotaExceeded {
            limit: state.config.max_storage_bytes,
        });
    }
    let base = base_url(state, &req.headers);

    let prefix: RawPrefix = Arc::new(Mutex::new(Vec::new()));
    let body_stream = {
        let prefix = prefix.clone();
        body.into_data_stream()
            .inspect_ok(move |chunk| ingest::remember_prefix(&prefix, chunk))
    };
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(max.saturating_add(FRAMING_SLACK))
            .per_field(max.saturating_add(1)),
    );
    let multipart = multer::Multipart::with_constraints(body_stream, boundary.clone(), constraints);
    let ctx = IngestContext {
        jobs: &state.jobs,
        catalog: &state.catalog,
        max_upload_bytes: max,
        idle_timeout: Duration::from_secs(state.config.body_idle_timeout_secs.max(1)),
        encrypt: state.config.encrypt,
        min_rate: state.config.min_upload_bytes_per_sec,
        quota: &state.quota,
    };
    let expected = |field: &str| {
        let p = prefix.lock().unwrap_or_else(|e| e.into_inner());
        content_length.and_then(|cl| ingest::expected_file_size(&p, cl, &boundary, field))
    };
    let accepted = ingest::ingest(&ctx, multipart, permit, expected).await?;
    let m = &state.metrics;
    m.uploads_accepted
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    m.upload_bytes.fetch_add(
        accepted.record.bytes_received,
        std::sync::atomic::Ordering::Relaxed,
    );
    let id = accepted.id;
    let status_url = format!("{base}/videos/{id}");
    let body = serde_json::json!({
        "id": id,
        "playback_url": super::playback_url(state, &base, id).0,
        "status_url": status_url,
        "status": accepted.record.status,
    });
    let mut res = json(StatusCode::CREATED, &body);
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}
