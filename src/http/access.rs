//! Who may do what, in one place: each request's route (from the route
//! table) says which credential it needs; here that credential is checked
//! against its scope, after the `Host` and `Origin` rules.
//!
//! | credential | grants | on | until |
//! |---|---|---|---|
//! | API token (`Authorization: Bearer`) | every route | every video | it is removed from `--api-token` |
//! | playback token (`?token=`, with `--signing-key`) | `GET`/`HEAD` of `/play/{id}/…` and `/keys/{id}/…` | the video it names (a clip's token: the segments covering its range, posters and keys; not the download or the storyboard) | its expiry |
//! | direct-upload grant (`?token=` on `/files/{id}`) | `HEAD`, `PATCH`, and `DELETE` while incomplete | its own upload | its expiry, or the upload's end: a complete upload's URL grants nothing |
//! | none | the UI, health checks, playback without `--signing-key`; everything when no `--api-token` is set (an open server) | — | — |
//!
//! `Host` must name this server (listen address, an IP literal,
//! `localhost`, `--public-url`'s host, `--allowed-host`) on every route
//! but playback, so a page whose DNS name was rebound to this server
//! cannot use the API; a write from a page of another origin is refused
//! (`forbidden_origin`) unless `--api-cors-origin` lists it. A credential
//! sent in a header makes the answer private (see `handle`): a shared
//! cache never hands it to someone without it.

use super::route::{Credential, Route};
use super::{cors, AppState};
use crate::catalog::Grant;
use crate::storage::VideoId;
use crate::Error;
use http::request::Parts;
use http::{header, Method};

/// What let a request through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// Nothing was needed (a public route, or an open server).
    Open,
    /// The API token, in `Authorization`.
    ApiToken,
    /// A playback token for the video (in the URL), to carry on, and the
    /// part of the video it grants (`None`: all of it).
    Playback(String, Option<crate::auth::ClipClaim>),
    /// The upload's own direct-upload grant (in the URL).
    Grant,
}

impl Access {
    /// True when a credential in a header let the request through: the
    /// answer must not be stored by a shared cache (the header is not part
    /// of its key; a credential in the URL is).
    pub(crate) fn by_header(&self) -> bool {
        *self == Access::ApiToken
    }

    /// The playback token to carry on in rewritten playlists.
    pub(crate) fn playback_token(&self) -> Option<&str> {
        match self {
            Access::Playback(t, _) => Some(t),
            _ => None,
        }
    }

    /// The part of the video a clip's playback token grants.
    pub(crate) fn clip_claim(&self) -> Option<crate::auth::ClipClaim> {
        match self {
            Access::Playback(_, clip) => *clip,
            _ => None,
        }
    }
}

/// The server's own names (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Hosts {
    /// `--allowed-host *`: no check.
    any: bool,
    /// Lower-case names, each with the port it must come with, if any.
    names: Vec<(String, Option<u16>)>,
}

impl Hosts {
    pub(crate) fn from_config(c: &crate::config::Config) -> Hosts {
        let mut names = vec![("localhost".to_owned(), None)];
        let public = c.public_url.as_deref().map(cors::authority);
        for a in public
            .into_iter()
            .chain(c.allowed_hosts.iter().map(String::as_str))
        {
            if let Some(n) = split_host(a) {
                names.push(n);
            }
        }
        Hosts {
            any: c.allowed_hosts.iter().any(|h| h.trim() == "*"),
            names,
        }
    }

    /// True when `host` (a `Host` header or an origin's authority) names
    /// this server.
    pub(crate) fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        name.parse::<std::net::IpAddr>().is_ok()
            || self
                .names
                .iter()
                .any(|(n, p)| *n == name && (p.is_none() || *p == port))
    }
}

