//! The accept loop: a connection cap (semaphore permit taken before
//! `accept`), hyper's header-read timeout (with the timer it needs), accept
//! errors backed off instead of ending the server, and graceful shutdown
//! driven by a future so tests can stop a server they started. `conn`
//! holds each connection to its per-address place and send timeout.

mod conn;
mod driver;
mod open;
mod tls;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::jobs::Jobs;
use crate::media::{self, Settings};
use crate::Error;
use open::{open_catalog, open_lives, open_webhooks, recover};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tls::Tls;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// How long in-flight requests get to finish after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often resumable uploads are swept (parked when quiet, removed when
/// expired).
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// Aborts a background task when the server stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

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
    tls: Option<Tls>,
    /// `--rtmp-listen`'s and `--srt-listen`'s sockets, bound.
    doors: open::Doors,
}

/// Initialises libav, loads the catalog and runs crash recovery (which may
/// re-queue jobs). Call before announcing the server: when it returns, the
/// storage is in its recovered state.
pub async fn prepare(config: Config) -> Result<Prepared, Error> {
    prepare_with_clock(config, crate::clock::SystemClock::shared()).await
}

/// libav, the encoders `config` needs, and its TLS certificate.
fn init_media(config: &Config) -> Result<Option<Tls>, Error> {
    media::init()?;
    let tls = load_tls(config).map_err(Error::Internal)?;
    if !media::encoders_available() {
        tracing::warn!("libx264 or aac missing from the system FFmpeg: uploads will fail");
    }
    media::codec_groups_available(&config.codecs).map_err(Error::Internal)?;
    Ok(tls)
}

/// [`prepare`] with the clock given (tests move it by hand).
pub(crate) async fn prepare_with_clock(
    config: Config,
    clock: crate::clock::SharedClock,
) -> Result<Prepared, Error> {
    let tls = init_media(&config)?;
    let (catalog, unreadable) = {
        let (config, clock) = (config.clone(), clock.clone());
        tokio::task::spawn_blocking(move || open_catalog(&config, clock))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
    };
    let catalog = Arc::new(catalog);
    let quota = Arc::new(crate::storage::Quota::new(config.max_storage_bytes));
    let videos = crate::catalog::Lifecycle::new(catalog.clone(), quota.clone());
    let metrics = Arc::new(crate::metrics::Metrics::default());
    // Before recovery: what it changes is reported too.
    let webhooks = open_webhooks(&config, &clock, &metrics, &videos).await?;
    let jobs = Jobs::new(
        config.jobs,
        config.max_pending,
        Settings::from_config(&config),
        config.keep_source,
        videos.clone(),
        quota.clone(),
        metrics.clone(),
    );
    let imports = recover(&videos, unreadable, &jobs, &quota, config.keep_source).await?;
    crate::jobs::lease::spawn(&jobs);
    crate::jobs::lease::spawn_quota_refresh(
        &jobs,
        std::time::Duration::from_secs(config.quota_refresh_secs),
    );
    let upload_rate = crate::http::RateLimiter::new(config.uploads_per_minute, clock.clone());
    let config_event_streams = config.max_event_streams;
    let cache_bytes = usize::try_from(config.cache_bytes).unwrap_or(usize::MAX);
    let limits = crate::http::upload_limits(&config);
    let uploads = crate::ingest::resumable::Sessions::new(crate::ingest::resumable::Env {
        jobs: jobs.clone(),
        videos: videos.clone(),
        quota: quota.clone(),
        max_upload_bytes: config.max_upload_bytes,
        // A body idle this long: its job is parked.
        park_after: limits.idle,
        limits,
    });
    let (lives, doors) = open_lives(&config, &metrics, &jobs, &videos, &quota).await?;
    let state = Arc::new(AppState {
        lives,
        hosts: crate::http::hosts(&config),
        config,
        catalog,
        videos,
        clock,
        quota,
        jobs: jobs.clone(),
        next_request_id: std::sync::atomic::AtomicU64::new(1),
        upload_rate,
        uploads_receiving: std::sync::atomic::AtomicUsize::new(0),
        event_streams: Arc::new(Semaphore::new(config_event_streams)),
        // Finished images keep a quarter of the budget, files the rest.
        cache: crate::http::FileCache::new(
            cache_bytes - cache_bytes / crate::http::IMAGE_CACHE_SHARE,
        ),
        images: crate::http::Images::new(cache_bytes),
        metrics,
        uploads,
        webhooks,
    });
    crate::http::resume_imports(&state, imports);
    Ok(Prepared {
        state,
        jobs,
        tls,
        doors,
    })
}

