//! The chunks' queues, on the job's side: starting a chunk's thread,
//! queuing what it is given (bounded), and writing what it gives back in
//! the video's order.

use super::super::outputs::VideoSink;
use super::super::video::VideoChain;
use super::worker::{self, Ends, Finished, FromChunk, ToChunk};
use super::{Chunk, Chunked, Stitch, MAX_PENDING_BYTES, MAX_QUEUED_BYTES, MAX_QUEUED_PACKETS};
use super::{OUT_QUEUE, WAIT};
use crate::Error;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, TryRecvError, TrySendError};
use std::sync::Arc;

impl Chunked {
    pub(super) fn spawn(&mut self, chain: VideoChain, first: bool) -> Result<(), Error> {
        let (input, input_rx) = sync_channel(MAX_QUEUED_PACKETS);
        let (output_tx, output) = sync_channel(OUT_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let ends = Ends {
            input: input_rx,
            output: output_tx,
            bell: self.ring.clone(),
            queued: queued.clone(),
            done: done.clone(),
            anchor: first.then(|| self.anchor.clone()),
            stop: self.stop.clone(),
        };
        // Unnamed, so it keeps the job thread's name (`job-…`).
        let handle = std::thread::Builder::new()
            .spawn(move || worker::run(chain, ends))
            .map_err(Error::Io)?;
        self.chunks.push_back(Chunk {
            number: self.started,
            input: Some(input),
            output,
            queued,
            given: 0,
            done,
            pending: VecDeque::new(),
            pending_bytes: 0,
            handle: Some(handle),
        });
        self.started += 1;
        Ok(())
    }

    /// Queues `msg` for chunk number `n`, writing what the chunks make
    /// while its queue is full.
    pub(super) fn give(
        &mut self,
        n: usize,
        msg: ToChunk,
        into: &mut Stitch<'_>,
    ) -> Result<(), Error> {
        let bytes = match &msg {
            ToChunk::Packet(p) => p.size(),
            _ => 0,
        };
        let mut msg = msg;
        loop {
            let c = self
                .chunks
                .iter_mut()
                .find(|c| c.number == n)
                .ok_or_else(|| Error::Internal("a chunk ended early".into()))?;
            if c.queued.load(Ordering::Relaxed) < MAX_QUEUED_BYTES {
                let tx = c.input.as_ref().ok_or(Error::Cancelled)?;
                c.queued.fetch_add(bytes, Ordering::Relaxed);
                match tx.try_send(msg) {
                    Ok(()) => {
                        c.given += u64::from(bytes > 0);
                        return Ok(());
                    }
                    Err(e) => {
                        c.queued.fetch_sub(bytes, Ordering::Relaxed);
                        msg = match e {
                            TrySendError::Full(m) => m,
                            // Stopped: its error is in its queue back.
                            TrySendError::Disconnected(_) => {
                                self.pump(into, true)?;
                                return Err(Error::Internal("a chunk stopped".into()));
                            }
                        };
                    }
                }
            }
            self.pump(into, true)?;
        }
    }

    /// Writes what the earliest chunk made (and, once it is whole, the
    /// next's); holds what later chunks made, within bounds. `wait`: for
    /// a chunk to make or take something first (at most [`WAIT`]).
    pub(super) fn pump(&mut self, into: &mut Stitch<'_>, wait: bool) -> Result<(), Error> {
        if into.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        if wait {
            let _ = self.bell.recv_timeout(WAIT);
        }
        while let Some(front) = self.chunks.front_mut() {
            let mut finished = None;
            while finished.is_none() {
                let item = match front.pending.pop_front() {
                    Some(item) => item,
                    None => match front.output.try_recv() {
                        Ok(item) => item,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            return Err(Error::Internal("a chunk stopped".into()))
                        }
                    },
                };
                finished = write(&mut self.last_dts, into, item)?;
            }
            let Some(f) = finished else { break };
            if let Some(h) = self.chunks.pop_front().and_then(|mut c| c.handle.take()) {
                let _ = h.join();
            }
            self.merge(*f);
        }
        for c in self.chunks.iter_mut().skip(1) {
            while c.pending_bytes < MAX_PENDING_BYTES {
                let Ok(item) = c.output.try_recv() else { break };
                match item {
                    FromChunk::Failed(e) => return Err(e),
                    FromChunk::Packet(_, ref p, _) => c.pending_bytes += p.size(),
                    FromChunk::Tile(_) => c.pending_bytes += 32 << 10,
                    FromChunk::Done(_) => {}
                }
                c.pending.push_back(item);
            }
        }
        Ok(())
    }
}

/// Writes one item a chunk made; a whole chunk's summary is returned.
fn write(
    last_dts: &mut [Option<i64>],
    into: &mut Stitch<'_>,
    item: FromChunk,
) -> Result<Option<Box<Finished>>, Error> {
    match item {
        FromChunk::Packet(out, mut p, tb) => {
            // Each chunk's encoder starts its decoding times its reorder
            // delay before its first frame, past the last chunk's: kept
            // increasing should a source's timing make them meet.
            if let (Some(last), Some(dts)) = (last_dts.get(out).copied().flatten(), p.dts()) {
                if dts <= last && p.pts().is_some_and(|pts| pts > last) {
                    p.set_dts(Some(last + 1));
                }
            }
            if let Some(slot) = last_dts.get_mut(out) {
                *slot = p.dts().or(*slot);
            }
            into.outs.write_video(out, &mut p, tb)?;
            Ok(None)
        }
        FromChunk::Tile(t) => {
            if let Err(e) = into.storyboard.place(&t) {
                tracing::warn!(error = %e, "storyboard tile skipped");
            }
            Ok(None)
        }
        FromChunk::Done(f) => Ok(Some(f)),
        FromChunk::Failed(e) => Err(e),
    }
}

impl Drop for Chunked {
    /// On an error or a cancel: every chunk sees its queue close, stops,
    /// and is waited for (what it gives back meanwhile is read and
    /// dropped, so it cannot be stuck giving).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for c in &mut self.chunks {
            c.input.take();
        }
        for c in &mut self.chunks {
            while c.output.recv().is_ok() {}
            if let Some(h) = c.handle.take() {
                let _ = h.join();
            }
        }
    }
}
