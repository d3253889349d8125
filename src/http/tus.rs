//! The tus 1.0.0 resumable upload protocol at `/files/`
//! (<https://tus.io/protocols/resumable-upload>): core (`HEAD`, `PATCH`,
//! `OPTIONS`) and the extensions creation, creation-with-upload,
//! creation-defer-length, termination, expiration and checksum (sha1,
//! sha256); and `POST /videos/direct-upload`, which hands out a tus URL
//! for one video that works without the API token.
//!
//! The bytes go to [`crate::ingest::resumable`]; here are the headers, the
//! rules of who may do what, and the answers.

use super::{base_url, empty, json, AppState, Body, ReqBody};
use crate::catalog::Grant;
use crate::ingest::resumable::{Checksum, Creation, Patch};
use crate::storage::VideoId;
use crate::Error;
use base64::Engine;
use http::request::Parts;
use http::{header, HeaderName, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use std::sync::atomic::Ordering;

/// The protocol version spoken.
pub(crate) const VERSION: &str = "1.0.0";
const EXTENSIONS: &str =
    "creation,creation-with-upload,creation-defer-length,termination,expiration,checksum";
/// What a page on another origin may read of an answer.
const EXPOSE: &str = "Upload-Offset, Upload-Length, Upload-Defer-Length, Upload-Metadata, \
Upload-Expires, Location, Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, \
Tus-Checksum-Algorithm";
const OCTETS: &str = "application/offset+octet-stream";
/// Longest lifetime of a direct upload URL: 7 days.
const MAX_DIRECT_SECS: u64 = 7 * 24 * 3600;
/// Lifetime of a direct upload URL when the request does not say: 1 h.
const DEFAULT_DIRECT_SECS: u64 = 3600;

fn set(res: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

/// The headers every answer under `/files` carries, errors included.
pub(crate) fn tus_headers(res: &mut Response<Body>) {
    set(res, "tus-resumable", VERSION);
    res.headers_mut().insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE),
    );
    if res.status() == StatusCode::PRECONDITION_FAILED {
        set(res, "tus-version", VERSION);
    }
}

fn text<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name)?.to_str().ok().map(str::trim)
}

fn number(parts: &Parts, name: &str) -> Result<Option<u64>, Error> {
    text(parts, name)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| Error::BadRequest(format!("{name} must be a whole number")))
        })
        .transpose()
}

/// `Tus-Resumable: 1.0.0` on every request but `OPTIONS` (412 otherwise).
fn check_version(parts: &Parts) -> Result<(), Error> {
    match text(parts, "tus-resumable") {
        Some(VERSION) => Ok(()),
        _ => Err(Error::UnsupportedVersion),
    }
}

/// The method a tus client means: `X-HTTP-Method-Override` on a `POST`
/// (for environments that cannot send `PATCH` or `DELETE`).
pub(crate) fn method_of(parts: &Parts) -> Method {
    match (&parts.method, text(parts, "x-http-method-override")) {
        (&Method::POST, Some(m)) => Method::from_bytes(m.as_bytes()).unwrap_or(Method::POST),
        (m, _) => m.clone(),
    }
}

/// `OPTIONS /files`: what this server speaks.
pub(crate) fn options(state: &AppState) -> Response<Body> {
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    set(&mut res, "tus-version", VERSION);
    set(&mut res, "tus-extension", EXTENSIONS);
    set(
        &mut res,
        "tus-max-size",
        &state.config.max_upload_bytes.to_string(),
    );
    set(&mut res, "tus-checksum-algorithm", "sha1,sha256");
    res
}

fn expires_header(res: &mut Response<Body>, unix: u64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    set(res, "upload-expires", &httpdate::fmt_http_date(t));
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs.
fn metadata(raw: &str) -> Result<Vec<(String, String)>, Error> {
    let b64 = base64::engine::general_purpose::STANDARD;
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once(' ').unwrap_or((pair, ""));
            let v = b64
                .decode(v.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| Error::BadRequest(format!("Upload-Metadata `{k}` is not base64")))?;
            Ok((k.to_owned(), v))
        })
        .collect()
}

