//! One chunk on a thread of its own: its video chain (decoder, graph, one
//! encoder per rung, each on its own thread as in an unsplit job) takes
//! the source packets the job's thread routes to it and gives back, in the
//! order they are made, its rungs' packets, its storyboard tiles, and at
//! the end what the job's record needs from its frames.

use super::super::outputs::VideoSink;
use super::super::poster::PosterPicker;
use super::super::video::VideoChain;
use crate::Error;
use ffmpeg_next::{frame, Packet, Rational};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;

/// What the job's thread sends a chunk.
pub(super) enum ToChunk {
    Packet(Packet),
    /// Frames shown at or after this are the next chunk's.
    Until(i64),
    /// No more packets.
    End,
}

/// What a chunk gives back.
pub(super) enum FromChunk {
    /// A packet of rung `.0`, timestamps in `.2`.
    Packet(usize, Packet, Rational),
    /// A storyboard tile, in order.
    Tile(frame::Video),
    /// The chunk is whole: nothing follows.
    Done(Box<Finished>),
    /// The chunk failed: nothing follows.
    Failed(Error),
}

/// What the job keeps of a finished chunk's frames.
pub(super) struct Finished {
    /// Frames given to the encoders (each rung got the same).
    pub frames: u64,
    pub decode_errors: u64,
    pub jumps: u32,
    pub poster: PosterPicker,
    pub colour: crate::catalog::ColourInfo,
}

/// The ends of a chunk's queues, on its side.
pub(super) struct Ends {
    pub input: Receiver<ToChunk>,
    pub output: SyncSender<FromChunk>,
    /// Rung when something was given back or taken (the job's thread
    /// waits on it).
    pub bell: SyncSender<()>,
    /// Bytes of the packets queued for it (the job's thread adds).
    pub queued: Arc<AtomicUsize>,
    /// Packets it has decoded (and said its anchor after).
    pub done: Arc<AtomicU64>,
    /// Where the first chunk says its keyframe grid starts.
    pub anchor: Option<Arc<AtomicI64>>,
    /// The job stopped: what is still queued is not encoded.
    pub stop: Arc<AtomicBool>,
}

/// Hands packets and tiles to the job's thread.
struct Sink<'a> {
    ends: &'a Ends,
}

impl Sink<'_> {
    fn give(&self, item: FromChunk) -> Result<(), Error> {
        let out = &self.ends.output;
        let sent = match out.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(item)) => {
                let _ = self.ends.bell.try_send(());
                out.send(item).map_err(|_| ())
            }
            Err(TrySendError::Disconnected(_)) => Err(()),
        };
        let _ = self.ends.bell.try_send(());
        sent.map_err(|()| Error::Cancelled)
    }
}

impl VideoSink for Sink<'_> {
    fn write_video(&mut self, out: usize, packet: &mut Packet, tb: Rational) -> Result<(), Error> {
        let p = std::mem::replace(packet, Packet::empty());
        self.give(FromChunk::Packet(out, p, tb))
    }
}

/// The chunk's thread: runs `chain` over what comes until the end, then
/// says how it went (its last message).
pub(super) fn run(mut chain: VideoChain, ends: Ends) {
    let sink = Sink { ends: &ends };
    let result = work(&mut chain, &ends);
    let last = match result {
        Ok(()) => FromChunk::Done(Box::new(Finished {
            frames: chain.encoders.frames(),
            decode_errors: chain.decode_errors,
            jumps: chain.jumps(),
            poster: std::mem::replace(&mut chain.poster, PosterPicker::new(None)),
            colour: chain.colour_info(),
        })),
        Err(e) => FromChunk::Failed(e),
    };
    let _ = sink.give(last);
}

fn work(chain: &mut VideoChain, ends: &Ends) -> Result<(), Error> {
    let mut sink = Sink { ends };
    while let Ok(msg) = ends.input.recv() {
        if ends.stop.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        match msg {
            ToChunk::Packet(p) => {
                ends.queued.fetch_sub(p.size(), Ordering::Relaxed);
                let _ = ends.bell.try_send(());
                chain.send_packet(&p, &mut sink)?;
                if let (Some(a), Some(at)) = (&ends.anchor, chain.grid_anchor()) {
                    a.store(at, Ordering::Release);
                }
                ends.done.fetch_add(1, Ordering::Release);
                let _ = ends.bell.try_send(());
            }
            ToChunk::Until(pts) => chain.chunk_until(pts),
            ToChunk::End => {
                chain.finish(&mut sink)?;
                return give_tiles(chain, &sink);
            }
        }
        give_tiles(chain, &sink)?;
    }
    // The job's thread went away (an error or a cancel there).
    Err(Error::Cancelled)
}

fn give_tiles(chain: &mut VideoChain, sink: &Sink<'_>) -> Result<(), Error> {
    for tile in chain.storyboard.take_loose() {
        sink.give(FromChunk::Tile(tile))?;
    }
    Ok(())
}
