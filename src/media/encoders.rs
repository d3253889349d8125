//! The video chain's encoders: one libx264 per encoded rung, each on a
//! thread of its own, and the packets each gives its rung's muxer (with
//! real frame durations).
//!
//! # Why a thread per rung
//! With every encoder called in turn from the job's one thread, the job
//! waits on each in turn: only x264's own frame threads kept the two cores
//! busy, and each of them holds frames (at 1080p about 70 MiB a thread).
//! Here the job's thread decodes and scales, and hands each rung its
//! frames through a bounded queue; the rungs encode side by side, so few
//! x264 threads per rung keep the cores busy (see [`x264_threads`]), and
//! memory follows the number of frames in flight, not the number of
//! threads times the frame size.
//!
//! # No deadlock, bounded queues
//! A rung's thread gets frames through a queue of [`FRAME_QUEUE`] and gives
//! packets back through one of [`PACKET_QUEUE`]. libx264 gives at most one
//! packet per frame it is sent (more only when flushed at the end, when the
//! job's thread is only reading packets), and the job's thread reads a
//! rung's packets before each frame it queues for it; so between two reads
//! a rung makes at most `FRAME_QUEUE + 1` packets, fewer than the packet
//! queue holds, and never waits on it while the job's thread waits on its
//! frame queue.

use super::media_err;
use super::outputs::VideoSink;
use super::x264::KeyInt;
use super::Settings;
use crate::Error;
use ffmpeg_next::{encoder, frame, picture, Packet, Rational};
use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;

/// Frames waiting for a rung's encoder.
const FRAME_QUEUE: usize = 2;
/// Packets waiting for the job's thread (see the module's docs).
const PACKET_QUEUE: usize = FRAME_QUEUE + 8;

/// One encoded rung: its encoder and the timing it needs.
pub(crate) struct RungEncoder {
    /// Index of the rung's output.
    pub out: usize,
    pub(super) encoder: super::svtlock::Encoder,
    /// Real duration of each frame sent to the encoder, by pts (the gap to
    /// the next frame): libx264 leaves packet durations at 0, and the hls
    /// muxer sums them for the last EXTINF, so VFR needs the true values.
    /// Entries leave when their packet does (bounded by the encoder delay).
    durations: HashMap<i64, i64>,
    /// Pts of the last frame sent to the encoder.
    last_encoded_pts: Option<i64>,
    frame_dur: i64,
    /// A kept HDR rung: how to open it again (see [`Encoders::reopen`]).
    reopen: Option<super::groupenc::Reopen>,
}

/// What the job's thread sends a rung's thread.
enum ToRung {
    /// A frame, and whether it must be an IDR.
    Frame(frame::Video, bool),
    Eof,
}

/// A rung's encoder at work on its own thread.
struct Worker {
    out: usize,
    frames: Option<SyncSender<ToRung>>,
    packets: Receiver<Result<Packet, Error>>,
    handle: Option<JoinHandle<()>>,
}

/// The encoders of one job: opened (so the muxers can copy their
/// parameters), then started on their threads with the first frame.
pub(crate) struct Encoders {
    opened: Vec<RungEncoder>,
    workers: Vec<Worker>,
    tb: Rational,
    /// Frames sent to each rung.
    sent: Vec<u64>,
}

/// Pictures larger than this are "big" for [`x264_threads`] and
/// [`super::x264::Shape`] (720p).
const BIG_RUNG_PIXELS: f64 = 1280.0 * 720.0;

/// x264 threads for a rung that makes `share` of the ladder's pixels, on
/// `cores` cores (`big`: its pictures are above [`BIG_RUNG_PIXELS`]): x264's own choice for a rung alone (its
/// `auto`, 1.5 a core), and in a ladder its share of that, at least 1.
/// The rungs run side by side, so small rungs need no frame threads of
/// their own.
///
/// A big rung of a ladder gets one frame thread fewer: each holds a picture
/// to encode and a reconstructed one with its half-pel planes (about
/// 18 MiB at 1080p), and a 1080p ladder on 2 cores fits 300 MiB only so.
/// It is no slower there, as the other rungs and the decoder fill the
/// second core. Smaller rungs keep theirs: x264 under a bit rate cap that
/// starves it does better with frame threads (grain at 720p: SSIM 95.39
/// with 1 thread, 95.50 with 2, 95.57 with 3; BENCHMARKS.md, issue 17).
pub(crate) fn x264_threads(share: f64, big: bool, cores: usize) -> usize {
    let auto = (share * cores.max(1) as f64 * 1.5).round() as usize;
    let fewer = usize::from(share < 1.0 && big);
    auto.saturating_sub(fewer).max(1)
}

