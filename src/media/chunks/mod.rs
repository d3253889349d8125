//! Chunked encoding (issue 30): a long video's video is split in time into
//! chunks that are decoded, scaled and encoded side by side, each by a
//! chain of its own on its own thread (`worker`), and stitched back, packet
//! by packet, into the job's one `hls` muxer per rung. So nothing after the
//! encoders changes: the segments, playlists, keys, I-frame playlists,
//! download and publishing are the unsplit job's, the audio (and captions,
//! audio renditions) is encoded once on the job's thread, and a player sees
//! one continuous stream (no discontinuity, one init segment).
//!
//! - Chunks are cut on the keyframe grid (`split`), so each starts with an
//!   IDR where an unsplit job makes one; a chunk decodes from the source's
//!   keyframe before its start and drops the frames before it.
//! - The source is read once, in order, by the job's thread, which routes
//!   each packet to the chunk (or the two chunks) that need it. A chunk's
//!   queue holds at most [`MAX_QUEUED_BYTES`] of source: the reader runs
//!   ahead of the encoders by at most `--chunk-workers` chunks.
//! - The earliest chunk's packets go to the muxers as they come (the
//!   playlists grow as during an unsplit job); a later chunk's wait in
//!   memory (at most [`MAX_PENDING_BYTES`], then that chunk waits) until
//!   every chunk before it is whole.
//!
//! Not split: a copied top rung (its cuts are the source's keyframes), a
//! codec group (SVT-AV1 places its own keyframes), a live, a video shorter
//! than a chunk and a half.

mod queues;
mod split;
mod worker;

use super::outputs::RungOutput;
use super::poster::PosterPicker;
use super::storyboard::Storyboard;
use super::video::{DecoderPlan, OpenedVideo, VideoChain};
use super::Settings;
use crate::hls::ladder::RungPlan;
use crate::Error;
use ffmpeg_next::{Packet, Rational};
use split::{Seen, Splitter};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;
use worker::{Finished, FromChunk, ToChunk};

/// Source bytes queued for one chunk; the reader waits past this.
const MAX_QUEUED_BYTES: usize = 48 << 20;
/// A chunk that has taken half of that ends at the next grid point.
const CHUNK_BUDGET: usize = MAX_QUEUED_BYTES / 2;
/// Packets queued for one chunk (about a minute at 120 fps).
const MAX_QUEUED_PACKETS: usize = 8192;
/// Packets since the last keyframe kept to start a chunk from.
const MAX_KEPT_PACKETS: usize = 1024;
const MAX_KEPT_BYTES: usize = 32 << 20;
/// A later chunk's packets held for the muxers; past this it waits.
const MAX_PENDING_BYTES: usize = 48 << 20;
/// Items a chunk gives back before the job's thread reads them.
const OUT_QUEUE: usize = 64;
/// How long the job's thread waits for a chunk before looking again.
const WAIT: Duration = Duration::from_millis(50);

/// Whether a job is split: more than one worker and a chunk length, every
/// rung encoded with libx264, and a source long enough (or of unknown
/// length).
fn eligible(settings: &Settings, rungs: &[RungPlan], duration: Option<f64>) -> bool {
    let secs = f64::from(settings.chunk_seconds);
    settings.chunk_seconds > 0
        && settings.chunk_workers >= 2
        && rungs
            .iter()
            .all(|r| !r.copy && r.codec == crate::config::VideoCodec::H264)
        && duration.is_none_or(|d| d >= secs * 1.5)
}

/// The settings of each chunk's chain when the job is split: the cores
/// shared by the chunks running at once (`None`: not split).
pub(super) fn per_chunk(
    settings: &Settings,
    rungs: &[RungPlan],
    duration: Option<f64>,
) -> Option<Settings> {
    eligible(settings, rungs, duration).then(|| {
        let mut s = settings.clone();
        s.cores = (settings.cores / settings.chunk_workers).max(1);
        s
    })
}

/// What every chunk's chain is made from.
pub(super) struct Recipe {
    pub decoder: DecoderPlan,
    pub rungs: Vec<RungPlan>,
    pub offset: i64,
    pub duration: Option<f64>,
    pub settings: Settings,
}

impl Recipe {
    fn chain(&self, source: &super::Source, rungs: &[RungPlan]) -> Result<VideoChain, Error> {
        let ist = source
            .ictx
            .stream(source.video_index)
            .ok_or_else(|| Error::Internal("video stream vanished".into()))?;
        let opened = OpenedVideo::open(&ist, &self.settings, self.decoder)?;
        let s = &self.settings;
        VideoChain::new(opened, self.offset, self.duration, rungs, (false, None), s)
    }

    /// A chain with no encoder: the job's, which only collects the
    /// storyboard's tiles and the poster once chunks encode.
    pub(super) fn placeholder(&self, source: &super::Source) -> Result<VideoChain, Error> {
        self.chain(source, &[])
    }
}

