//! The request body's guard, for every byte of an upload (form fields,
//! part headers and the file alike): an idle timeout, a minimum average
//! rate once the idle timeout has passed, and a budget of bytes that may
//! come before the file's data (so no field, header or preamble can make
//! the multipart parser buffer without bound).

use crate::Error;
use bytes::Bytes;
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Limits of one body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Longest silence.
    pub idle: Duration,
    /// Slowest average, bytes/s, once `idle` has passed (0: any).
    pub min_rate: u64,
    /// Most bytes before the file's data starts.
    pub before_file: u64,
}

/// What the guard shares with the code reading the body.
#[derive(Debug, Default)]
pub(crate) struct GuardState {
    /// Set once the file's data is being read: the budget no longer applies.
    file_started: AtomicBool,
    /// Why the guard cut the body (the parser only sees an I/O error).
    verdict: Mutex<Option<Error>>,
}

impl GuardState {
    pub(crate) fn file_started(&self) {
        self.file_started.store(true, Ordering::Release);
    }

    /// The error the guard cut the body with, if it did.
    pub(crate) fn verdict(&self) -> Option<Error> {
        let v = self.verdict.lock().unwrap_or_else(|p| p.into_inner());
        v.as_ref().map(Error::clone_for_client)
    }
}

/// A body stream under [`Limits`].
pub(crate) struct BodyGuard<S> {
    inner: S,
    limits: Limits,
    state: Arc<GuardState>,
    started: Instant,
    received: u64,
    silence: Pin<Box<Sleep>>,
    failed: bool,
}

impl<S> BodyGuard<S> {
    pub(crate) fn new(inner: S, limits: Limits, state: Arc<GuardState>) -> Self {
        let idle = limits.idle.max(Duration::from_millis(1));
        BodyGuard {
            inner,
            limits,
            state,
            started: Instant::now(),
            received: 0,
            silence: Box::pin(tokio::time::sleep(idle)),
            failed: false,
        }
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        let msg = e.to_string();
        *self.state.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        self.failed = true;
        Poll::Ready(Some(Err(std::io::Error::other(msg))))
    }

    /// Checks the limits after `n` more bytes.
    fn check(&mut self, n: usize) -> Option<Error> {
        self.received += n as u64;
        let l = self.limits;
        if !self.state.file_started.load(Ordering::Acquire) && self.received > l.before_file {
            return Some(Error::TooLarge {
                limit: l.before_file,
            });
        }
        // A slow drip (one byte just inside every idle timeout) would hold a
        // pending place and a transcode slot forever: require an average.
        let elapsed = self.started.elapsed();
        let too_slow = (self.received as f64) < l.min_rate as f64 * elapsed.as_secs_f64();
        (l.min_rate > 0 && elapsed > l.idle && too_slow).then_some(Error::TooSlow {
            min_rate: l.min_rate,
        })
    }
}

impl<S, E> Stream for BodyGuard<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(e) = self.check(chunk.len()) {
                    return self.fail(e);
                }
                let deadline = Instant::now() + self.limits.idle;
                self.silence.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(std::io::Error::other(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.silence.as_mut().poll(cx) {
                Poll::Ready(()) => self.fail(Error::BodyTimeout),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn limits() -> Limits {
        Limits {
            idle: Duration::from_secs(10),
            min_rate: 100,
            before_file: 1000,
        }
    }

    fn guarded(
        s: impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    ) -> (
        BodyGuard<impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin>,
        Arc<GuardState>,
    ) {
        let state = Arc::new(GuardState::default());
        (BodyGuard::new(s, limits(), state.clone()), state)
    }

    #[tokio::test(start_paused = true)]
    async fn silence_is_cut_at_the_idle_timeout() {
        let (mut g, state) = guarded(futures_util::stream::pending());
        assert!(g.next().await.unwrap().is_err());
        assert!(matches!(state.verdict(), Some(Error::BodyTimeout)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_drip_into_any_field_is_cut_for_its_average() {
        // One byte every 9 s: never silent for 10 s, but 0.11 B/s.
        let drip = futures_util::stream::unfold(0, |n| async move {
            tokio::time::sleep(Duration::from_secs(9)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), n + 1))
        });
        let (mut g, state) = guarded(Box::pin(drip));
        while let Some(Ok(_)) = g.next().await {}
        assert!(matches!(state.verdict(), Some(Error::TooSlow { .. })));
    }

    #[tokio::test]
    async fn bytes_before_the_file_are_bounded() {
        let big = futures_util::stream::iter((0..20).map(|_| Ok(Bytes::from(vec![0u8; 100]))));
        let (mut g, state) = guarded(big);
        let mut passed = 0;
        while let Some(Ok(b)) = g.next().await {
            passed += b.len();
        }
        assert_eq!(passed, 1000);
        assert!(matches!(
            state.verdict(),
            Some(Error::TooLarge { limit: 1000 })
        ));
        // Once the file's data flows, the budget is lifted.
        let big = futures_util::stream::iter((0..20).map(|_| Ok(Bytes::from(vec![0u8; 100]))));
        let (mut g, state) = guarded(big);
        state.file_started();
        let mut passed = 0;
        while let Some(Ok(b)) = g.next().await {
            passed += b.len();
        }
        assert_eq!(passed, 2000);
    }
}
