//! A refusal reaches the client. A request answered before its body was
//! read to the end (413, 408, 403, 401 while the client is still sending)
//! has the rest of its body read and thrown away for a while after the
//! answer, as nginx's lingering close does: closing a socket with unread
//! bytes in it sends a reset, and a reset makes the client drop the answer
//! it has not read yet (curl reports only its `100 Continue`, a browser a
//! "network error"). The reading is bounded in bytes and in time.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

/// Most bytes read and thrown away after an answer.
const LINGER_BYTES: u64 = 64 << 20;
/// Longest time spent reading them.
const LINGER_TIME: Duration = Duration::from_secs(10);

/// A request body the handler reads through, while the router keeps a
/// hold on it for what the handler leaves unread.
pub(crate) struct Shared<B>(Arc<Mutex<Option<B>>>);

fn lock<B>(m: &Mutex<Option<B>>) -> MutexGuard<'_, Option<B>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Wraps `body`: the handler's view, and the router's hold.
pub(crate) fn share<B>(body: B) -> (Shared<B>, Shared<B>) {
    let inner = Arc::new(Mutex::new(Some(body)));
    (Shared(inner.clone()), Shared(inner))
}

impl<B> Body for Shared<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match lock(&self.0).as_mut() {
            Some(b) => Pin::new(b).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        lock(&self.0).as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        lock(&self.0)
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

/// After an error answer (`status` 400 or more): what the handler left of
/// the body is read and dropped in the background, within the bounds.
pub(crate) fn after<B>(hold: Shared<B>, status: http::StatusCode)
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
{
    if status.as_u16() < 400 {
        return;
    }
    let Some(body) = lock(&hold.0).take() else {
        return;
    };
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        let _ = tokio::time::timeout(LINGER_TIME, drain(body)).await;
    });
}

/// Reads `body` to its end or [`LINGER_BYTES`], whichever is first.
async fn drain<B: Body<Data = Bytes> + Unpin>(mut body: B) {
    use http_body_util::BodyExt;
    let mut read = 0u64;
    while read < LINGER_BYTES {
        match body.frame().await {
            Some(Ok(f)) => read += f.data_ref().map_or(0, |d| d.len() as u64),
            _ => return,
        }
    }
}