impl Prepared {
    /// Serves on `listener` until `shutdown` completes, then drains.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let Prepared {
            state,
            jobs,
            tls,
            doors,
        } = self;
        let _stop_doors = doors.serve(&state.lives);
        if let Some(tls) = &tls {
            reload_on_sighup(tls.clone());
        }
        let sweeper = tokio::spawn({
            let uploads = state.uploads.clone();
            async move {
                loop {
                    tokio::time::sleep(SWEEP_EVERY).await;
                    uploads.sweep().await;
                }
            }
        });
        let _stop_sweeper = AbortOnDrop(sweeper);
        let _stop_webhooks = state
            .webhooks
            .clone()
            .map(|w| AbortOnDrop(tokio::spawn(w.run())));
        serve(state, jobs, tls, listener, shutdown).await
    }

    /// True when the server speaks HTTPS (`--tls-cert`).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// Checks `--tls-cert`/`--tls-key` as the server would load them: the
/// error is one line for the operator (the binary exits 2 on it).
pub fn check_tls(config: &Config) -> Result<(), String> {
    load_tls(config).map(|_| ())
}

fn load_tls(config: &Config) -> Result<Option<Tls>, String> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Tls::load(cert, key).map(Some),
        (None, None) => Ok(None),
        _ => Err("--tls-cert and --tls-key go together".into()),
    }
}

/// `SIGHUP` reloads the certificate and key; a pair that fails to load
/// leaves the one in use.
fn reload_on_sighup(tls: Tls) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the certificate will not reload");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let tls = tls.clone();
            let result = tokio::task::spawn_blocking(move || tls.reload()).await;
            match result {
                Ok(Ok(())) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Ok(Err(e)) => tracing::error!("SIGHUP: {e}; the previous certificate stays"),
                Err(e) => tracing::error!("SIGHUP: reload failed: {e}"),
            }
        }
    });
}

async fn serve(
    state: Arc<AppState>,
    jobs: Arc<Jobs>,
    tls: Option<Tls>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let limit = Arc::new(Semaphore::new(state.config.max_connections));
    let per_ip = Arc::new(conn::PerIp::default());
    let builder = Arc::new(driver::builder(&state.config));
    let (closing, _) = watch::channel(false);
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
        let opened = tokio::time::Instant::now();
        let peer = stream
            .peer_addr()
            .map(|a| crate::config::canonical_ip(a.ip()))
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let local = stream.local_addr().map_or(0, |a| a.port());
        let Some(place) = per_ip.admit(&state.config, peer) else {
            tracing::debug!(%peer, "connection refused: too many from this address");
            continue;
        };
        let accepted = Accepted {
            stream,
            peer,
            local,
            opened,
            slot: http::ConnSlot::new(permit),
            shutdown: closing.subscribe(),
        };
        let (state, builder, tls) = (state.clone(), builder.clone(), tls.clone());
        tokio::spawn(async move {
            let metrics = state.metrics.clone();
            metrics.active_connections.fetch_add(1, Ordering::Relaxed);
            connection(state, builder, tls, accepted).await;
            metrics.active_connections.fetch_sub(1, Ordering::Relaxed);
            drop(place);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = closing.send(true);
    tokio::select! {
        _ = closing.closed() => {}
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

/// A connection just accepted, with what it holds.
struct Accepted {
    stream: TcpStream,
    peer: std::net::IpAddr,
    /// The port it came to (the same-origin rule).
    local: u16,
    opened: tokio::time::Instant,
    /// Its `--max-connections` place, which an event stream may give back.
    slot: http::ConnSlot,
    shutdown: watch::Receiver<bool>,
}

/// One connection: writes under the send timeout, the TLS handshake (if
/// any) within the header timeout, then HTTP/1.1 or HTTP/2.
async fn connection(
    state: Arc<AppState>,
    builder: Arc<driver::Builder>,
    tls: Option<Tls>,
    a: Accepted,
) {
    let _ = a.stream.set_nodelay(true);
    let send_timeout = Duration::from_secs(state.config.send_timeout_secs.max(1));
    let io = conn::SendTimeout::new(a.stream, send_timeout);
    let Some(tls) = tls else {
        let (peer, slot, opened) = ((a.peer, a.local), a.slot, a.opened);
        return driver::drive(state, builder, io, peer, slot, opened, a.shutdown).await;
    };
    let deadline = a.opened + driver::header_timeout(&state.config);
    let handshake = tokio::time::timeout_at(deadline, tls.acceptor().accept(io));
    let io = match handshake.await {
        Ok(Ok(io)) => io,
        Ok(Err(e)) => {
            tracing::debug!(peer = %a.peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %a.peer, "TLS handshake timed out");
            return;
        }
    };
    let peer = (a.peer, a.local);
    driver::drive(state, builder, io, peer, a.slot, a.opened, a.shutdown).await
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
