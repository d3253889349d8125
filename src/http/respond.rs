//! Building answers: bodies, JSON, the one place an error becomes a
//! response, gzip of JSON, and the headers every answer carries.

use super::{cors, encoding, AppState, Body};
use crate::Error;
use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};

pub(crate) fn full(chunk: impl Into<Bytes>) -> Body {
    Full::new(chunk.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The bytes of a JSON answer, kept so the router can gzip it.
#[derive(Clone)]
struct JsonBytes(Bytes);

/// A JSON response with `status`.
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()));
    let mut res = Response::new(full(body.clone()));
    res.extensions_mut().insert(JsonBytes(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The only place an error becomes a response:
/// `{"error":{"code":"…","message":"…"}}` with the variant's status.
pub(crate) fn error_response(e: &Error) -> Response<Body> {
    if e.is_server_fault() {
        tracing::error!(error = %e, "request failed");
    } else {
        tracing::debug!(error = %e, "request refused");
    }
    let body = serde_json::json!({"error": {"code": e.code(), "message": e.public_message()}});
    let mut res = json(e.status(), &body);
    if let Error::RangeNotSatisfiable { len } = e {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
            res.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    if let Error::Unauthorized = e {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Error::RateLimited { retry_after } = e {
        if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    if let Error::NotReady | Error::OtherNode | Error::Busy = e {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    res
}

/// Gzips a large JSON answer when the client takes it.
pub(super) fn gzip_json(req: &Parts, res: &mut Response<Body>) {
    let Some(JsonBytes(bytes)) = res.extensions_mut().remove::<JsonBytes>() else {
        return;
    };
    if bytes.len() < encoding::MIN_GZIP {
        return;
    }
    let zipped = encoding::accepts_gzip(req)
        .then(|| encoding::gzip(&bytes))
        .flatten();
    encoding::mark(res, zipped.is_some());
    if let Some(z) = zipped {
        if let Ok(v) = HeaderValue::from_str(&z.len().to_string()) {
            res.headers_mut().insert(header::CONTENT_LENGTH, v);
        }
        *res.body_mut() = full(z);
    }
}

/// Makes an answer given on the strength of a credential sent in a header
/// private: a shared cache never stores it (its key does not hold the
/// header), and one that ignored that would still vary on it.
pub(super) fn private(res: &mut Response<Body>) {
    let h = res.headers_mut();
    let cache = h
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|d| !d.eq_ignore_ascii_case("public") && !d.starts_with("s-maxage"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|v| !v.is_empty());
    let cache = match cache {
        Some(c) => format!("private, {c}"),
        None => "private, no-store".to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.append(header::VARY, HeaderValue::from_static("Authorization"));
}

/// Sets headers every response carries: CORS (per [`cors::Class`]),
/// `nosniff`, and the request id.
pub(super) fn common_headers(
    state: &AppState,
    res: &mut Response<Body>,
    request_id: u64,
    class: cors::Class,
    origin: Option<&str>,
) {
    let h = res.headers_mut();
    if let Some(v) = cors::allowed_origin(state, class, origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    if cors::varies(state, class) {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id.to_string()) {
        h.insert("x-request-id", v);
    }
}
