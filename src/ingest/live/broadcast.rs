//! One broadcast: a publisher's messages framed as FLV into the live's
//! spool through an [`Upload`] (its limits: size, quota), under the
//! live's input bit-rate cap. A broadcast ends by [`Broadcast::end`]:
//! what came is kept as the video (`processing`, then `ready`), unless
//! the probe refused it (the live then awaits its publisher again).

use super::flv::{self, Tag};
use super::{Claim, Lives};
use crate::ingest::{IngestContext, Upload};
use crate::Error;
use bytes::BytesMut;
use std::time::Instant;

/// Seconds of the cap a publisher may send at once (a keyframe, a
/// burst after a stall).
const BURST_SECS: f64 = 4.0;

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
    max_kbps: u64,
    _claim: Claim,
}

impl<'a> Broadcast<'a> {
    /// The live's spool and pipeline, for the publisher of `claim`.
    pub(crate) async fn begin(
        lives: &Lives,
        ctx: &'a IngestContext<'a>,
        claim: Claim,
    ) -> Result<Broadcast<'a>, Error> {
        let permit = ctx.jobs.try_reserve().ok_or(Error::Busy)?;
        let up = Upload::publish(ctx, claim.id, permit).await?;
        crate::failpoint!("live.after_spool");
        tracing::info!(id = %claim.id, "live broadcast started");
        Ok(Broadcast {
            up,
            header_written: false,
            streams: (true, true),
            buf: BytesMut::with_capacity(64 << 10),
            budget: Budget::new(lives.env.max_kbps),
            max_kbps: lives.env.max_kbps,
            _claim: claim,
        })
    }

    /// The publisher's metadata said which streams come.
    pub(crate) fn announce(&mut self, audio: bool, video: bool) {
        if !self.header_written && (audio || video) {
            self.streams = (audio, video);
        }
    }

    /// One audio or video message, buffered until [`Broadcast::flush`].
    pub(crate) fn media(&mut self, kind: Tag, ms: u32, body: &[u8]) {
        if !self.header_written {
            let (a, v) = self.streams;
            flv::header(
                &mut self.buf,
                a || kind == Tag::Audio,
                v || kind == Tag::Video,
            );
            self.header_written = true;
        }
        flv::tag(&mut self.buf, kind, ms, body);
    }

    /// Bytes already in a container (SRT's MPEG-TS), buffered as they are.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.header_written = true;
        self.buf.extend_from_slice(bytes);
    }

    /// Hands what was buffered to the spool; an error ends the broadcast.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if !self.budget.spend(self.buf.len()) {
            return Err(Error::BadRequest(format!(
                "the broadcast's bit rate is above this server's cap ({} kbit/s)",
                self.max_kbps
            )));
        }
        let chunk = self.buf.split().freeze();
        self.up.write(chunk).await
    }

    /// The broadcast ends (`why`: what cut it, if not its publisher).
    /// What came is kept, unless the video was deleted meanwhile.
    pub(crate) async fn end(self, why: Option<Error>) {
        let id = self.up.id;
        match why {
            Some(Error::Aborted) => {
                let _ = self.up.abandon(Error::Aborted).await;
                tracing::info!(id = %id, "live broadcast stopped: the video was deleted");
            }
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
