//! The URLs in answers: the public base (`--public-url`, a trusted
//! proxy's forwarded host and scheme, or the request's `Host`), and
//! playback URLs (signed when a signing key is set).

use super::AppState;
use crate::storage::VideoId;
use http::header;
use http::request::Parts;
use http::HeaderValue;

pub(crate) use crate::percent::encode as percent_encode;

/// The playback URL of video `id` under `base`, signed when a signing key
/// is set (for the part `clip` of it, if given): `(url, token, expires_at)`.
pub(crate) fn playback_url(
    state: &AppState,
    base: &str,
    id: VideoId,
    clip: Option<crate::auth::ClipClaim>,
) -> (String, Option<String>, Option<u64>) {
    let url = format!("{base}/play/{id}/video.m3u8");
    match &state.config.signing_key {
        Some(key) => {
            let exp = state
                .clock
                .unix()
                .saturating_add(state.config.playback_token_ttl_secs);
            let (key, id) = (key.as_bytes(), id.as_str());
            let token = match clip {
                Some(c) => crate::auth::sign_clip(key, id, exp, c),
                None => crate::auth::sign(key, id, exp),
            };
            (format!("{url}?token={token}"), Some(token), Some(exp))
        }
        None => (url, None, None),
    }
}

/// The value of `name` in a query, decoded.
pub(crate) fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|p| match p.split_once('=') {
        Some((k, v)) if k == name => Some(crate::percent::decode(v, true)),
        None if p == name => Some(String::new()),
        _ => None,
    })
}

/// HTTP/2 carries the host in the `:authority` pseudo-header (hyper puts
/// it in the URI), not in `Host`: it becomes `Host` here, so links, origin
/// checks and logs see one thing whatever the protocol.
pub(super) fn host_from_authority(parts: &mut Parts) {
    if parts.headers.contains_key(header::HOST) {
        return;
    }
    let host = parts.uri.authority().map(|a| a.as_str());
    if let Some(v) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
        parts.headers.insert(header::HOST, v);
    }
}

/// Set on a request that came through a `--trusted-proxy`: its
/// `X-Forwarded-Host` / `X-Forwarded-Proto` name the public URL.
#[derive(Debug, Clone, Copy)]
pub(super) struct ViaTrustedProxy;

/// True when the request came through a trusted proxy that said which
/// host the client asked for.
pub(crate) fn forwarded(parts: &Parts) -> bool {
    parts.extensions.get::<ViaTrustedProxy>().is_some()
        && parts.headers.contains_key("x-forwarded-host")
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// The URL base for links in answers: `--public-url`; else, behind a
/// trusted proxy, `X-Forwarded-Proto://X-Forwarded-Host`; else
/// `http(s)://<Host>`.
pub(crate) fn base_url(state: &AppState, parts: &Parts) -> String {
    if let Some(u) = &state.config.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.split(',').next().unwrap_or("").trim())
    };
    let own_scheme = if state.config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let (host, scheme) = if forwarded(parts) {
        let scheme = match header("x-forwarded-proto") {
            Some("https") => "https",
            Some("http") => "http",
            _ => own_scheme,
        };
        (header("x-forwarded-host"), scheme)
    } else {
        (header("host"), own_scheme)
    };
    let host = host
        .filter(|h| valid_host(h))
        .map(str::to_owned)
        .unwrap_or_else(|| state.config.listen.to_string());
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        let q = "a=1&url=http%3A%2F%2Fh%2Fembed%2Fx%3Ftoken%3Dt&flag";
        assert_eq!(
            query_value(q, "url").as_deref(),
            Some("http://h/embed/x?token=t")
        );
        assert_eq!(query_value(q, "flag").as_deref(), Some(""));
        assert_eq!(query_value(q, "b"), None);
    }
}
