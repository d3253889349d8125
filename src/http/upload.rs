//! `POST /upload`: the tutorial's endpoint. Multipart, file in field `video`
//! (or the first file field); answers 201 with the playback URL once the
//! body is in and the probe accepted it.

use super::{base_url, json, AppState, Body, ReqBody};
use crate::ingest::form::{self, RawPrefix};
use crate::ingest::guard::{BodyGuard, GuardState, Limits};
use crate::ingest::{self, Accepted, IngestContext};
use crate::jobs::PendingPermit;
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
pub(crate) struct ReceivingGuard<'a>(&'a AtomicUsize);

impl<'a> ReceivingGuard<'a> {
    /// Takes one of the `max` places counted by `places` (`Busy` when
    /// none is left).
    pub(crate) fn take(places: &'a AtomicUsize, max: usize) -> Result<Self, Error> {
        if places.fetch_add(1, Ordering::AcqRel) >= max {
            places.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Busy);
        }
        Ok(ReceivingGuard(places))
    }
}

impl Drop for ReceivingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The places an upload holds while it is received.
pub(crate) struct Admission<'a> {
    pub receiving: ReceivingGuard<'a>,
    pub permit: PendingPermit,
}

/// The cheap checks every upload passes before a byte is read (and before
/// hyper sends `100 Continue`): size, rate, upload and job places, quota.
pub(crate) fn admit<'a>(
    state: &'a AppState,
    declared: Option<u64>,
    client: std::net::IpAddr,
) -> Result<Admission<'a>, Error> {
    let max = state.config.max_upload_bytes;
    if declared.is_some_and(|n| n > max) {
        return Err(Error::TooLarge { limit: max });
    }
    state
        .upload_rate
        .check(super::client::key(client, state.config.ipv6_prefix))
        .map_err(|retry_after| Error::RateLimited { retry_after })?;
    let receiving = ReceivingGuard::take(&state.uploads_receiving, state.config.max_uploads)?;
    let permit = state.jobs.try_reserve().ok_or(Error::Busy)?;
    // Refused when the declared size cannot fit (the place itself is
    // reserved once the file's bytes start).
    if !state.quota.fits(declared.unwrap_or(1)) {
        return Err(Error::QuotaExceeded {
            limit: state.config.max_storage_bytes,
        });
    }
    Ok(Admission { receiving, permit })
}

/// The guard's limits for an upload body.
pub(crate) fn limits(state: &AppState) -> Limits {
    upload_limits(&state.config)
}

/// The guard's limits for an upload body, from the configuration.
pub(crate) fn upload_limits(config: &crate::config::Config) -> Limits {
    Limits {
        idle: Duration::from_secs(config.body_idle_timeout_secs.max(1)),
        min_rate: config.min_upload_bytes_per_sec,
        before_file: form::FORM_LIMIT,
    }
}

/// What the ingest needs, from the server's state.
pub(crate) fn ingest_context(state: &AppState) -> IngestContext<'_> {
    IngestContext {
        jobs: &state.jobs,
        videos: &state.videos,
        quota: &state.quota,
        max_upload_bytes: state.config.max_upload_bytes,
    }
}

fn header_u64(req: &Parts, name: header::HeaderName) -> Option<u64> {
    req.headers.get(name)?.to_str().ok()?.parse().ok()
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
    let content_length = header_u64(req, header::CONTENT_LENGTH);
    let max = state.config.max_upload_bytes;
    // The file is the body minus the framing around it.
    let declared = content_length.map(|n| n.saturating_sub(FRAMING_SLACK.min(n / 2)));
    let admission = admit(state, declared, client)?;
    let prefix: RawPrefix = Arc::new(Mutex::new(Vec::new()));
    let guard = Arc::new(GuardState::default());
    let body_stream = {
        let prefix = prefix.clone();
        let raw = body
            .into_data_stream()
            .inspect_ok(move |chunk| form::remember_prefix(&prefix, chunk));
        BodyGuard::new(raw, limits(state), guard.clone())
    };
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(max.saturating_add(FRAMING_SLACK))
            .per_field(max.saturating_add(1)),
    );
    let multipart = multer::Multipart::with_constraints(body_stream, boundary.clone(), constraints);
    let expected = |field: &str| {
        let p = prefix.lock().unwrap_or_else(|e| e.into_inner());
        content_length.and_then(|cl| form::expected_file_size(&p, cl, &boundary, field))
    };
    let ctx = ingest_context(state);
    let encrypt = state.config.encrypt;
    let accepted = ingest::ingest(
        &ctx,
        multipart,
        &guard,
        (encrypt, &state.config.codecs),
        admission.permit,
        expected,
    )
    .await?;
    Ok(created(state, &base_url(state, req), &accepted))
}

