//! The RTMP door (`--rtmp-listen`): publishers push to
//! `rtmp://host:port/live/{stream_key}`. rml_rtmp is the protocol (its
//! handshake and session are state machines fed from this socket loop);
//! this module decides: the app must be `live`, the key must open a live
//! that nobody publishes (else the publish is refused with
//! `NetStream.Publish.BadName` and the connection closed), a client that
//! failed too many keys is closed before its handshake, a connection
//! that has not published within [`HANDSHAKE_TIMEOUT`] or goes quiet for
//! [`IDLE_TIMEOUT`] is closed, and at most [`MAX_CONNECTIONS`] are open.

use super::broadcast::Msg;
use super::flv::Tag;
use super::Lives;
use crate::Error;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent as Event, ServerSessionResult,
};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// From the connection to the publish command.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A publisher that sends nothing this long has stopped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// RTMP connections open at once (publishers and connections not yet
/// publishing).
const MAX_CONNECTIONS: usize = 64;
/// The RTMP application publishers name.
const APP: &str = "live";

/// Accepts publishers until `stop` completes; then every connection is
/// dropped (a broadcast cut by shutdown is kept by recovery).
pub(crate) async fn serve(
    listener: TcpListener,
    lives: Arc<Lives>,
    stop: impl Future<Output = ()>,
) {
    let places = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if lives.limited(peer.ip()) {
            continue;
        }
        let Ok(place) = places.clone().try_acquire_owned() else {
            continue;
        };
        let lives = lives.clone();
        conns.spawn(async move {
            connection(stream, peer, lives).await;
            drop(place);
        });
    }
    conns.shutdown().await;
}

/// One connection, from its handshake to its end (dropping its feed: a
/// broadcast whose publisher did not say it ends awaits a reconnect).
async fn connection(stream: TcpStream, peer: SocketAddr, lives: Arc<Lives>) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let Ok(Ok(rest)) = tokio::time::timeout_at(deadline, handshake(&mut rd, &mut wr)).await else {
        return;
    };
    let Ok((session, first)) = ServerSession::new(ServerSessionConfig::new()) else {
        return;
    };
    let mut c = Conn {
        session,
        wr,
        lives: &lives,
        peer,
        feed: None,
    };
    if let Err(e) = c.run(&mut rd, first, rest, deadline).await {
        tracing::debug!(peer = %peer, error = %e, "RTMP connection ended");
    }
}

/// The RTMP handshake (C0/C1/C2 against S0/S1/S2); the bytes after it.
async fn handshake(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
) -> Result<Vec<u8>, Error> {
    let mut hs = Handshake::new(PeerType::Server);
    let mut buf = [0u8; 4096];
    loop {
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            return Err(Error::Aborted);
        }
        let step = hs
            .process_bytes(&buf[..n])
            .map_err(|e| Error::BadRequest(format!("RTMP handshake: {e}")))?;
        match step {
            HandshakeProcessResult::InProgress { response_bytes } => {
                wr.write_all(&response_bytes).await?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                wr.write_all(&response_bytes).await?;
                return Ok(remaining_bytes);
            }
        }
    }
}

/// A connection past its handshake.
struct Conn<'a> {
    session: ServerSession,
    wr: OwnedWriteHalf,
    lives: &'a Arc<Lives>,
    peer: SocketAddr,
    /// The broadcast this connection publishes, once let in.
    feed: Option<mpsc::Sender<Msg>>,
}