/// A started chunk, on the job's side.
struct Chunk {
    /// Chunks started before it.
    number: usize,
    input: Option<SyncSender<ToChunk>>,
    output: Receiver<FromChunk>,
    queued: Arc<AtomicUsize>,
    /// Packets given to it, and how many it has decoded.
    given: u64,
    done: Arc<std::sync::atomic::AtomicU64>,
    /// Given back while an earlier chunk is not whole.
    pending: VecDeque<FromChunk>,
    pending_bytes: usize,
    handle: Option<std::thread::JoinHandle<()>>,
}

/// What the job's thread writes a chunk's packets and tiles into.
pub(super) struct Stitch<'a> {
    pub outs: &'a mut Vec<RungOutput>,
    pub storyboard: &'a mut Storyboard,
    /// The job's cancel: waiting for a chunk stops when it is set.
    pub cancel: &'a std::sync::atomic::AtomicBool,
}

/// The chunks of one job, on the job's thread.
pub(super) struct Chunked {
    recipe: Recipe,
    /// The first chunk's chain (the job's, opened with its outputs).
    first: Option<VideoChain>,
    splitter: Splitter,
    /// Started and not yet merged, earliest first.
    chunks: VecDeque<Chunk>,
    /// The chunk before the last still takes packets decoded before the
    /// last boundary.
    closing: bool,
    /// Source packets since the last keyframe.
    kept: Vec<Packet>,
    kept_bytes: usize,
    /// Too many to keep since the last keyframe: none kept until the next.
    kept_broken: bool,
    bell: Receiver<()>,
    ring: SyncSender<()>,
    anchor: Arc<AtomicI64>,
    /// Tells every chunk to stop (the job is dropped).
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// Each rung's last decoding time written.
    last_dts: Vec<Option<i64>>,
    /// Chunks started so far.
    pub(super) started: usize,
    /// What the merged chunks' frames gave.
    merged: Option<Merged>,
}

/// The merged chunks' frames.
pub(super) struct Merged {
    pub frames: u64,
    pub decode_errors: u64,
    pub jumps: u32,
    pub poster: PosterPicker,
    pub colour: crate::catalog::ColourInfo,
}

/// No anchor yet.
const UNSET: i64 = i64::MIN;

impl Chunked {
    /// For a job whose video stream has time base `tb` and `outs` rungs;
    /// `first` is the chain the job opened its outputs with (the first
    /// chunk's).
    pub(super) fn new(recipe: Recipe, first: VideoChain, tb: Rational, outs: usize) -> Self {
        let per_sec = f64::from(tb.denominator()) / f64::from(tb.numerator().max(1));
        let s = &recipe.settings;
        // The grid of `keymode::key_plan`, which every chunk's chain keeps.
        let step = ((s.keyframe_seconds * per_sec).round() as i64).max(1);
        let len = (f64::from(s.chunk_seconds) * per_sec).round() as i64;
        let (ring, bell) = sync_channel(1);
        Chunked {
            splitter: Splitter::new(step, len, CHUNK_BUDGET, per_sec),
            recipe,
            first: Some(first),
            chunks: VecDeque::new(),
            closing: false,
            kept: Vec::new(),
            kept_bytes: 0,
            kept_broken: false,
            bell,
            ring,
            anchor: Arc::new(AtomicI64::new(UNSET)),
            stop: Arc::default(),
            last_dts: vec![None; outs],
            started: 0,
            merged: None,
        }
    }

    /// Most audio packets a rung should hold for its video: the reader
    /// runs up to every worker's chunk ahead of the muxed video.
    pub(super) fn audio_to_hold(&self) -> usize {
        let s = &self.recipe.settings;
        let secs = (s.chunk_workers + 1) * s.chunk_seconds as usize + 60;
        secs * 50
    }

    /// The timestamp jumps the merged chunks' chains made.
    pub(super) fn jumps(&self) -> u32 {
        self.merged.as_ref().map_or(0, |m| m.jumps)
    }

    /// The merged chunks' poster (taken) and their decoding errors.
    pub(super) fn take_poster(&mut self) -> Option<(PosterPicker, u64)> {
        let m = self.merged.as_mut()?;
        let poster = std::mem::replace(&mut m.poster, PosterPicker::new(None));
        Some((poster, m.decode_errors))
    }

    /// What the chunks merged so far gave (all of them after `finish`).
    pub(super) fn merged(&self) -> Option<&Merged> {
        self.merged.as_ref()
    }