/// A video made behind its answer (an import, a clip): `work` runs on a
/// task of its own and says through its sender once the video exists (or
/// why it could not be made), then goes on; the answer is the 201.
pub(crate) async fn answered_early<F>(
    state: &AppState,
    parts: &Parts,
    work: impl FnOnce(Created) -> F,
) -> Result<Response<Body>, Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(work(tx));
    let accepted = rx
        .await
        .map_err(|_| Error::Internal("the video's task ended before it was made".into()))??;
    Ok(created(state, &base_url(state, parts), &accepted))
}

/// Where a video made behind its answer tells the waiting request.
pub(crate) type Created = tokio::sync::oneshot::Sender<Result<Accepted, Error>>;

/// Admits and creates a video made behind its answer (an import, a
/// clip): its upload and receiving place, or `None` once `created` has
/// heard why not.
pub(crate) async fn start_early<'a>(
    state: &'a AppState,
    ctx: &'a IngestContext<'a>,
    client: std::net::IpAddr,
    new: crate::ingest::NewUpload,
    created: &mut Option<Created>,
) -> Option<(crate::ingest::Upload<'a>, ReceivingGuard<'a>)> {
    let started = match admit(state, None, client) {
        Ok(a) => crate::ingest::Upload::start(ctx, new, a.permit)
            .await
            .map(|up| (up, a.receiving)),
        Err(e) => Err(e),
    };
    match started {
        Ok(s) => Some(s),
        Err(e) => {
            if let Some(tx) = created.take() {
                let _ = tx.send(Err(e));
            }
            None
        }
    }
}

/// Tells the waiting request of the video `up` made; the upload back, or
/// `None` (given up) when its record is already gone.
pub(crate) async fn tell_created<'a>(
    state: &AppState,
    up: crate::ingest::Upload<'a>,
    created: Option<Created>,
) -> Option<crate::ingest::Upload<'a>> {
    let Some(record) = state.catalog.get(up.id) else {
        let e = Error::Internal("the new video's record is gone".into());
        if let Some(tx) = created {
            let _ = tx.send(Err(Error::clone_for_client(&e)));
        }
        up.abandon(e).await;
        return None;
    };
    // The client may be gone: the work goes on (its record says how).
    if let Some(tx) = created {
        let _ = tx.send(Ok(Accepted { id: up.id, record }));
    }
    Some(up)
}

/// A pending-job place for work taken up again at start, once one is free.
pub(crate) async fn job_place(state: &AppState) -> PendingPermit {
    loop {
        match state.jobs.try_reserve() {
            Some(p) => return p,
            None => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// The 201 of an accepted upload (or import), counted.
pub(crate) fn created(state: &AppState, base: &str, accepted: &Accepted) -> Response<Body> {
    let m = &state.metrics;
    m.uploads_accepted.fetch_add(1, Ordering::Relaxed);
    m.upload_bytes
        .fetch_add(accepted.record.bytes_received, Ordering::Relaxed);
    let id = accepted.id;
    let status_url = format!("{base}/videos/{id}");
    let body = serde_json::json!({
        "id": id,
        "playback_url": super::playback_url(state, base, id, None).0,
        "status_url": status_url,
        "status": accepted.record.status,
        "title": accepted.record.title,
    });
    let mut res = json(StatusCode::CREATED, &body);
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}
