//! The library: `GET /videos`, `GET`/`PATCH`/`DELETE /videos/{id}`, and
//! `GET /videos/{id}/events` (Server-Sent Events).

use super::{empty, json, AppState, Body, ReqBody};
use crate::catalog::{Change, Record, Status};
use crate::storage::VideoId;
use crate::Error;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Limited, StreamBody};
use hyper::body::Frame;
use std::sync::Arc;
use std::time::Duration;

/// Page size of `GET /videos` unless `?limit=` says otherwise, and its cap.
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;
/// Largest `PATCH` body we read.
const MAX_PATCH_BODY: usize = 16 * 1024;
/// Time allowed to send a `PATCH` body.
const PATCH_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest title, in characters.
const MAX_TITLE: usize = 200;
/// An SSE comment this often keeps proxies from closing a quiet stream.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);
/// How long `DELETE` waits for a running job to stop before it answers
/// `202 Accepted` and finishes in the background.
const DELETE_WAIT: Duration = Duration::from_secs(5);

/// A small JSON body (a `PATCH`, a token's or a clip's options); `None`
/// when it is empty.
pub(crate) async fn small_json(body: impl ReqBody) -> Result<Option<serde_json::Value>, Error> {
    let collect = Limited::new(body, MAX_PATCH_BODY).collect();
    let body = tokio::time::timeout(PATCH_BODY_TIMEOUT, collect)
        .await
        .map_err(|_| Error::BodyTimeout)?
        .map_err(|_| {
            Error::BadRequest(format!(
                "the body must be JSON under {MAX_PATCH_BODY} bytes"
            ))
        })?
        .to_bytes();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| Error::BadRequest(format!("the body is not JSON: {e}")))
}

pub(crate) fn known_id(state: &AppState, id: VideoId) -> Result<Record, Error> {
    state.catalog.get(id).ok_or(Error::NotFound)
}

pub(crate) fn get(state: &AppState, base: &str, id: VideoId) -> Result<Response<Body>, Error> {
    let rec = known_id(state, id)?;
    Ok(json(StatusCode::OK, &super::record_json(state, base, &rec)))
}

fn parse_status(s: &str) -> Result<Status, Error> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        Error::BadRequest(format!(
            "unknown status `{s}` (receiving, queued, processing, ready, failed, deleting, live)"
        ))
    })
}

/// `GET /videos?limit=&cursor=&status=`: newest first.
pub(crate) fn list(
    state: &AppState,
    base: &str,
    query: Option<&str>,
) -> Result<Response<Body>, Error> {
    let (mut limit, mut cursor, mut status) = (DEFAULT_PAGE, None, None);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| Error::BadRequest(format!("limit must be 1..={MAX_PAGE}")))?;
            }
            "cursor" => cursor = Some(v.to_owned()),
            "status" => status = Some(parse_status(v)?),
            _ => {}
        }
    }
    let (videos, next) = state.catalog.list(status, cursor.as_deref(), limit);
    let videos: Vec<serde_json::Value> = videos
        .iter()
        .map(|r| super::record_json(state, base, r))
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"videos": videos, "next_cursor": next}),
    ))
}

/// `PATCH /videos/{id}` with `{"title": "…"}`.
pub(crate) async fn patch(
    state: &AppState,
    id: VideoId,
    body: impl ReqBody,
) -> Result<Response<Body>, Error> {
    known_id(state, id)?;
    let v = small_json(body)
        .await?
        .ok_or_else(|| Error::BadRequest("expected {\"title\": \"…\"}".into()))?;
    let title = v
        .get("title")
        .and_then(|t| t.as_str())
        .ok_or_else(|| Error::BadRequest("expected {\"title\": \"…\"}".into()))?;
    let title: String = title.chars().filter(|c| !c.is_control()).collect();
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE {
        return Err(Error::BadRequest(format!(
            "the title must have 1 to {MAX_TITLE} characters"
        )));
    }
    let videos = state.videos.clone();
    let title = Change::Title(title.to_owned());
    let rec = tokio::task::spawn_blocking(move || videos.apply(id, title)).await??;
    Ok(json(StatusCode::OK, &rec.public_json()))
}

