//! The accept loop: a connection cap (semaphore permit taken before
//! `accept`), hyper's header-read timeout (with the timer it needs), accept
//! errors backed off instead of ending the server, and graceful shutdown
//! driven by a future so tests can stop a server they started. `conn`
//! holds each connection to its per-address place and send timeout.

mod conn;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::jobs::Jobs;
use crate::media::{self, Settings};
use crate::storage::Store;
use crate::Error;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How long in-flight requests get to finish after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long job threads get to notice a cancel and write their records.
const JOBS_GRACE: Duration = Duration::from_secs(5);

/// Serves on `listener` until `shutdown` completes, then drains.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    prepare(config).await?.serve(listener, shutdown).await
}

/// A server whose storage is loaded and recovered, not yet serving.
pub struct Prepared {
    pub(crate) state: Arc<AppState>,
    jobs: Arc<Jobs>,
}

/// Initialises libav, loads the catalog and runs crash recovery (which may
/// re-queue jobs). Call before announcing the server: when it returns, the
/// storage is in its recovered state.
pub async fn prepare(config: Config) -> Result<Prepared, Error> {
    prepare_with_clock(config, crate::clock::SystemClock::shared()).await
}

/// [`prepare`] with the clock given (tests move it by hand).
pub(crate) async fn prepare_with_clock(
    config: Config,
    clock: crate::clock::SharedClock,
) -> Result<Prepared, Error> {
    media::init()?;
    if config.api_tokens.is_empty() && !config.listen.ip().is_loopback() {
        tracing::warn!(listen = %config.listen,
            "no --api-token: anyone who can reach this address can upload and delete videos");
    }
    if !media::encoders_available() {
        tracing::warn!("libx264 or aac missing from the system FFmpeg: uploads will fail");
    }
    let (catalog, unreadable) = {
        let (root, clock) = (config.storage.clone(), clock.clone());
        tokio::task::spawn_blocking(move || Catalog::open(Store::open(&root)?, clock))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
    };
    let catalog = Arc::new(catalog);
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let quota = Arc::new(crate::storage::Quota::new(config.max_storage_bytes));
    let jobs = Jobs::new(
        config.jobs,
        config.max_pending,
        Settings::from_config(&config),
        config.keep_source,
        catalog.clone(),
        quota.clone(),
        metrics.clone(),
    );
    {
        let (recovering, jobs, keep) = (catalog.clone(), jobs.clone(), config.keep_source);
        let report = tokio::task::spawn_blocking(move || {
            let catalog = recovering;
            crate::recovery::recover(&catalog, unreadable, &jobs, keep)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        tracing::info!(
            requeued = report.requeued,
            interrupted = report.interrupted,
            strays_removed = report.strays_removed,
            rebuilt = report.rebuilt,
            damaged = report.damaged,
            deleted = report.deleted,
            errors = report.errors,
            "storage recovered"
        );
        // What each video holds now (re-queued jobs keep their reservations).
        let (catalog, quota) = (catalog.clone(), quota.clone());
        tokio::task::spawn_blocking(move || {
            for id in catalog.ids() {
                quota.count(id, catalog.store().size(id));
            }
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    }
    let upload_rate = crate::http::RateLimiter::new(config.uploads_per_minute, clock.clone());
    let config_event_streams = config.max_event_streams;
    let cache_bytes = usize::try_from(config.cache_bytes).unwrap_or(usize::MAX);
    let state = Arc::new(AppState {
        config,
        catalog,
        clock,
        quota,
        jobs: jobs.clone(),
        next_request_id: std::sync::atomic::AtomicU64::new(1),
        upload_rate,
        uploads_receiving: std::sync::atomic::AtomicUsize::new(0),
        event_streams: Arc::new(Semaphore::new(config_event_streams)),
        cache: crate::http::FileCache::new(cache_bytes),
        metrics,
    });
    Ok(Prepared { state, jobs })
}

impl Prepared {
    /// Serves on `listener` until `shutdown` completes, then drains.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let Prepared { state, jobs } = self;
        serve(state, jobs, listener, shutdown).await
    }
}

async fn serve(
    state: Arc<AppState>,
    jobs: Arc<Jobs>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let limit = Arc::new(Semaphore::new(state.config.max_connections));
    let per_ip = Arc::new(conn::PerIp::default());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            s = accept(&listener) => s,
            _ = &mut shutdown => break,
        };
        let peer = stream
            .peer_addr()
            .map(|a| crate::config::canonical_ip(a.ip()))
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let trusted = state
            .config
            .trusted_proxies
            .iter()
            .any(|c| c.contains(peer));
        let place = if trusted {
            None
        } else {
            match per_ip.take(peer, state.config.max_connections_per_ip) {
                Some(p) => Some(p),
                None => {
                    tracing::debug!(%peer, "connection refused: too many from this address");
                    continue;
                }
            }
        };
        let conn = connection(&state, stream, peer, permit);
        let conn = graceful.watch(conn);
        let metrics = state.metrics.clone();
        metrics.active_connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            metrics.active_connections.fetch_sub(1, Ordering::Relaxed);
            drop(place);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("in-flight requests did not finish in time");
        }
    }
    jobs.cancel_all();
    let deadline = tokio::time::Instant::now() + JOBS_GRACE;
    while jobs.pending() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// One connection: HTTP/1.1 with the header timeout (and the timer it
/// needs), writes under the send timeout, and its `--max-connections`
/// place in a slot an event stream may give back.
fn connection(
    state: &Arc<AppState>,
    stream: TcpStream,
    peer: std::net::IpAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl hyper_util::server::graceful::GracefulConnection<Error = hyper::Error> {
    let _ = stream.set_nodelay(true);
    let slot = http::ConnSlot::new(permit);
    let service = {
        let state = state.clone();
        service_fn(move |mut req| {
            let state = state.clone();
            req.extensions_mut().insert(slot.clone());
            async move { Ok::<_, Infallible>(http::handle(state, req, peer).await) }
        })
    };
    let send_timeout = Duration::from_secs(state.config.send_timeout_secs.max(1));
    let io = TokioIo::new(conn::SendTimeout::new(stream, send_timeout));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(state.config.header_timeout_secs.max(1)));
    builder.serve_connection(io, service)
}

/// Accepts one connection; on errors (EMFILE…) backs off and retries
/// rather than ending the server.
async fn accept(listener: &TcpListener) -> TcpStream {
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok((s, _)) => return s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}