/// A new upload's description from its creation request.
fn creation(state: &AppState, parts: &Parts) -> Result<Creation, Error> {
    let length = number(parts, "upload-length")?;
    let deferred = text(parts, "upload-defer-length") == Some("1");
    if length.is_some() == deferred {
        return Err(Error::BadRequest(
            "send Upload-Length, or Upload-Defer-Length: 1".into(),
        ));
    }
    let max = state.config.max_upload_bytes;
    if length.is_some_and(|l| l > max) {
        return Err(Error::TooLarge { limit: max });
    }
    let raw = text(parts, "upload-metadata").filter(|m| !m.is_empty());
    if raw.is_some_and(|m| m.len() > crate::ingest::form::FIELD_LIMIT) {
        return Err(Error::TooLarge {
            limit: crate::ingest::form::FIELD_LIMIT as u64,
        });
    }
    let meta = raw.map(metadata).transpose()?.unwrap_or_default();
    let get = |k: &str| {
        meta.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    Ok(Creation {
        file_name: get("filename").and_then(crate::ingest::form::sanitize_file_name),
        title: get("title").and_then(crate::ingest::form::clean_title),
        encrypt: state.config.encrypt || matches!(get("encrypt"), Some("1" | "true" | "on")),
        codecs: crate::ingest::codecs_asked(get("codecs"), &state.config.codecs)?,
        length,
        metadata: raw.map(str::to_owned),
        expires_at: state.clock.unix() + state.config.upload_expiry_secs,
        grant: None,
    })
}

/// The checks every new upload passes: the per-client rate and the quota.
fn admit_new(state: &AppState, client: std::net::IpAddr, length: u64) -> Result<(), Error> {
    state
        .upload_rate
        .check(super::client::key(client, state.config.ipv6_prefix))
        .map_err(|retry_after| Error::RateLimited { retry_after })?;
    if !state.quota.fits(length) {
        return Err(Error::QuotaExceeded {
            limit: state.config.max_storage_bytes,
        });
    }
    Ok(())
}

/// `POST /files`: creates an upload (and takes its first bytes when the
/// request carries them). 201 with `Location` and
/// `{"id","upload_url","playback_url","status_url"}`.
pub(crate) async fn create(
    state: &AppState,
    parts: &Parts,
    body: impl ReqBody,
    client: std::net::IpAddr,
) -> Result<Response<Body>, Error> {
    check_version(parts)?;
    let c = creation(state, parts)?;
    admit_new(state, client, c.length.unwrap_or(1))?;
    let expires_at = c.expires_at;
    let id = state.uploads.create(c).await?;
    state
        .metrics
        .uploads_accepted
        .fetch_add(1, Ordering::Relaxed);
    tracing::info!(id = %id, "resumable upload created");
    let with_bytes = text(parts, "content-type") == Some(OCTETS);
    let offset = if with_bytes {
        let p = Patch::default();
        match receive(state, id, p, body).await {
            Ok(o) => Some(o),
            // The upload is gone (refused media): its error is the answer.
            Err(e) if state.catalog.peek(id, |_| ()).is_none() => return Err(e),
            Err(_) => Some(state.uploads.state(id).map_or(0, |(u, _)| u.offset)),
        }
    } else {
        None
    };
    let base = base_url(state, parts);
    let location = match &state.config.public_url {
        Some(_) => format!("{base}/files/{id}"),
        None if super::forwarded(parts) => format!("{base}/files/{id}"),
        None => format!("/files/{id}"),
    };
    let mut res = json(StatusCode::CREATED, &answer(state, &base, id, None));
    set(&mut res, "location", &location);
    if let Some(o) = offset {
        set(&mut res, "upload-offset", &o.to_string());
    }
    expires_header(&mut res, expires_at);
    Ok(res)
}

/// What a creation answer says about the new video.
fn answer(state: &AppState, base: &str, id: VideoId, token: Option<&str>) -> serde_json::Value {
    let upload_url = match token {
        Some(t) => format!("{base}/files/{id}?token={t}"),
        None => format!("{base}/files/{id}"),
    };
    serde_json::json!({
        "id": id,
        "upload_url": upload_url,
        "playback_url": super::playback_url(state, base, id, None).0,
        "status_url": format!("{base}/videos/{id}"),
    })
}

/// `HEAD /files/{id}`: where the upload stands.
pub(crate) fn head(state: &AppState, parts: &Parts, id: VideoId) -> Result<Response<Body>, Error> {
    check_version(parts)?;
    let (u, _) = state.uploads.state(id)?;
    let mut res = Response::new(empty());
    set(&mut res, "upload-offset", &u.offset.to_string());
    match u.length {
        Some(l) => set(&mut res, "upload-length", &l.to_string()),
        None => set(&mut res, "upload-defer-length", "1"),
    }
    if let Some(m) = &u.metadata {
        set(&mut res, "upload-metadata", m);
    }
    if !u.is_complete() {
        expires_header(&mut res, u.expires_at);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `PATCH /files/{id}`: appends the body at `Upload-Offset`; 204 with the
/// new (durable) offset.
pub(crate) async fn patch(
    state: &AppState,
    parts: &Parts,
    id: VideoId,
    body: impl ReqBody,
) -> Result<Response<Body>, Error> {
    check_version(parts)?;
    if text(parts, "content-type") != Some(OCTETS) {
        return Err(Error::WrongContentType(OCTETS));
    }
    let p = Patch {
        offset: number(parts, "upload-offset")?
            .ok_or_else(|| Error::BadRequest("Upload-Offset is missing".into()))?,
        length: number(parts, "upload-length")?,
        checksum: text(parts, "upload-checksum").map(checksum).transpose()?,
    };
    let offset = receive(state, id, p, body).await?;
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    set(&mut res, "upload-offset", &offset.to_string());
    if let Ok((u, _)) = state.uploads.state(id) {
        if !u.is_complete() {
            expires_header(&mut res, u.expires_at);
        }
    }
    Ok(res)
}

/// Feeds a body to the upload, holding one of `--max-uploads` places.
async fn receive(
    state: &AppState,
    id: VideoId,
    p: Patch,
    body: impl ReqBody,
) -> Result<u64, Error> {
    let _place =
        super::upload::ReceivingGuard::take(&state.uploads_receiving, state.config.max_uploads)?;
    let stream = body.into_data_stream();
    state.uploads.patch(id, p, stream).await
}

/// `Upload-Checksum: <algorithm> <base64 digest>`.
fn checksum(v: &str) -> Result<Checksum, Error> {
    let (algo, digest) = v
        .split_once(' ')
        .ok_or_else(|| Error::BadRequest("Upload-Checksum is `<algorithm> <base64>`".into()))?;
    let digest = base64::engine::general_purpose::STANDARD
        .decode(digest.trim())
        .map_err(|_| Error::BadRequest("the Upload-Checksum digest is not base64".into()))?;
    match algo.to_ascii_lowercase().as_str() {
        "sha1" if digest.len() == 20 => Ok(Checksum::Sha1(digest)),
        "sha256" if digest.len() == 32 => Ok(Checksum::Sha256(digest)),
        "sha1" | "sha256" => Err(Error::BadRequest("the digest has the wrong length".into())),
        _ => Err(Error::BadRequest(format!(
            "checksum algorithm `{algo}` is not supported (sha1, sha256)"
        ))),
    }
}

/// `DELETE /files/{id}`: termination; the video is deleted with it.
pub(crate) async fn delete(
    state: &AppState,
    parts: &Parts,
    id: VideoId,
) -> Result<Response<Body>, Error> {
    check_version(parts)?;
    super::videos::delete(state, id).await?;
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    Ok(res)
}

/// `POST /videos/direct-upload`: a tus upload URL for one new video that
/// works without the API token, until `expires_at`, up to
/// `max_size_bytes`. Its secret is stored only as a digest.
pub(crate) async fn direct_upload(
    state: &AppState,
    parts: &Parts,
    body: impl ReqBody,
    client: std::net::IpAddr,
) -> Result<Response<Body>, Error> {
    let v = small_json(body).await?;
    let max = state.config.max_upload_bytes;
    let max_size = v["max_size_bytes"].as_u64().unwrap_or(max);
    if max_size == 0 || max_size > max {
        return Err(Error::BadRequest(format!(
            "max_size_bytes must be between 1 and the server's limit of {max}"
        )));
    }
    let secs = v["expires_in_secs"].as_u64().unwrap_or(DEFAULT_DIRECT_SECS);
    if !(1..=MAX_DIRECT_SECS).contains(&secs) {
        return Err(Error::BadRequest(format!(
            "expires_in_secs must be between 1 and {MAX_DIRECT_SECS}"
        )));
    }
    admit_new(state, client, 1)?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| Error::Internal(e.to_string()))?;
    let secret = hex::encode(secret);
    let expires_at = state.clock.unix() + secs;
    let grant = Grant {
        secret_sha256: {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(secret.as_bytes()))
        },
        max_size,
        expires_at,
    };
    let c = Creation {
        title: v["title"]
            .as_str()
            .and_then(crate::ingest::form::clean_title),
        encrypt: state.config.encrypt || v["encrypt"].as_bool() == Some(true),
        codecs: crate::ingest::codecs_in_json(&v, &state.config.codecs)?,
        expires_at,
        grant: Some(grant),
        ..Creation::default()
    };
    let id = state.uploads.create(c).await?;
    tracing::info!(id = %id, expires_at, max_size, "direct upload URL made");
    let base = base_url(state, parts);
    let mut a = answer(state, &base, id, Some(&secret));
    a["expires_at"] = expires_at.into();
    Ok(json(StatusCode::CREATED, &a))
}

/// A JSON object body of at most 16 KiB (an empty body is `{}`).
async fn small_json(body: impl ReqBody) -> Result<serde_json::Value, Error> {
    let limited = http_body_util::Limited::new(body, 16 << 10);
    let bytes = tokio::time::timeout(std::time::Duration::from_secs(30), limited.collect())
        .await
        .map_err(|_| Error::BodyTimeout)?
        .map_err(|_| Error::BadRequest("the body must be JSON under 16 KiB".into()))?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::json!({}));
    }
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::BadRequest(format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(Error::BadRequest("the body must be a JSON object".into()));
    }
    Ok(v)
}
