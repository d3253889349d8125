//! The web UI: a page and its assets, embedded in the binary at build time
//! (`include_bytes!`), so it works offline with no CDN. hls.js and
//! tus-js-client are vendored from their npm packages (versions in
//! `assets/VERSIONS`).

use super::{full, AppState, Body};
use crate::Error;
use http::{header, HeaderValue, Response};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/app.css"),
    },
    Asset {
        name: "hls.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/hls.min.js"),
    },
    Asset {
        name: "embed.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/embed.js"),
    },
    Asset {
        name: "embed.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/embed.css"),
    },
    Asset {
        name: "tus.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/tus.min.js"),
    },
];

const INDEX: &[u8] = include_bytes!("assets/index.html");

/// Everything the page needs and nothing else: no inline script or style,
/// no other origin; hls.js needs `blob:` for its worker and media source.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; media-src 'self' blob:; worker-src 'self' blob:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

fn respond(
    bytes: &'static [u8],
    content_type: &'static str,
    cache: &'static str,
) -> Response<Body> {
    let mut res = Response::new(full(bytes));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// `GET /`.
pub(crate) fn index(_state: &AppState) -> Response<Body> {
    respond(INDEX, "text/html; charset=utf-8", "no-cache")
}

/// `GET /assets/{name}`.
pub(crate) fn asset(name: &str) -> Result<Response<Body>, Error> {
    let a = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or(Error::NotFound)?;
    Ok(respond(a.bytes, a.content_type, "public, max-age=300"))
}
