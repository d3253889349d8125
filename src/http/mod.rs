//! HTTP: a flat `match` router (hyper's examples), body helpers, and the
//! one place an [`Error`] becomes a response. Never imports `ffmpeg_next`.
//!
//! Handlers are generic over the request body ([`ReqBody`]): the server
//! hands them hyper's `Incoming`, unit tests an in-memory body.

mod cache;
mod captions;
mod client;
mod clips;
mod conditional;
mod cors;
mod direct;
mod embed;
mod encoding;
mod files;
mod images;
mod import;
mod limits;
pub(crate) use cache::FileCache;
pub(crate) use limits::RateLimiter;
mod access;
mod linger;
mod lives;
mod lowlat;
mod lowmirror;
mod oembed;
mod ops;
mod play;
mod respond;
mod route;
mod share;
#[cfg(test)]
mod tests;
mod tus;
mod ui;
mod upload;
mod urls;

use respond::{common_headers, gzip_json};
pub(crate) use respond::{empty, error_response, full, json};
pub(crate) use route::Route;
pub(crate) use upload::upload_limits;
pub(crate) use urls::{base_url, forwarded, playback_url};
mod videos;

use crate::catalog::Catalog;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::jobs::Jobs;
use crate::Error;
use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;

use std::sync::Arc;

/// The response body type: streamed files or small in-memory bodies.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Errors a request body may yield.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a request body must be: hyper's `Incoming` in the server, any
/// in-memory body in tests.
pub(crate) trait ReqBody:
    hyper::body::Body<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static
{
}

impl<T> ReqBody for T where
    T: hyper::body::Body<Data = Bytes, Error: Into<BoxError>> + Send + Unpin + 'static
{
}

/// A connection's place among `--max-connections`, reachable from its
/// requests (an event stream gives it back: streams have their own limit).
#[derive(Clone, Debug)]
pub(crate) struct ConnSlot(Arc<std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>>);

impl ConnSlot {
    pub(crate) fn new(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        ConnSlot(Arc::new(std::sync::Mutex::new(Some(permit))))
    }