/// One encoder per encoded rung (`(output index, plan)` pairs): libx264,
/// or SVT-AV1 or libx265 for a codec group's rung (in 10-bit HDR with
/// `keep`: the source's HDR and colour, `--hdr keep`).
pub(super) fn open_encoders(
    encoded: Vec<(usize, &crate::hls::ladder::RungPlan)>,
    (tb, fps, cfr): (Rational, Rational, bool),
    keyint: KeyInt,
    frame_dur: i64,
    (settings, keep): (
        &Settings,
        Option<(super::colour::Hdr, &super::colour::Colour)>,
    ),
) -> Result<Encoders, Error> {
    // A codec group's encoder is as costly as a few x264 ones: its rungs
    // weigh more in the share of the cores.
    let pixels = |r: &crate::hls::ladder::RungPlan| {
        let weight = match r.codec {
            crate::config::VideoCodec::H264 => 1.0,
            _ => 2.0,
        };
        f64::from(r.width) * f64::from(r.height) * weight
    };
    let total: f64 = encoded.iter().map(|(_, r)| pixels(r)).sum();
    let cores = settings.cores;
    let ladder = encoded.len() > 1;
    let mut opened = Vec::with_capacity(encoded.len());
    for (out, r) in encoded {
        let big = f64::from(r.width) * f64::from(r.height) > BIG_RUNG_PIXELS;
        let shape = super::x264::Shape {
            threads: x264_threads(pixels(r) / total.max(1.0), big, cores),
            ladder,
            big,
            cfr,
        };
        let encoder = match r.codec {
            crate::config::VideoCodec::H264 => super::svtlock::Encoder::other(
                super::x264::open_encoder(r, tb, fps, keyint.max, shape, settings)?,
            ),
            _ => {
                let threads = (shape.threads, keep);
                super::groupenc::open_encoder(r, (tb, fps), keyint, threads, settings)?
            }
        };
        let kept = (shape.threads, keep.map(|k| k.0));
        opened.push(RungEncoder {
            out,
            encoder,
            durations: HashMap::new(),
            last_encoded_pts: None,
            frame_dur,
            reopen: super::groupenc::Reopen::of(r, (tb, fps), keyint, kept, settings),
        });
    }
    Ok(Encoders {
        sent: vec![0; opened.len()],
        opened,
        workers: Vec::new(),
        tb,
    })
}

impl Encoders {
    pub(crate) fn len(&self) -> usize {
        self.opened.len().max(self.workers.len())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frames sent to the first rung (every rung gets the same).
    pub(crate) fn frames(&self) -> u64 {
        self.sent.first().copied().unwrap_or(0)
    }

    /// Parameters for rung `out`'s output stream (before the first frame).
    pub(crate) fn encoder_for(&self, out: usize) -> Option<&encoder::Video> {
        self.opened
            .iter()
            .find(|e| e.out == out)
            .map(|e| &*e.encoder)
    }

    /// Opens the kept HDR rungs' encoders again with `colour`'s HDR
    /// metadata (read from the first frame), before any frame is sent.
    pub(crate) fn reopen(&mut self, colour: &super::colour::Colour) -> Result<(), Error> {
        for enc in &mut self.opened {
            if let Some(again) = &enc.reopen {
                enc.encoder.end_unused();
                enc.encoder = again.open(colour)?;
            }
        }
        Ok(())
    }

    /// The position of rung `out`'s encoder among the encoded rungs.
    pub(crate) fn index_of(&self, out: usize) -> Option<usize> {
        match self.opened.is_empty() {
            false => self.opened.iter().position(|e| e.out == out),
            true => self.workers.iter().position(|w| w.out == out),
        }
    }

    /// Moves each opened encoder onto its own thread.
    fn start(&mut self) -> Result<(), Error> {
        for enc in self.opened.drain(..) {
            let (frames, frames_rx) = sync_channel(FRAME_QUEUE);
            let (packets_tx, packets) = sync_channel(PACKET_QUEUE);
            let out = enc.out;
            // Unnamed, so it keeps the job thread's name (`job-…`).
            let handle = std::thread::Builder::new()
                .spawn(move || enc.run(&frames_rx, &packets_tx))
                .map_err(Error::Io)?;
            self.workers.push(Worker {
                out,
                frames: Some(frames),
                packets,
                handle: Some(handle),
            });
        }
        Ok(())
    }

    /// Queues `frame` for rung `i` (an IDR when `force`, and always the
    /// rung's first), after writing the packets that rung has made.
    pub(crate) fn send(
        &mut self,
        i: usize,
        frame: frame::Video,
        force: bool,
        outs: &mut dyn VideoSink,
    ) -> Result<(), Error> {
        if !self.opened.is_empty() {
            self.start()?;
        }
        let force = force || self.sent[i] == 0;
        self.sent[i] += 1;
        self.drain(i, outs, false)?;
        let sent = self.workers[i]
            .frames
            .as_ref()
            .is_some_and(|tx| tx.send(ToRung::Frame(frame, force)).is_ok());
        if sent {
            return Ok(());
        }
        // The rung's thread stopped: its error is in its packet queue.
        self.drain(i, outs, true)?;
        Err(Error::Internal("a video encoder stopped".into()))
    }

    /// Writes the packets rung `i` has made; `to_end`: waits for all of
    /// them (the rung's thread ends).
    fn drain(&mut self, i: usize, outs: &mut dyn VideoSink, to_end: bool) -> Result<(), Error> {
        let (tb, w) = (self.tb, &mut self.workers[i]);
        loop {
            let next = if to_end {
                w.packets.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                w.packets.try_recv()
            };
            let mut packet = match next {
                Ok(p) => p?,
                Err(_) => return Ok(()),
            };
            outs.write_video(w.out, &mut packet, tb)?;
        }
    }

    /// Writes every packet each rung has made so far.
    pub(crate) fn poll(&mut self, outs: &mut dyn VideoSink) -> Result<(), Error> {
        for i in 0..self.workers.len() {
            self.drain(i, outs, false)?;
        }
        Ok(())
    }

    /// Flushes every encoder and writes the last packets.
    pub(crate) fn finish(&mut self, outs: &mut dyn VideoSink) -> Result<(), Error> {
        if !self.opened.is_empty() {
            self.start()?;
        }
        for w in &mut self.workers {
            if let Some(tx) = w.frames.take() {
                let _ = tx.send(ToRung::Eof);
            }
        }
        for i in 0..self.workers.len() {
            self.drain(i, outs, true)?;
            if let Some(h) = self.workers[i].handle.take() {
                let _ = h.join();
            }
        }
        Ok(())
    }
}

impl Drop for Encoders {
    /// On an error or a cancel: each rung's thread sees its queue close (or
    /// its packets refused), stops, and is waited for.
    fn drop(&mut self) {
        for w in &mut self.workers {
            w.frames.take();
        }
        for w in &mut self.workers {
            // Its packets are read until it ends, so it cannot be stuck
            // sending one.
            while w.packets.recv().is_ok() {}
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
    }
}

impl RungEncoder {
    /// The rung's thread: encodes what comes until the end or an error
    /// (sent on as the last item).
    fn run(mut self, frames: &Receiver<ToRung>, packets: &SyncSender<Result<Packet, Error>>) {
        while let Ok(msg) = frames.recv() {
            let ended = matches!(msg, ToRung::Eof);
            let step = match msg {
                ToRung::Frame(mut f, force) => {
                    f.set_kind(if force {
                        picture::Type::I
                    } else {
                        picture::Type::None
                    });
                    self.send_frame(&f)
                }
                ToRung::Eof => self
                    .encoder
                    .send_eof()
                    .map_err(media_err("video encoder eof")),
            };
            if let Err(e) = step.and_then(|()| self.receive_packets(packets)) {
                let _ = packets.send(Err(e));
                return;
            }
            if ended {
                return;
            }
        }
    }

