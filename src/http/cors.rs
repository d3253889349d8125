//! Cross-origin rules. CORS belongs to playback: `--cors-origin` (default
//! `*`) answers `/play/…` and `/keys/…`. The management API (`/upload`,
//! `/files…`, `/videos…`, `/metrics`) answers only the origins listed in
//! `--api-cors-origin` (none by default), and a write that a page of
//! another origin sends (its `Origin` is neither the server's own nor
//! listed) is refused with `403 forbidden_origin`, whatever CORS says:
//! browsers send a plain HTML form's POST without asking first. Requests
//! without `Origin` (curl, scripts) are not cross-site and pass.

use super::{empty, AppState, Body};
use http::{header, HeaderValue, Response, StatusCode};

/// Which CORS rules a path follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// `/play/…`, `/keys/…`: `--cors-origin`.
    Playback,
    /// Uploads and management: `--api-cors-origin`.
    Api,
    /// The UI and health checks: same-origin only.
    Local,
    /// `/files/{id}?token=…`: a direct upload URL. Its token is the only
    /// credential (nothing ambient a browser would add), so any page may
    /// use it: that is what it is handed out for.
    Upload,
}

/// True when `origin` is in the comma-separated `list`.
pub(crate) fn listed(list: &str, origin: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|o| !o.is_empty() && o.eq_ignore_ascii_case(origin))
}

/// The `Access-Control-Allow-Origin` value for a request of `class` from
/// `origin`, if any. No credentials are ever allowed, so `*` is safe where
/// the operator configured it.
pub(crate) fn allowed_origin(
    state: &AppState,
    class: Class,
    origin: Option<&str>,
) -> Option<HeaderValue> {
    let c = &state.config;
    let value = match class {
        Class::Playback if c.cors_origin.trim() == "*" => "*",
        Class::Playback => origin.filter(|o| listed(&c.cors_origin, o))?,
        Class::Api => origin.filter(|o| listed(&c.api_cors_origin, o))?,
        Class::Upload => "*",
        Class::Local => return None,
    };
    HeaderValue::from_str(value).ok()
}

/// True when the answer depends on the request's `Origin`.
pub(crate) fn varies(state: &AppState, class: Class) -> bool {
    match class {
        Class::Playback => state.config.cors_origin.trim() != "*",
        Class::Api => !state.config.api_cors_origin.trim().is_empty(),
        Class::Local | Class::Upload => false,
    }
}

/// A CORS preflight: the allow headers only for an allowed origin.
pub(crate) fn preflight(state: &AppState, class: Class, origin: Option<&str>) -> Response<Body> {
    let mut res = Response::new(empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    if allowed_origin(state, class, origin).is_none() {
        return res;
    }
    let (methods, headers) = match class {
        Class::Playback => ("GET, HEAD, OPTIONS", "Range, Authorization"),
        Class::Upload => (
            "HEAD, PATCH, DELETE, OPTIONS",
            "Content-Type, Tus-Resumable, Upload-Length, Upload-Offset, Upload-Metadata, \
             Upload-Checksum, Upload-Defer-Length, X-HTTP-Method-Override",
        ),
        _ => (
            "GET, HEAD, POST, PATCH, PUT, DELETE, OPTIONS",
            "Range, Content-Type, Authorization, Tus-Resumable, Upload-Length, \
             Upload-Offset, Upload-Metadata, Upload-Checksum, Upload-Defer-Length, \
             Upload-Concat, X-HTTP-Method-Override",
        ),
    };
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(headers),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    res
}

/// The authority (`host[:port]`) of an origin or URL.
pub(crate) fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_and_lists() {
        assert_eq!(
            authority("https://v.example.com:8443/x"),
            "v.example.com:8443"
        );
        assert_eq!(authority("http://127.0.0.1:3300"), "127.0.0.1:3300");
        assert_eq!(authority("null"), "null");
        assert!(listed(
            "https://a.example, https://b.example",
            "https://b.example"
        ));
        assert!(!listed("", "https://b.example"));
        assert!(!listed("https://a.example", "https://a.example.evil"));
        let class = |p: &str, q| crate::http::Route::parse(p).class(q);
        assert_eq!(class("/videos/x", None), Class::Api);
        assert_eq!(class("/play/x/video.m3u8", None), Class::Playback);
        assert_eq!(class("/healthz", None), Class::Local);
        assert_eq!(class("/files/x", None), Class::Api);
        assert_eq!(class("/files/x", Some("token=abc")), Class::Upload);
        assert_eq!(class("/files", Some("token=abc")), Class::Api);
    }
}
