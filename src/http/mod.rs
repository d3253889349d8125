//! HTTP: a flat `match` router (hyper's examples), body helpers, and the
//! one place an [`Error`] becomes a response. Never imports `ffmpeg_next`.

pub mod paths;
mod play;
mod upload;
mod videos;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::jobs::Jobs;
use crate::Error;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use std::sync::Arc;

/// The response body type: streamed files or small in-memory bodies.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// What every handler can reach.
#[derive(Debug)]
pub(crate) struct AppState {
    pub config: Config,
    pub catalog: Arc<Catalog>,
    pub jobs: Arc<Jobs>,
}

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

/// A JSON response with `status`.
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = Response::new(full(body));
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
    res
}

/// The URL base for links in answers: `--public-url`, else `http://<Host>`.
pub(crate) fn base_url(state: &AppState, req: &Request<Incoming>) -> String {
    if let Some(u) = &state.config.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| state.config.listen.to_string());
    format!("http://{host}")
}

/// Routes one request.
pub(crate) async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    let result = match (&method, segments.as_slice()) {
        (&Method::POST, ["upload"]) => upload::post(&state, req).await,
        (&Method::GET | &Method::HEAD, ["play", id, file]) => {
            play::get(&state, &req, id, file).await
        }
        (&Method::OPTIONS, ["play", ..]) => Ok(play::preflight(&state)),
        (&Method::GET, ["videos"]) => videos::list(&state, req.uri().query()),
        (&Method::GET, ["videos", id]) => videos::get(&state, id),
        (&Method::PATCH, ["videos", id]) => videos::patch(&state, id, req).await,
        (&Method::DELETE, ["videos", id]) => videos::delete(&state, id).await,
        (&Method::GET, ["videos", id, "events"]) => videos::events(&state, id),
        (&Method::GET, ["healthz"]) => {
            Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"})))
        }
        (_, ["upload"] | ["play", _, _] | ["videos", _] | ["healthz"]) => {
            Err(Error::MethodNotAllowed)
        }
        _ => Err(Error::NotFound),
    };
    let res = result.unwrap_or_else(|e| error_response(&e));
    tracing::info!(method = %method, path = %path, status = res.status().as_u16(), "request");
    res
}