/// `DELETE /videos/{id}`, all or nothing: the tombstone (`deleting`,
/// durable, with its `video.deleted` event) refuses every other change;
/// the job or upload is stopped; only once every writer has left are the
/// files removed (the record last) and the record forgotten (204). If a
/// writer does not stop within [`DELETE_WAIT`], the answer is
/// `202 {"status":"deleting"}` and the removal finishes in the background
/// (or at the next start).
pub(crate) async fn delete(state: &AppState, id: VideoId) -> Result<Response<Body>, Error> {
    let elsewhere = state.catalog.held_elsewhere(&known_id(state, id)?);
    if elsewhere && !state.catalog.store().traits().exclusive_writes {
        // Its node's next renewal could overwrite `deleting` unseen.
        return Err(Error::OtherNode);
    }
    let accepted = || {
        json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"id": id, "status": Status::Deleting}),
        )
    };
    if elsewhere {
        // The node running it sees `deleting` at its next renewal, stops
        // the job and removes every object.
        let videos = state.videos.clone();
        tokio::task::spawn_blocking(move || videos.tombstone(id)).await??;
        tracing::info!(id = %id, "deletion handed to the node running this video");
        return Ok(accepted());
    }
    let done = state.videos.delete(id, DELETE_WAIT).await?;
    state.uploads.forget(id);
    if !done {
        tracing::info!(id = %id, "deletion continues in the background");
        return Ok(accepted());
    }
    tracing::info!(id = %id, "video deleted");
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    Ok(res)
}

/// What an event carries.
fn event_payload(r: &Record) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "status": r.status,
        "progress": r.progress,
        "bytes_received": r.bytes_received,
        "error": r.error,
    })
}

fn sse_event(name: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// State of one event stream.
struct EventStream {
    /// Its place among `--max-event-streams`, held while it lives.
    _place: tokio::sync::OwnedSemaphorePermit,
    catalog: Arc<crate::catalog::Catalog>,
    changes: tokio::sync::watch::Receiver<u64>,
    id: VideoId,
    /// Status and whole percent last sent: a change of either is an event.
    last: Option<(Status, i64)>,
    finished: bool,
    /// Since when nothing was sent (keep-alives of a polling stream).
    quiet: tokio::time::Instant,
}

impl EventStream {
    /// With a shared store (another node may run the job): waits for a
    /// local change or a second, then reads the record again. Returns a
    /// keep-alive comment when the stream has been quiet for long.
    async fn poll_store(&mut self) -> Option<Bytes> {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.changes.changed()).await;
        let (catalog, id) = (self.catalog.clone(), self.id);
        // A failed read keeps what memory holds.
        let _ = tokio::task::spawn_blocking(move || catalog.refresh(id)).await;
        if self.quiet.elapsed() >= SSE_KEEPALIVE {
            self.quiet = tokio::time::Instant::now();
            return Some(Bytes::from_static(b": keep-alive\n\n"));
        }
        None
    }

    /// Waits for the next meaningful change; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        loop {
            let Some(rec) = self.catalog.get(self.id) else {
                self.finished = true;
                return Some(sse_event("deleted", &serde_json::json!({"id": self.id})));
            };
            let key = (rec.status, (rec.progress * 100.0).floor() as i64);
            if self.last != Some(key) {
                self.last = Some(key);
                self.quiet = tokio::time::Instant::now();
                self.finished = !rec.status.is_active();
                let name = serde_json::to_value(rec.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                return Some(sse_event(&name, &event_payload(&rec)));
            }
            if self.catalog.node().is_some() {
                if let Some(quiet) = self.poll_store().await {
                    return Some(quiet);
                }
                continue;
            }
            tokio::select! {
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = tokio::time::sleep(SSE_KEEPALIVE) => return Some(Bytes::from_static(b": keep-alive\n\n")),
            }
        }
    }
}

/// `GET /videos/{id}/events`: one event per status change or whole percent
/// of progress, named after the status; ends after `ready` or `failed`.
pub(crate) fn events(
    state: &AppState,
    req: &http::request::Parts,
    id: VideoId,
) -> Result<Response<Body>, Error> {
    known_id(state, id)?;
    let place = state
        .event_streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| Error::Busy)?;
    // Streams live long: they hold a place of their own, not one of the
    // connection places every other request needs. (An HTTP/2 connection
    // keeps its place: its other streams go on over it.)
    let h1 = req.version <= http::Version::HTTP_11;
    if let Some(slot) = req.extensions.get::<super::ConnSlot>().filter(|_| h1) {
        slot.release();
    }
    let stream = EventStream {
        _place: place,
        catalog: state.catalog.clone(),
        changes: state.catalog.subscribe(),
        id,
        last: None,
        finished: false,
        quiet: tokio::time::Instant::now(),
    };
    let frames = futures_util::stream::unfold(stream, |mut s| async move {
        let chunk = s.next().await?;
        Some((Ok::<_, std::io::Error>(Frame::data(chunk)), s))
    });
    let mut res = Response::new(StreamBody::new(frames).boxed_unsync());
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if h1 {
        // The connection gave its place back: it ends with the stream.
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(res)
}