    /// Routes source video packet `p` (timestamps as read; the job's
    /// `offset` makes them output times) to the chunks that need it,
    /// starting one at a boundary, and writes what the chunks made.
    pub(super) fn send(
        &mut self,
        p: &Packet,
        offset: i64,
        source: &super::Source,
        into: &mut Stitch<'_>,
    ) -> Result<(), Error> {
        if self.splitter.needs_anchor() {
            self.await_anchor(into)?;
        }
        let seen = Seen {
            pts: p.pts().map(|t| t - offset),
            dts: p.dts().map(|t| t - offset),
            key: p.is_key(),
            bytes: p.size(),
        };
        let route = self.splitter.route(seen);
        if p.is_key() {
            self.kept.clear();
            (self.kept_bytes, self.kept_broken) = (0, false);
        }
        if route.close_previous {
            self.end_previous(into)?;
        }
        if let Some(g) = route.start {
            self.start_next(g, source, into)?;
        }
        if route.to_previous {
            let n = self.number_back(1)?;
            self.give(n, ToChunk::Packet(p.clone()), into)?;
        }
        if self.chunks.is_empty() {
            self.start_first()?;
        }
        let n = self.number_back(0)?;
        self.give(n, ToChunk::Packet(p.clone()), into)?;
        self.keep(p);
        self.pump(into, false)
    }

    /// Ends the last chunks and waits for every chunk, writing what they
    /// make; then [`Chunked::merged`] has them all.
    pub(super) fn finish(&mut self, into: &mut Stitch<'_>) -> Result<(), Error> {
        if self.chunks.is_empty() {
            self.start_first()?;
        }
        if self.closing {
            self.end_previous(into)?;
        }
        let n = self.number_back(0)?;
        self.give(n, ToChunk::End, into)?;
        while !self.chunks.is_empty() {
            self.pump(into, true)?;
        }
        Ok(())
    }

    /// Waits until the first chunk has decoded every packet it was given,
    /// so that whether its keyframe grid's anchor is known (its first frame
    /// shown) does not depend on how fast its thread ran: where chunks
    /// begin is the same from one run to the next.
    fn await_anchor(&mut self, into: &mut Stitch<'_>) -> Result<(), Error> {
        loop {
            let a = self.anchor.load(Ordering::Acquire);
            if a != UNSET {
                self.splitter.set_anchor(a);
                return Ok(());
            }
            match self.chunks.front() {
                Some(c) if c.done.load(Ordering::Acquire) < c.given => self.pump(into, true)?,
                _ => return Ok(()),
            }
        }
    }

    /// The number of the chunk `back` places from the last.
    fn number_back(&self, back: usize) -> Result<usize, Error> {
        let i = self.chunks.len().checked_sub(back + 1);
        i.and_then(|i| self.chunks.get(i))
            .map(|c| c.number)
            .ok_or_else(|| Error::Internal("no such chunk".into()))
    }

    /// Keeps `p` among the packets since the last keyframe (a chunk may
    /// start from them), within bounds.
    fn keep(&mut self, p: &Packet) {
        if self.kept_broken {
            return;
        }
        if self.kept.len() >= MAX_KEPT_PACKETS || self.kept_bytes + p.size() > MAX_KEPT_BYTES {
            self.kept.clear();
            (self.kept_bytes, self.kept_broken) = (0, true);
            self.splitter.too_many_kept();
            return;
        }
        self.kept_bytes += p.size();
        self.kept.push(p.clone());
    }

    /// The chunk before the last has every packet it needs.
    fn end_previous(&mut self, into: &mut Stitch<'_>) -> Result<(), Error> {
        self.closing = false;
        let n = self.number_back(1)?;
        self.give(n, ToChunk::End, into)
    }

    fn start_first(&mut self) -> Result<(), Error> {
        let mut chain = self
            .first
            .take()
            .ok_or_else(|| Error::Internal("first chunk started twice".into()))?;
        // Its tiles go to the job's storyboard like every chunk's.
        chain.storyboard.detach(-1e-9);
        self.spawn(chain, true)
    }

    /// Starts a chunk at output time `g`: the last chunk's frames end
    /// there; the new one gets the packets since the last keyframe.
    fn start_next(
        &mut self,
        g: i64,
        source: &super::Source,
        into: &mut Stitch<'_>,
    ) -> Result<(), Error> {
        let last = self.number_back(0)?;
        self.give(last, ToChunk::Until(g), into)?;
        while self.chunks.len() >= self.recipe.settings.chunk_workers {
            self.pump(into, true)?;
        }
        let mut chain = self.recipe.chain(source, &self.recipe.rungs)?;
        chain.chunk_from(g);
        self.spawn(chain, false)?;
        self.closing = true;
        let n = self.number_back(0)?;
        // Clones share the packets' data; the list is kept for a later
        // boundary before the next keyframe.
        for p in self.kept.clone() {
            self.give(n, ToChunk::Packet(p), into)?;
        }
        Ok(())
    }

    fn merge(&mut self, f: Finished) {
        self.merged = Some(match self.merged.take() {
            None => Merged {
                frames: f.frames,
                decode_errors: f.decode_errors,
                jumps: f.jumps,
                poster: f.poster,
                colour: f.colour,
            },
            Some(m) => Merged {
                frames: m.frames + f.frames,
                decode_errors: m.decode_errors + f.decode_errors,
                jumps: m.jumps + f.jumps,
                poster: m.poster.then(f.poster),
                colour: m.colour,
            },
        });
    }
}
