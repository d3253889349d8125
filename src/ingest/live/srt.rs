//! The SRT door (`--srt-listen`): publishers push MPEG-TS to
//! `srt://host:port` with a stream id naming the key (the access-control
//! form `#!::r=live/{key},m=publish`, or `live/{key}`, or the key alone).
//! The key is checked in SRT's handshake, before the caller is accepted:
//! a wrong or missing key, a second publisher, a full server or a client
//! that failed too many keys is rejected there. The bytes are the
//! broadcast's spool as they come; [`IDLE_TIMEOUT`] of silence ends it.

use super::broadcast::Msg;
use super::{Lives, Refusal};
use futures_util::StreamExt;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::{ConnectionRequest, SrtIncoming, SrtListener};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A publisher that sends nothing this long has stopped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Callers being answered or publishing at once.
const MAX_CONNECTIONS: usize = 64;

/// The SRT listener on `addr`, bound (its port is known from then on).
pub(crate) async fn bind(
    addr: std::net::SocketAddr,
) -> std::io::Result<(SrtListener, SrtIncoming, std::net::SocketAddr)> {
    let socket = tokio::net::UdpSocket::bind(addr).await?;
    let local = socket.local_addr()?;
    let (l, incoming) = SrtListener::builder().socket(socket).bind(local).await?;
    Ok((l, incoming, local))
}

/// Answers callers until `stop` completes.
pub(crate) async fn serve(
    bound: (SrtListener, SrtIncoming),
    lives: Arc<Lives>,
    stop: impl Future<Output = ()>,
) {
    let (_listener, mut incoming) = bound;
    let places = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    let requests = incoming.incoming();
    tokio::pin!(stop);
    loop {
        let req = tokio::select! {
            _ = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            r = requests.next() => match r {
                Some(r) => r,
                None => break,
            },
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            let _ = req
                .reject(RejectReason::Server(ServerRejectReason::Overload))
                .await;
            continue;
        };
        let lives = lives.clone();
        conns.spawn(async move {
            caller(req, lives).await;
            drop(place);
        });
    }
    conns.shutdown().await;
}

/// The key a stream id names: `#!::r=live/KEY,m=publish` (SRT's access
/// control syntax; `m` must be `publish` when given), `live/KEY` or `KEY`.
pub(crate) fn key_of(stream_id: &str) -> Option<&str> {
    let resource = match stream_id.strip_prefix("#!::") {
        Some(pairs) => {
            let mut r = None;
            for pair in pairs.split(',') {
                match pair.split_once('=') {
                    Some(("r", v)) => r = Some(v),
                    Some(("m", m)) if m != "publish" => return None,
                    _ => {}
                }
            }
            r?
        }
        None => stream_id,
    };
    let key = resource.strip_prefix("live/").unwrap_or(resource);
    (!key.is_empty() && !key.contains('/')).then_some(key)
}

fn reject_reason(r: Refusal) -> RejectReason {
    RejectReason::Server(match r {
        Refusal::BadKey => ServerRejectReason::Forbidden,
        Refusal::Taken => ServerRejectReason::Conflict,
        Refusal::Full => ServerRejectReason::Overload,
    })
}

/// One caller: checked, then its bytes into its broadcast until it
/// stops (the broadcast then awaits a reconnect, `--live-reconnect-secs`).
async fn caller(req: ConnectionRequest, lives: Arc<Lives>) {
    let ip = req.remote().ip();
    if lives.limited(ip) {
        let _ = req.reject(reject_reason(Refusal::BadKey)).await;
        return;
    }
    let key = req
        .stream_id()
        .and_then(|s| key_of(s))
        .unwrap_or("")
        .to_owned();
    let p = match lives.publish(&key, ip) {
        Ok(p) => p,
        Err(r) => {
            tracing::info!(peer = %req.remote(), why = r.message(), "SRT publish refused");
            let _ = req.reject(reject_reason(r)).await;
            return;
        }
    };
    match p.begun.await {
        Ok(Ok(())) => {}
        why => {
            tracing::info!(peer = %req.remote(), why = ?why, "SRT publish refused");
            let _ = req
                .reject(RejectReason::Server(ServerRejectReason::Overload))
                .await;
            return;
        }
    }
    if let Ok(socket) = req.accept(None).await {
        receive(&p.feed, socket).await;
    }
}

/// Hands the caller's packets to its broadcast until it closes, goes
/// quiet or is lost, or the broadcast ends.
async fn receive(feed: &mpsc::Sender<Msg>, mut socket: srt_tokio::SrtSocket) {
    loop {
        match tokio::time::timeout(IDLE_TIMEOUT, socket.next()).await {
            Ok(Some(Ok((_, bytes)))) => {
                if feed.send(Msg::Raw(bytes)).await.is_err() {
                    return;
                }
            }
            // SRT tells a caller's shutdown from a lost link only in its
            // log: both leave the broadcast awaiting a reconnect.
            Ok(None) | Ok(Some(Err(_))) | Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::key_of;

    #[test]
    fn stream_ids_name_the_key_in_srts_forms() {
        assert_eq!(key_of("#!::r=live/abc,m=publish"), Some("abc"));
        assert_eq!(key_of("#!::m=publish,r=abc"), Some("abc"));
        assert_eq!(key_of("#!::r=live/abc,m=request"), None);
        assert_eq!(key_of("#!::m=publish"), None);
        assert_eq!(key_of("live/abc"), Some("abc"));
        assert_eq!(key_of("abc"), Some("abc"));
        assert_eq!(key_of(""), None);
        assert_eq!(key_of("live/"), None);
        assert_eq!(key_of("a/b/c"), None);
    }
}