    fn send_frame(&mut self, f: &frame::Video) -> Result<(), Error> {
        let pts = f.pts().unwrap_or(0);
        // Only while the previous frame's packet is still to come: an
        // entry whose packet already left must not be re-added (leak).
        if let Some(d) = self
            .last_encoded_pts
            .and_then(|p| self.durations.get_mut(&p).map(|d| (d, p)))
        {
            *d.0 = pts - d.1;
        }
        self.durations.insert(pts, self.frame_dur);
        self.last_encoded_pts = Some(pts);
        self.encoder
            .send_frame(f)
            .map_err(media_err("video encoder"))
    }

    /// Sends on every packet the encoder has ready; `Err` when the job has
    /// stopped listening.
    fn receive_packets(
        &mut self,
        packets: &SyncSender<Result<Packet, Error>>,
    ) -> Result<(), Error> {
        let mut packet = Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            let real = packet.pts().and_then(|p| self.durations.remove(&p));
            if packet.duration() <= 0 {
                packet.set_duration(real.unwrap_or(self.frame_dur));
            }
            let p = std::mem::replace(&mut packet, Packet::empty());
            packets.send(Ok(p)).map_err(|_| Error::Cancelled)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{x264_threads, BIG_RUNG_PIXELS};

    #[test]
    fn threads_follow_each_rungs_share_of_the_pixels() {
        // 1080/720/480/360 on 2 cores: one each (the 1080p rung is big);
        // on 4 the two top rungs 2.
        let px = [
            1920.0 * 1080.0,
            1280.0 * 720.0,
            854.0 * 480.0,
            640.0 * 360.0,
        ];
        let total: f64 = px.iter().sum();
        let t = |cores| -> Vec<usize> {
            px.iter()
                .map(|&p| x264_threads(p / total, p > BIG_RUNG_PIXELS, cores))
                .collect()
        };
        assert_eq!(t(2), [1, 1, 1, 1]);
        assert_eq!(t(4), [2, 2, 1, 1]);
        // 720/480/360 on 2 cores: the 720p rung keeps a frame thread.
        let total: f64 = px[1..].iter().sum();
        let t: Vec<usize> = px[1..]
            .iter()
            .map(|&p| x264_threads(p / total, p > BIG_RUNG_PIXELS, 2))
            .collect();
        assert_eq!(t, [2, 1, 1]);
        // A rung alone gets x264's own automatic count.
        assert_eq!(x264_threads(1.0, true, 2), 3);
        assert_eq!(x264_threads(1.0, true, 8), 12);
        assert_eq!(x264_threads(0.0, false, 0), 1);
    }
}
