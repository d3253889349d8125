//! One broadcast: its own task ([`run`]) takes the messages its
//! publishers' connections send ([`Msg`]), frames RTMP's as FLV (SRT's
//! MPEG-TS goes as it is) into the live's spool through an [`Upload`]
//! (its limits: size, quota), under the live's input bit-rate cap.
//!
//! A publisher that says it ends (RTMP `deleteStream`, SRT's shutdown)
//! ends the broadcast; one that is cut (its connection lost or silent)
//! leaves it awaiting a reconnect for `--live-reconnect-secs`: a
//! publisher back within that time continues the same video, its
//! timestamps moved on to follow what came; where its bytes begin is
//! marked in the spool, and the job starts every rung's next segment
//! there, after an `EXT-X-DISCONTINUITY` (`media::restart`). Then [`Broadcast::end`]: what
//! came is kept as the video (`processing`, then `ready`), unless the
//! probe refused it (the live then awaits its publisher again).

use super::flv::{self, Tag};
use super::tsconf::{Verdict, Watch};
use super::window::Window;
use super::{Claim, Lives};
use crate::catalog::Change;
use crate::ingest::{IngestContext, Upload};
use crate::Error;
use bytes::{Bytes, BytesMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Seconds of the cap a publisher may send at once (a keyframe, a
/// burst after a stall).
const BURST_SECS: f64 = 4.0;
/// How long the deletion of an ended live kept nowhere waits for its
/// writers (its job) before it goes on in the background.
const FORGET_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Messages written to the spool at once at most.
const BATCH: usize = 256;
/// The gap left between what came before a reconnect and what follows.
const RECONNECT_GAP_MS: i64 = 40;

/// What a publisher's connection hands its broadcast.
#[derive(Debug)]
pub(crate) enum Msg {
    /// The streams the publisher's metadata announces (audio, video).
    Announce(bool, bool),
    /// An RTMP audio or video message (an FLV tag body).
    Media(Tag, u32, Bytes),
    /// Container bytes (SRT's MPEG-TS).
    Raw(Bytes),
    /// The publisher says it ends.
    End,
}

/// The broadcast of `claim`'s live, fed by `feed` and then by the feeds
/// of publishers that come back; `begun` hears whether it could begin.
pub(crate) async fn run(
    lives: Arc<Lives>,
    claim: Claim,
    mut feed: mpsc::Receiver<Msg>,
    begun: oneshot::Sender<Result<(), Error>>,
) {
    let env = &lives.env;
    let ctx = IngestContext {
        jobs: &env.jobs,
        videos: &env.videos,
        quota: &env.quota,
        max_upload_bytes: env.max_upload_bytes,
    };
    let id = claim.id;
    let mut b = match Broadcast::begin(&lives, &ctx, claim).await {
        Ok(b) => b,
        Err(e) => {
            let _ = begun.send(Err(e));
            return;
        }
    };
    let _ = begun.send(Ok(()));
    let why = loop {
        match b.take(&mut feed).await {
            Err(e) => {
                if !matches!(e, Error::Aborted) {
                    b.metrics.lives_cut.fetch_add(1, Ordering::Relaxed);
                }
                break Some(e);
            }
            Ok(true) => break None,
            Ok(false) => {}
        }
        tracing::info!(id = %id, "live publisher cut; awaiting its reconnect");
        match lives.park(id, || b.up.is_aborted()).await {
            Some(next) => {
                tracing::info!(id = %id, "live publisher back");
                feed = next;
                b.resumed = true;
            }
            None => break None,
        }
    };
    // A publisher still sending (cut by the cap, the quota, the size)
    // hears of it now, not once the end is written.
    drop(feed);
    b.end(why).await;
}

/// The input bit-rate cap, as a token bucket of bytes.
struct Budget {
    rate: f64,
    allowance: f64,
    last: Instant,
}

impl Budget {
    fn new(kbps: u64) -> Budget {
        let rate = kbps as f64 * 1000.0 / 8.0;
        Budget {
            rate,
            allowance: rate * BURST_SECS,
            last: Instant::now(),
        }
    }

    /// The cap, kbit/s.
    fn kbps(&self) -> u64 {
        (self.rate * 8.0 / 1000.0).round() as u64
    }

    /// Takes `n` bytes; false when the publisher is above the cap.
    fn spend(&mut self, n: usize) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.last = now;
        self.allowance = (self.allowance + refill).min(self.rate * BURST_SECS);
        self.allowance -= n as f64;
        self.allowance >= 0.0
    }
}

/// A broadcast arriving.
pub(crate) struct Broadcast<'a> {
    up: Upload<'a>,
    /// The FLV header is written before the first tag, with the streams
    /// the publisher's metadata announced.
    header_written: bool,
    streams: (bool, bool),
    buf: BytesMut,
    budget: Budget,
    /// Added to a publisher's timestamps (ms): what moves a reconnected
    /// publisher's clock on after what came before.
    shift: i64,
    last_ms: i64,
    resumed: bool,
    /// An SRT publisher back, whose first bytes are still held.
    restart: bool,
    metrics: Arc<crate::metrics::Metrics>,
    /// Kept as a video when it ends (else deleted: `record: false`).
    record: bool,
    /// The first AVC and AAC configurations (FLV sequence headers), and
    /// whether one came again different (see [`Broadcast::configure`]).
    configs: [Option<Bytes>; 2],
    reconfigured: bool,
    /// What a live kept nowhere may let go of.
    window: Option<Window>,
    /// SRT publishers' configurations (as `configs` for RTMP).
    ts: Watch,
    _claim: Claim,
}