    /// Gives the connection's place back.
    pub(crate) fn release(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// What every handler can reach.
#[derive(Debug)]
pub(crate) struct AppState {
    pub config: Config,
    /// The records, to read.
    pub catalog: Arc<Catalog>,
    /// Every change to a video goes through here.
    pub videos: Arc<crate::catalog::Lifecycle>,
    pub jobs: Arc<Jobs>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Wall-clock and monotonic time (tokens, rate windows).
    pub clock: SharedClock,
    /// `--max-storage-bytes`, as a ledger of stored and reserved bytes.
    pub quota: Arc<crate::storage::Quota>,
    /// Source of the per-request ids in logs and `x-request-id`.
    pub next_request_id: std::sync::atomic::AtomicU64,
    /// Uploads started per client address (`--uploads-per-minute`).
    pub upload_rate: limits::RateLimiter,
    /// Uploads receiving now (`--max-uploads`).
    pub uploads_receiving: std::sync::atomic::AtomicUsize,
    /// Places of event streams (`--max-event-streams`).
    pub event_streams: Arc<tokio::sync::Semaphore>,
    /// Hot files in memory (`--cache-bytes`).
    pub cache: cache::FileCache,
    /// Resumable (tus) uploads.
    pub uploads: Arc<crate::ingest::resumable::Sessions>,
    /// `--webhook-url` events.
    pub webhooks: Option<Arc<crate::webhooks::Webhooks>>,
    /// The server's own names (the `Host` rule).
    pub hosts: access::Hosts,
    /// The image API's jobs and cache.
    pub images: images::Images,
    /// Live broadcasts (`/lives`, the RTMP door).
    pub lives: Arc<crate::ingest::live::Lives>,
}

/// The port a connection came to (its local address's), for the
/// same-origin rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalPort(pub u16);

pub(crate) use images::{Images, CACHE_SHARE as IMAGE_CACHE_SHARE};

/// Takes up the imports a stop interrupted (see `import::resume`).
pub(crate) fn resume_imports(state: &Arc<AppState>, ids: Vec<crate::storage::VideoId>) {
    import::resume(state, ids);
}

/// The server's own names, from its configuration.
pub(crate) fn hosts(config: &Config) -> access::Hosts {
    access::Hosts::from_config(config)
}

/// A record as the API shows it: the stored record plus its playback URL.
pub(crate) fn record_json(
    state: &AppState,
    base: &str,
    rec: &crate::catalog::Record,
) -> serde_json::Value {
    let mut v = rec.public_json();
    let (playback, token, _) = playback_url(state, base, rec.id, None);
    let sibling = |file: &str| {
        let url = format!("{base}/play/{}/{file}", rec.id);
        match &token {
            Some(t) => format!("{url}?token={t}"),
            None => url,
        }
    };
    if let Some(obj) = v.as_object_mut() {
        obj.insert("playback_url".into(), playback.into());
        if rec.storyboard {
            obj.insert(
                "storyboard_url".into(),
                sibling(crate::storage::names::STORYBOARD).into(),
            );
        }
        if rec.download && state.config.downloads {
            obj.insert(
                "download_url".into(),
                sibling(crate::storage::names::DOWNLOAD).into(),
            );
        }
    }
    v
}

/// The address limits count a client by (an IPv6 one by its prefix).
pub(crate) fn client_key(ip: std::net::IpAddr, v6_prefix: u8) -> std::net::IpAddr {
    client::key(ip, v6_prefix)
}

/// Client resolution behind proxies, for the fuzz targets.
pub(crate) fn client_for_fuzzing(
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    trusted: &[crate::config::Cidr],
) -> std::net::IpAddr {
    use crate::config::ClientIpHeader::*;
    for which in [XForwardedFor, Forwarded, XRealIp] {
        let _ = client::key(client::resolve(peer, headers, trusted, which), 64);
    }
    client::resolve(peer, headers, trusted, XForwardedFor)
}

/// `Range` parsing, for the fuzz targets.
pub(crate) fn parse_range_for_fuzzing(value: Option<&str>, len: u64) -> bool {
    conditional::parse_range(value, len).is_ok()
}

/// Routes one request; logs it and counts it.
pub(crate) async fn handle<B: ReqBody>(
    state: Arc<AppState>,
    req: Request<B>,
    peer: std::net::IpAddr,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let request_id = state
        .next_request_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (mut parts, body) = req.into_parts();
    urls::host_from_authority(&mut parts);
    if state
        .config
        .trusted_proxies
        .iter()
        .any(|c| c.contains(peer))
    {
        parts.extensions.insert(urls::ViaTrustedProxy);
    }
    let config = &state.config;
    let client = client::resolve(
        peer,
        &parts.headers,
        &config.trusted_proxies,
        config.client_ip_header,
    );
    let path = parts.uri.path().to_owned();
    let route = Route::parse(&path);
    let method = parts.method.clone();
    let label = route.label(&method);
    let class = route.class(parts.uri.query());
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (body, hold) = linger::share(body);
    let result = dispatch(&state, &parts, body, route, client).await;
    if let (Err(e), Route::Upload) = (&result, route) {
        state.metrics.upload_rejected(e.code());
    }
    let mut res = result.unwrap_or_else(|e| error_response(&e));
    linger::after(hold, res.status());
    if res
        .extensions()
        .get::<access::Access>()
        .is_some_and(access::Access::by_header)
    {
        respond::private(&mut res);
    }
    if res.status() == StatusCode::METHOD_NOT_ALLOWED {
        if let Some(allow) = route.allowed() {
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
    }
    if route.is_tus() {
        tus::tus_headers(&mut res);
    }
    gzip_json(&parts, &mut res);
    common_headers(&state, &mut res, request_id, class, origin.as_deref());
    let status = res.status().as_u16();
    if matches!(route, Route::Play { .. }) && method == Method::GET {
        let len = res
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        state
            .metrics
            .bytes_served
            .fetch_add(len, std::sync::atomic::Ordering::Relaxed);
    }
    let secs = started.elapsed().as_secs_f64();
    state.metrics.request(label, status, secs);
    tracing::info!(request_id, %client, method = %method, path = %path, status, ms = secs * 1e3, "request");
    res
}

/// With a store other nodes share, brings the records a request reads up
/// to date first, and refuses there what only the node holding a video's
/// work may change (the catalog's rules: [`crate::catalog::Reading`]).
async fn refresh_records(state: &AppState, method: &Method, route: Route<'_>) -> Result<(), Error> {
    let Some(reading) = route.reading(method) else {
        return Ok(());
    };
    if state.catalog.needs_reading(reading) {
        let catalog = state.catalog.clone();
        tokio::task::spawn_blocking(move || catalog.freshen(reading))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
    }
    state.catalog.check_holder(reading)
}

/// What comes before routing: the `Host` rule, then a preflight or tus
/// discovery answered here (`Some`).
fn gate(
    state: &AppState,
    parts: &Parts,
    route: Route<'_>,
) -> Result<Option<Response<Body>>, Error> {
    access::check_host(state, parts, route)?;
    let class = route.class(parts.uri.query());
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let preflight = parts
        .headers
        .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if parts.method == Method::OPTIONS && route.is_tus() && !preflight {
        return Ok(Some(tus::options(state)));
    }
    if parts.method == Method::OPTIONS {
        return Ok(Some(cors::preflight(state, class, origin)));
    }
    Ok(None)
}

/// The one router: a `match` over the parsed [`Route`].
async fn dispatch<B: ReqBody>(
    state: &Arc<AppState>,
    parts: &Parts,
    body: B,
    route: Route<'_>,
    client: std::net::IpAddr,
) -> Result<Response<Body>, Error> {
    if let Some(answer) = gate(state, parts, route)? {
        return Ok(answer);
    }
    let base = base_url(state, parts);
    // HEAD is answered wherever GET is (RFC 9110 §9.3.2); hyper sends the
    // head of the GET answer without its body.
    let method = match parts.method {
        Method::HEAD => Method::GET,
        _ if route.is_tus() => tus::method_of(parts),
        ref m => m.clone(),
    };
    // A grant is read from the record: brought up to date first; other
    // credentials are checked before the store is asked anything.
    let grant = route.credential(&method) == route::Credential::ApiOrGrant;
    if grant {
        refresh_records(state, &method, route).await?;
    }
    let access = access::check(state, parts, route)?;
    if !grant {
        refresh_records(state, &method, route).await?;
    }
    let mut res = route_to(state, parts, body, route, &method, &access, &base, client).await?;
    res.extensions_mut().insert(access);
    Ok(res)
}

/// Runs the handler of `route`.
#[allow(clippy::too_many_arguments)]
async fn route_to<B: ReqBody>(
    state: &Arc<AppState>,
    parts: &Parts,
    body: B,
    route: Route<'_>,
    method: &Method,
    access: &access::Access,
    base: &str,
    client: std::net::IpAddr,
) -> Result<Response<Body>, Error> {
    let id = |id: route::Id| id.ok_or(Error::NotFound);
    let token = access.playback_token();
    match (method, route) {
        (&Method::POST, Route::Upload) => upload::post(state, parts, body, client).await,
        (&Method::POST, Route::TusCreate) => tus::create(state, parts, body, client).await,
        (&Method::GET, Route::TusFile(i)) => tus::head(state, parts, id(i)?),
        (&Method::PATCH, Route::TusFile(i)) => tus::patch(state, parts, id(i)?, body).await,
        (&Method::DELETE, Route::TusFile(i)) => tus::delete(state, parts, id(i)?).await,
        (&Method::POST, Route::DirectUpload) => {
            tus::direct_upload(state, parts, body, client).await
        }
        (&Method::GET, Route::Play { id: i, rung, file }) => {
            let pass = (token, access.clip_claim());
            play::get(state, parts, id(i)?, rung, file, pass).await
        }
        (&Method::GET, Route::Key(i, name)) => play::key(state, parts, id(i)?, name).await,
        (&Method::GET, Route::Embed(i)) => {
            let pass = (token, access.clip_claim());
            embed::page(state, base, id(i)?, parts.uri.query(), pass)
        }
        (&Method::GET, Route::Oembed) => oembed::get(state, base, parts.uri.query()),
        (&Method::GET, Route::Videos) => videos::list(state, base, parts.uri.query()),
        (&Method::POST, Route::Videos) => import::post(state, parts, body, client).await,
        (&Method::GET, Route::Video(i)) => videos::get(state, base, id(i)?),
        (&Method::POST, Route::Clips(i)) => clips::post(state, parts, id(i)?, body, client).await,
        (&Method::POST, Route::PlaybackToken(i)) => {
            share::playback_token(state, base, id(i)?, parts.uri.query(), body).await
        }
        (&Method::PATCH, Route::Video(i)) => videos::patch(state, id(i)?, body).await,
        (&Method::PUT, Route::Captions(i, lang)) => {
            captions::put(state, base, id(i)?, lang, parts.uri.query(), body).await
        }
        (&Method::DELETE, Route::Captions(i, lang)) => captions::delete(state, id(i)?, lang).await,
        (&Method::DELETE, Route::Video(i)) => videos::delete(state, id(i)?).await,
        (&Method::GET, Route::Events(i)) => videos::events(state, parts, id(i)?),
        (&Method::POST, Route::Lives) => lives::post(state, base, body).await,
        (&Method::GET, Route::Lives) => lives::list(state, base),
        (&Method::GET, Route::Live(i)) => lives::get(state, base, id(i)?),
        (&Method::DELETE, Route::Live(i)) => lives::delete(state, id(i)?).await,
        (&Method::POST, Route::LiveResetKey(i)) => lives::reset_key(state, base, id(i)?).await,
        (&Method::GET, Route::Healthz) => Ok(ops::healthz()),
        (&Method::GET, Route::Readyz) => ops::readyz(state).await,
        (&Method::GET, Route::Metrics) => ops::metrics(state).await,
        (&Method::GET, Route::Ui) => Ok(ui::index(state)),
        (&Method::GET, Route::Asset(name)) => ui::asset(name),
        (_, Route::Unknown) => Err(Error::NotFound),
        _ => Err(Error::MethodNotAllowed),
    }
}