impl Conn<'_> {
    /// Reads and answers until the publisher stops or is cut.
    async fn run(
        &mut self,
        rd: &mut tokio::net::tcp::OwnedReadHalf,
        first: Vec<ServerSessionResult>,
        rest: Vec<u8>,
        handshake_deadline: Instant,
    ) -> Result<(), Error> {
        if !self.handle(first).await? {
            return Ok(());
        }
        let mut input = rest;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            if !input.is_empty() {
                let results = self.session.handle_input(&input).map_err(bad)?;
                if !self.handle(results).await? {
                    return Ok(());
                }
            }
            let wait = match self.feed {
                Some(_) => Instant::now() + IDLE_TIMEOUT,
                None => handshake_deadline,
            };
            let n = match tokio::time::timeout_at(wait, rd.read(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => return Err(Error::BodyTimeout),
            };
            if n == 0 {
                return Ok(());
            }
            input = buf[..n].to_vec();
        }
    }

    /// Acts on a batch of session results; false when the connection ends.
    async fn handle(&mut self, results: Vec<ServerSessionResult>) -> Result<bool, Error> {
        let mut queue = std::collections::VecDeque::from(results);
        while let Some(r) = queue.pop_front() {
            match r {
                ServerSessionResult::OutboundResponse(p) => self.wr.write_all(&p.bytes).await?,
                ServerSessionResult::RaisedEvent(e) => match self.event(e).await? {
                    Some(more) => queue.extend(more),
                    None => return Ok(false),
                },
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(true)
    }

    /// One event; the results it brings, or `None` to close.
    async fn event(&mut self, e: Event) -> Result<Option<Vec<ServerSessionResult>>, Error> {
        let out = match e {
            Event::ConnectionRequested {
                request_id,
                app_name,
            } if app_name == APP => self.session.accept_request(request_id).map_err(bad)?,
            Event::ConnectionRequested { request_id, .. } => {
                let no = "NetConnection.Connect.Rejected";
                let r = self
                    .session
                    .reject_request(request_id, no, "unknown application");
                self.send(r.map_err(bad)?).await?;
                return Ok(None);
            }
            Event::PublishStreamRequested {
                request_id,
                stream_key,
                ..
            } => return self.publish(request_id, &stream_key).await,
            Event::StreamMetadataChanged { metadata, .. } => {
                let (a, v) = (metadata.audio_codec_id, metadata.video_codec_id);
                self.hand_over(Msg::Announce(a.is_some(), v.is_some()))
                    .await?;
                Vec::new()
            }
            Event::VideoDataReceived {
                data, timestamp, ..
            } => {
                self.hand_over(Msg::Media(Tag::Video, timestamp.value, data))
                    .await?;
                Vec::new()
            }
            Event::AudioDataReceived {
                data, timestamp, ..
            } => {
                self.hand_over(Msg::Media(Tag::Audio, timestamp.value, data))
                    .await?;
                Vec::new()
            }
            Event::PublishStreamFinished { .. } => {
                self.hand_over(Msg::End).await?;
                return Ok(None);
            }
            _ => Vec::new(),
        };
        Ok(Some(out))
    }

    /// Hands `msg` to the broadcast (waiting while it is behind); an
    /// error when it has ended (cap, quota, deletion).
    async fn hand_over(&mut self, msg: Msg) -> Result<(), Error> {
        match &self.feed {
            Some(f) => f.send(msg).await.map_err(|_| Error::Aborted),
            None => Ok(()),
        }
    }

    /// A publish: refused (and the connection closed) unless the key
    /// opens a live nobody publishes and its broadcast can begin.
    async fn publish(
        &mut self,
        request: u32,
        key: &str,
    ) -> Result<Option<Vec<ServerSessionResult>>, Error> {
        let refused = match (&self.feed, self.lives.publish(key, self.peer.ip())) {
            (Some(_), _) => Err("this connection is already publishing".to_owned()),
            (None, Err(r)) => Err(r.message().to_owned()),
            (None, Ok(p)) => match p.begun.await {
                Ok(Ok(())) => {
                    self.feed = Some(p.feed);
                    Ok(())
                }
                Ok(Err(e)) => Err(e.public_message()),
                Err(_) => Err("the broadcast could not begin".to_owned()),
            },
        };
        match refused {
            Ok(()) => Ok(Some(self.session.accept_request(request).map_err(bad)?)),
            Err(why) => {
                tracing::info!(peer = %self.peer, why = %why, "RTMP publish refused");
                let code = "NetStream.Publish.BadName";
                let r = self
                    .session
                    .reject_request(request, code, &why)
                    .map_err(bad)?;
                self.send(r).await?;
                Ok(None)
            }
        }
    }

    async fn send(&mut self, results: Vec<ServerSessionResult>) -> Result<(), Error> {
        for r in results {
            if let ServerSessionResult::OutboundResponse(p) = r {
                self.wr.write_all(&p.bytes).await?;
            }
        }
        Ok(())
    }
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("RTMP: {e}"))
}