/// `name[:port]` (brackets around IPv6 dropped), lower-case, without a
/// trailing dot; `None` when it is not a host.
pub(super) fn split_host(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (name, port) = match s.strip_prefix('[') {
        Some(rest) => {
            let (ip, after) = rest.split_once(']')?;
            (ip, after.strip_prefix(':'))
        }
        None => match s.rsplit_once(':') {
            Some((n, p)) if !n.contains(':') => (n, Some(p)),
            _ => (s, None),
        },
    };
    let port = match port {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    valid.then_some((name, port))
}

/// Refuses a request whose `Host` is not one of the server's names, on
/// every route but playback and embeds (players and the sites that embed
/// them fetch through CDNs and proxies under any name; playback has its
/// own tokens).
pub(crate) fn check_host(state: &AppState, parts: &Parts, route: Route<'_>) -> Result<(), Error> {
    if matches!(
        route,
        Route::Play { .. } | Route::Key(..) | Route::Embed(_) | Route::Oembed
    ) {
        return Ok(());
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    match host.is_some_and(|h| state.hosts.allows(h)) {
        true => Ok(()),
        false => Err(Error::ForbiddenHost),
    }
}

/// Decides whether the request may use `route` (see the module docs);
/// [`check_host`] comes first.
pub(crate) fn check(state: &AppState, parts: &Parts, route: Route<'_>) -> Result<Access, Error> {
    if route.class(parts.uri.query()) == cors::Class::Api {
        check_write(state, parts)?;
    }
    let c = &state.config;
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let api_token = !c.api_tokens.is_empty() && crate::auth::bearer_ok(&c.api_tokens, bearer);
    match route.credential(&parts.method) {
        Credential::None => Ok(Access::Open),
        _ if api_token => Ok(Access::ApiToken),
        Credential::Api if c.api_tokens.is_empty() => Ok(Access::Open),
        Credential::Api => Err(Error::Unauthorized),
        Credential::ApiOrGrant => grant(state, parts, route.video().ok_or(Error::NotFound)?),
        Credential::Playback => playback_token(state, parts, route.video()),
    }
}

/// A tus upload's own URL: its grant while the upload is incomplete; an
/// upload made without a grant is open on an open server.
fn grant(state: &AppState, parts: &Parts, id: VideoId) -> Result<Access, Error> {
    let (grant, complete) = state
        .catalog
        .peek(id, |r| {
            let u = r.upload.as_ref();
            (
                u.and_then(|u| u.grant.clone()),
                u.is_some_and(|u| u.is_complete()),
            )
        })
        .ok_or(Error::NotFound)?;
    let token = crate::auth::token_from_query(parts.uri.query());
    match (grant, token) {
        (Some(_), Some(_)) if complete => Err(Error::GrantUsed),
        (Some(g), Some(t)) => check_grant(state, &g, t).map(|()| Access::Grant),
        (Some(_), None) | (None, Some(_)) => Err(Error::InvalidToken),
        (None, None) if state.config.api_tokens.is_empty() => Ok(Access::Open),
        (None, None) => Err(Error::Unauthorized),
    }
}

fn check_grant(state: &AppState, g: &Grant, token: &str) -> Result<(), Error> {
    use sha2::Digest;
    use subtle::ConstantTimeEq;
    let digest = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    if !bool::from(digest.as_bytes().ct_eq(g.secret_sha256.as_bytes())) {
        return Err(Error::InvalidToken);
    }
    if state.clock.unix() > g.expires_at {
        return Err(Error::TokenExpired);
    }
    Ok(())
}

/// With `--signing-key`, the request's playback token for video `id`.
fn playback_token(state: &AppState, parts: &Parts, id: Option<VideoId>) -> Result<Access, Error> {
    let Some(key) = &state.config.signing_key else {
        return Ok(Access::Open);
    };
    let id = id.ok_or(Error::NotFound)?;
    let token = crate::auth::token_from_query(parts.uri.query()).ok_or(Error::InvalidToken)?;
    let clip = crate::auth::verify(key.as_bytes(), id.as_str(), token, state.clock.unix())
        .map_err(|e| match e {
            crate::auth::TokenError::Expired => Error::TokenExpired,
            crate::auth::TokenError::Invalid => Error::InvalidToken,
        })?;
    Ok(Access::Playback(token.to_owned(), clip))
}

/// Refuses a write sent by a page of another origin (see the module docs).
fn check_write(state: &AppState, req: &Parts) -> Result<(), Error> {
    if !is_write(&req.method) {
        return Ok(());
    }
    let Some(origin) = req.headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("null").trim();
    if cors::listed(&state.config.api_cors_origin, origin) || own_origin(state, req, origin) {
        Ok(())
    } else {
        Err(Error::ForbiddenOrigin)
    }
}

/// True when `origin` is this server's own: `--public-url`'s, or one of
/// its names (never the request's own `Host`, which a rebound DNS name
/// makes the attacker's) at the port the connection came to.
fn own_origin(state: &AppState, req: &Parts, origin: &str) -> bool {
    let auth = cors::authority(origin);
    let public = state.config.public_url.as_deref().map(cors::authority);
    if origin == "null" {
        return false;
    }
    if public.is_some_and(|p| p.eq_ignore_ascii_case(auth)) {
        return true;
    }
    let default = if origin.starts_with("https://") {
        443
    } else {
        80
    };
    let port = |a: &str| split_host(a).and_then(|(_, p)| p);
    let origin_port = port(auth).unwrap_or(default);
    let host = req.headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let local = req
        .extensions
        .get::<super::LocalPort>()
        .map(|p| p.0)
        .or_else(|| host.and_then(port));
    state.hosts.allows(auth) && local == Some(origin_port)
}

/// True for the methods that change something (an `Origin` check applies).
fn is_write(m: &Method) -> bool {
    matches!(
        *m,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(allowed: &[&str], public: Option<&str>) -> Hosts {
        let mut c = crate::config::Config::with_storage("/tmp".into());
        c.allowed_hosts = allowed.iter().map(|s| s.to_string()).collect();
        c.public_url = public.map(str::to_owned);
        Hosts::from_config(&c)
    }

    #[test]
    fn only_the_servers_own_names_pass() {
        let h = hosts(
            &["video.lan", "box.example:8443"],
            Some("https://v.example.com"),
        );
        for ok in [
            "127.0.0.1:3300",
            "[::1]:3300",
            "192.168.1.20",
            "localhost:3300",
            "LOCALHOST.",
            "video.lan:3300",
            "box.example:8443",
            "v.example.com",
            "v.example.com:443",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:3300",
            "box.example:3300",
            "localhost.evil.example",
            "",
            "127.0.0.1:99999",
            "a b",
            "[::1",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
        assert!(hosts(&["*"], None).allows("evil.example"));
    }
}
