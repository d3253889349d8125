//! What each connection is held to: a place among `--max-connections`
//! (taken before `accept`), a place among its address's
//! `--max-connections-per-ip` (trusted proxies exempt), and a send timeout
//! (`--send-timeout-secs`: a client that reads nothing for that long loses
//! its connection, so it cannot hold a place by never reading).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Open connections per client address.
#[derive(Debug, Default)]
pub(crate) struct PerIp {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place among its address's; given back on drop.
pub(crate) struct IpPlace {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// Admits a connection from `peer`: `Some(None)` for a trusted proxy
    /// (no per-address cap), `Some(Some(place))` within the cap, `None`
    /// over it.
    pub(crate) fn admit(
        self: &Arc<Self>,
        config: &crate::config::Config,
        peer: IpAddr,
    ) -> Option<Option<IpPlace>> {
        if config.trusted_proxies.iter().any(|c| c.contains(peer)) {
            return Some(None);
        }
        // An IPv6 client is its prefix (`--ipv6-prefix`).
        let key = crate::http::client_key(peer, config.ipv6_prefix);
        self.take(key, config.max_connections_per_ip).map(Some)
    }

    /// A place for `ip`, or `None` when it holds `max` already.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpPlace> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpPlace {
            per_ip: self.clone(),
            ip,
        })
    }
}

impl Drop for IpPlace {
    fn drop(&mut self) {
        let mut counts = self.per_ip.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                // The table holds only addresses with open connections.
                counts.remove(&self.ip);
            }
        }
    }
}

/// An I/O stream whose writes fail once they have made no progress for
/// `timeout` (the peer stopped reading).
pub(crate) struct SendTimeout<T> {
    inner: T,
    timeout: Duration,
    /// Running while a write is pending; reset by progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> SendTimeout<T> {
    pub(crate) fn new(inner: T, timeout: Duration) -> Self {
        SendTimeout {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// Maps a pending write to a timeout once it has waited too long.
    fn watch<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match poll {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SendTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SendTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn places_per_address_are_bounded_and_given_back() {
        let p = Arc::new(PerIp::default());
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| p.take(ip, 3).unwrap()).collect();
        assert!(p.take(ip, 3).is_none());
        assert!(p.take("127.0.0.3".parse().unwrap(), 3).is_some());
        drop(held);
        assert!(p.take(ip, 3).is_some());
        assert!(p.counts.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_reads_times_the_write_out() {
        let (a, _b) = tokio::io::duplex(64);
        let mut w = SendTimeout::new(a, Duration::from_secs(60));
        let e = w.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
