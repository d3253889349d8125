//! Drives one connection, HTTP/1.1 or HTTP/2 (hyper-util's auto builder:
//! h2 by prior knowledge on plain TCP, by ALPN under TLS), to its end
//! under the limits every connection keeps whatever its protocol:
//!
//! - a first request within `--header-timeout-secs` of the accept (TLS
//!   handshake and protocol detection included: the auto builder's own
//!   detection waits forever for a silent client);
//! - HTTP/1.1's header-read timeout for each request; HTTP/2's stream,
//!   header-list and reset-flood limits and keep-alive pings;
//! - `--keep-alive-secs` without a request in progress (a request lasts
//!   until its response body is sent: downloads, event streams) closes
//!   the connection gracefully (any protocol), and a connection still open
//!   a header timeout after that is dropped. On HTTP/1.1 hyper's
//!   header-read timer also runs while an idle connection waits for its
//!   next request, so there the shorter of the two applies;
//! - server shutdown asks every connection to finish gracefully.
//!
//! hyper-util's `GracefulShutdown` cannot watch a wrapped connection (its
//! trait is sealed), so shutdown is a watch channel here: each connection
//! holds a receiver until it ends, and the server waits for the sender to
//! have none.

use crate::config::Config;
use crate::http::{self, AppState, ConnSlot};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;

/// Concurrent streams one HTTP/2 connection may open (a player needs a
/// handful; each is a request in progress).
const H2_MAX_STREAMS: u32 = 100;
/// Largest header list an HTTP/2 request may send (HTTP/1.1 is bounded by
/// hyper's 100 headers in a 400 KiB buffer).
const H2_MAX_HEADER_LIST: u32 = 16 << 10;
/// HTTP/2 ping interval: a peer that vanished is noticed.
const H2_PING: Duration = Duration::from_secs(30);

/// The protocol side of every connection, built once.
pub(crate) type Builder = auto::Builder<TokioExecutor>;

/// HTTP/1.1 and HTTP/2 with their limits (see the module docs).
pub(crate) fn builder(config: &Config) -> Builder {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout(config));
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST)
        .max_pending_accept_reset_streams(Some(20))
        .max_local_error_reset_streams(Some(256))
        .keep_alive_interval(H2_PING)
        .keep_alive_timeout(Duration::from_secs(20))
        .adaptive_window(true);
    b
}

pub(crate) fn header_timeout(config: &Config) -> Duration {
    Duration::from_secs(config.header_timeout_secs.max(1))
}

/// Requests in progress on a connection, and when the last one ended.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    in_progress: AtomicUsize,
    requests: AtomicU64,
    /// Milliseconds after `opened` when a request last began or ended.
    last_ms: AtomicU64,
}

/// A request in progress; ends (and stamps the time) when dropped.
struct InProgress(Arc<Activity>);

impl Activity {
    fn new(opened: Instant) -> Arc<Self> {
        Arc::new(Activity {
            opened,
            in_progress: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    fn begin(self: &Arc<Self>) -> InProgress {
        self.in_progress.fetch_add(1, Ordering::SeqCst);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.stamp();
        InProgress(self.clone())
    }

    fn stamp(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection counts as idle if nothing happens before:
    /// `None` while a request is in progress.
    fn idle_at(&self, first: Duration, keep_alive: Duration) -> Option<Instant> {
        if self.in_progress.load(Ordering::SeqCst) > 0 {
            return None;
        }
        if self.requests.load(Ordering::Relaxed) == 0 {
            return Some(self.opened + first);
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.opened + last + keep_alive)
    }
}

/// A response body that keeps its request in progress until it is sent
/// or dropped.
struct Tracked {
    inner: http::Body,
    _busy: InProgress,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.stamp();
        self.0.in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves one connection (already TLS-wrapped if need be) until it ends.
/// `opened` is the accept time: the first request's deadline counts from
/// it. The shutdown receiver is held until the connection is over.
pub(crate) async fn drive<IO>(
    state: Arc<AppState>,
    builder: Arc<Builder>,
    io: IO,
    (peer, local): (IpAddr, u16),
    slot: ConnSlot,
    opened: Instant,
    mut shutdown: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new(opened);
    let first = header_timeout(&state.config);
    let keep_alive = Duration::from_secs(state.config.keep_alive_secs.max(1));
    let service = {
        let (state, activity) = (state.clone(), activity.clone());
        service_fn(move |mut req| {
            let state = state.clone();
            let busy = activity.begin();
            req.extensions_mut().insert(slot.clone());
            req.extensions_mut().insert(http::LocalPort(local));
            async move {
                let res = http::handle(state, req, peer).await;
                // In progress until its body is sent (a download, an event
                // stream), not only until the handler answers.
                Ok::<_, Infallible>(res.map(|inner| Tracked { inner, _busy: busy }))
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    // Once asked to finish: when to give up waiting for it.
    let mut closing: Option<Instant> = None;
    loop {
        let idle_at = activity.idle_at(first, keep_alive);
        let wake = match (closing, idle_at) {
            (Some(c), Some(i)) => c.max(i),
            (Some(c), None) => c + keep_alive,
            (None, Some(i)) => i,
            (None, None) => Instant::now() + keep_alive,
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.changed(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + first);
            }
            _ = tokio::time::sleep_until(wake) => {
                let Some(idle_at) = activity.idle_at(first, keep_alive) else { continue };
                match closing {
                    None if Instant::now() >= idle_at => {
                        conn.as_mut().graceful_shutdown();
                        closing = Some(Instant::now() + first);
                    }
                    Some(c) if Instant::now() >= c.max(idle_at) => return,
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idleness_counts_from_the_accept_then_from_the_last_request() {
        let a = Activity::new(Instant::now());
        let (first, keep) = (Duration::from_secs(30), Duration::from_secs(75));
        assert_eq!(a.idle_at(first, keep), Some(a.opened + first));
        tokio::time::advance(Duration::from_secs(5)).await;
        let busy = a.begin();
        assert_eq!(a.idle_at(first, keep), None);
        tokio::time::advance(Duration::from_secs(100)).await;
        drop(busy);
        assert_eq!(
            a.idle_at(first, keep),
            Some(a.opened + Duration::from_secs(105) + keep)
        );
    }
}