impl<'a> Broadcast<'a> {
    /// The live's spool and pipeline, for the publisher of `claim`.
    async fn begin(
        lives: &Lives,
        ctx: &'a IngestContext<'a>,
        claim: Claim,
    ) -> Result<Broadcast<'a>, Error> {
        let permit = ctx.jobs.try_reserve().ok_or(Error::Busy)?;
        let up = Upload::publish(ctx, claim.id, permit).await?;
        crate::failpoint!("live.after_spool");
        let (videos, id) = (ctx.videos.clone(), claim.id);
        let record = videos
            .catalog()
            .peek(id, |r| r.live.as_ref().is_none_or(|l| l.record))
            .unwrap_or(true);
        let began = Change::LiveStarted(videos.catalog().clock().unix_ms());
        // Announced once (`live.started`); a reconnect is no new start.
        let started = tokio::task::spawn_blocking(move || videos.apply(id, began)).await;
        if let Err(e) = started.map_err(Error::from).and_then(|r| r) {
            return Err(up.abandon(e).await);
        }
        tracing::info!(id = %claim.id, "live broadcast started");
        Ok(Broadcast {
            up,
            header_written: false,
            streams: (true, true),
            buf: BytesMut::with_capacity(64 << 10),
            budget: Budget::new(lives.env.max_kbps),
            shift: 0,
            last_ms: 0,
            resumed: false,
            restart: false,
            metrics: lives.env.metrics.clone(),
            record,
            configs: [None, None],
            reconfigured: false,
            window: (!record).then(|| Window::new(ctx.max_upload_bytes)),
            ts: Watch::default(),
            _claim: claim,
        })
    }

    /// Takes a publisher's messages until it goes: `Ok(true)` when it
    /// said it ends, `Ok(false)` when it was cut.
    async fn take(&mut self, feed: &mut mpsc::Receiver<Msg>) -> Result<bool, Error> {
        loop {
            let Some(first) = feed.recv().await else {
                self.flush().await?;
                return Ok(false);
            };
            let mut next = Some(first);
            let mut n = 0;
            while let Some(msg) = next.take() {
                if self.apply(msg) {
                    self.flush().await?;
                    return Ok(true);
                }
                if self.reconfigured {
                    self.flush().await?;
                    return Err(Error::BadRequest(
                        "the publisher came back with other video or audio parameters: \
                         the broadcast ends at the cut and is kept (a new stream needs a new live)"
                            .into(),
                    ));
                }
                n += 1;
                if n < BATCH {
                    next = feed.try_recv().ok();
                }
            }
            self.flush().await?;
        }
    }

    /// One message; true for the publisher's end.
    fn apply(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Announce(audio, video) => self.announce(audio, video),
            Msg::Media(kind, ms, body) => self.media(kind, ms, &body),
            Msg::Raw(bytes) => self.raw(bytes),
            Msg::End => return true,
        }
        false
    }

    /// The publisher's metadata said which streams come.
    fn announce(&mut self, audio: bool, video: bool) {
        if !self.header_written && (audio || video) {
            self.streams = (audio, video);
        }
    }

    /// An FLV sequence header (AVC decoder configuration, AAC
    /// AudioSpecificConfig): the first of each kind is kept; one that
    /// differs (a publisher back with another size or rate) ends the
    /// broadcast before it reaches the spool, as the copied rung and
    /// the demuxer's streams could not follow it (the copy decoded with
    /// errors after such a reconnect). True when `body` is to be dropped.
    /// (SRT's MPEG-TS carries them in-band: see [`Broadcast::raw`].)
    fn configure(&mut self, kind: Tag, body: &[u8]) -> bool {
        if !flv::config(kind, body) {
            return false;
        }
        let slot = &mut self.configs[usize::from(kind == Tag::Audio)];
        match slot {
            None => {
                *slot = Some(Bytes::copy_from_slice(body));
                false
            }
            Some(first) => {
                self.reconfigured = first[..] != *body;
                self.reconfigured
            }
        }
    }

    /// Tells the job that a publisher back begins at the next byte: its
    /// playlists start a new segment there, after `EXT-X-DISCONTINUITY`.
    fn mark_restart(&self) {
        let at = self.up.received + self.buf.len() as u64;
        self.up.abort.spool.mark_restart(at);
    }

    /// One audio or video message, buffered until [`Broadcast::flush`].
    fn media(&mut self, kind: Tag, ms: u32, body: &[u8]) {
        if self.configure(kind, body) {
            return;
        }
        if std::mem::take(&mut self.resumed) {
            self.shift = self.last_ms + RECONNECT_GAP_MS - i64::from(ms);
            self.mark_restart();
        }
        let out = (i64::from(ms) + self.shift).max(0);
        self.last_ms = self.last_ms.max(out);
        let ms = u32::try_from(out).unwrap_or(u32::MAX);
        if !self.header_written {
            let (a, v) = self.streams;
            flv::header(
                &mut self.buf,
                a || kind == Tag::Audio,
                v || kind == Tag::Video,
            );
            self.header_written = true;
        }
        let video = self.streams.1 || self.configs[0].is_some();
        if let Some(w) = &mut self.window {
            if !flv::config(kind, body) {
                let at = self.up.received + self.buf.len() as u64;
                w.frame(at, flv::starts(kind, body, video));
            }
        }
        flv::tag(&mut self.buf, kind, ms, body);
    }

    /// Bytes already in a container (SRT's MPEG-TS), buffered as they
    /// are; a publisher back is held until its configuration is read, and
    /// ends the broadcast if it differs from the first one's.
    fn raw(&mut self, bytes: Bytes) {
        self.header_written = true;
        if std::mem::take(&mut self.resumed) {
            self.ts.back();
            self.restart = true;
        }
        let all = match self.ts.take(bytes) {
            Verdict::Pass(all) => all,
            Verdict::Hold => return,
            Verdict::Refuse => {
                self.reconfigured = true;
                return;
            }
        };
        if std::mem::take(&mut self.restart) {
            self.mark_restart();
        }
        for b in all {
            if let Some(w) = &mut self.window {
                w.frame(self.up.received + self.buf.len() as u64, true);
            }
            self.buf.extend_from_slice(&b);
        }
    }

    /// Hands what was buffered to the spool; an error ends the broadcast.
    async fn flush(&mut self) -> Result<(), Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if !self.budget.spend(self.buf.len()) {
            return Err(Error::BadRequest(format!(
                "the broadcast's bit rate is above this server's cap ({} kbit/s)",
                self.budget.kbps()
            )));
        }
        let chunk = self.buf.split().freeze();
        let n = chunk.len() as u64;
        self.up.write(chunk).await?;
        if let Some(w) = &mut self.window {
            self.up.slide(w).await?;
        }
        self.metrics
            .live_ingest_bytes
            .fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// The broadcast ends (`why`: what cut it, if not its publisher).
    /// What came is kept, unless the video was deleted meanwhile.
    /// A broadcast kept nowhere ended: its job stops, its files go, then
    /// the video (`live.ended`, then `video.deleted`).
    async fn forget(self) {
        let id = self.up.id;
        let videos = self.up.videos().clone();
        let _ = self.up.abandon(Error::Aborted).await;
        let v = videos.clone();
        let _ = tokio::task::spawn_blocking(move || v.apply(id, Change::LiveEnded)).await;
        crate::failpoint!("live.after_ended");
        match videos.delete(id, FORGET_WAIT).await {
            Ok(_) => tracing::info!(id = %id, "live broadcast ended; nothing kept (record: false)"),
            Err(e) => tracing::warn!(id = %id, error = %e, "cannot delete an ended live"),
        }
    }

    async fn end(self, why: Option<Error>) {
        let id = self.up.id;
        match why {
            Some(Error::Aborted) => {
                let _ = self.up.abandon(Error::Aborted).await;
                tracing::info!(id = %id, "live broadcast stopped: the video was deleted");
            }
            _ if !self.record => self.forget().await,
            why => {
                if let Some(e) = &why {
                    tracing::warn!(id = %id, error = %e, "live broadcast cut");
                }
                match self.up.finish(None).await {
                    Ok(_) => tracing::info!(id = %id, "live broadcast ended; kept as a video"),
                    Err(e) => {
                        tracing::warn!(id = %id, error = %e, "live broadcast refused; the live awaits its publisher")
                    }
                }
            }
        }
    }
}
