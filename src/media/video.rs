//! The video chain: one decoder → one filter graph (rotation, square
//! pixels, then `split` into one scaler per rung, yuv420p) → one libx264
//! encoder per encoded rung, each on a thread of its own (`encoders`: the
//! job's thread decodes and scales, the rungs encode side by side, their
//! packets come back to the job's thread, which owns the muxers). The
//! source is decoded once whatever the
//! ladder; every rung is encoded from the same frames, and keyframes are
//! forced on the same frames in every rung, so segment N of every rendition
//! starts at the same instant.
//!
//! Keyframes: on a timestamp grid (every `keyframe_seconds`, anchored at the
//! first frame) when every rung is encoded; on the source's own keyframes
//! when the top rung is a copy of the source, so the encoded rungs cut
//! where the copied one must.

use super::encoders::{open_encoders, Encoders};
use super::media_err;
use super::outputs::VideoSink;
use super::Settings;
use crate::Error;
use ffmpeg_next::{decoder, encoder, filter, frame, picture, Packet, Rational};
use std::collections::VecDeque;

/// The decoder, the graph and the encoders of one job.
pub(crate) struct VideoChain {
    decoder: decoder::Video,
    /// Built at the first frame, which says what the stream may not (its
    /// colour tags, HDR metadata in SEI).
    graph: Option<filter::Graph>,
    /// What the graph is built from.
    plan: super::vgraph::GraphPlan,
    /// Tone maps an HDR source's pictures before the graph, when it can.
    tone_map: Option<super::ycctone::YccToneMap>,
    /// Encoders fed by graph outputs `out0`, `out1`, …; when there is none
    /// (every rung copied), `out0` only feeds the poster.
    pub encoders: Encoders,
    /// The graph output each encoder takes its frames from.
    branch_of: Vec<usize>,
    /// Time base of decoder output, filter graph and encoders alike: the
    /// input stream's, so variable frame rate passes through untouched.
    tb: Rational,
    /// Subtracted from every timestamp so the output starts near 0.
    offset: i64,
    keys: super::keymode::KeyMode,
    /// The IDR decision of recent frames, by pts (the graph is 1:1, so a
    /// frame leaves every branch long before it falls off).
    forced: VecDeque<(i64, bool)>,
    /// Keeps the pts sent to the filter strictly increasing through the
    /// source's repeats and jumps.
    timeline: crate::hls::timeline::Timeline,
    /// The last decoded frame, waiting for the next one (see
    /// `receive_decoded_frames`), and the pts of the frame before it.
    held: Option<Held>,
    released: Option<i64>,
    /// The top rung is a copy: a packet that does not decode cleanly means
    /// the copy cannot be trusted (`Error::CopyFallback`).
    strict: bool,
    /// Packets the decoder refused (corrupt data).
    pub decode_errors: u64,
    /// Chooses the poster frame as frames go by (from `out0`).
    pub poster: super::poster::PosterPicker,
    /// Takes the storyboard's tiles as frames go by (from `out0`).
    pub storyboard: super::storyboard::Storyboard,
    /// A chunk's frames (`media::chunks`): those shown in `[.0, .1)`.
    range: (i64, i64),
}

/// A decoded frame waiting for its successor, with its output pts.
struct Held {
    frame: frame::Video,
    pts: i64,
    /// Its source timestamp repeated the previous frame's.
    collided: bool,
}

pub(crate) use super::opened::{
    constant_rate, decoder_threads, stream_fps, DecoderPlan, OpenedVideo,
};

impl VideoChain {
    /// Builds the graph and one encoder per encoded rung of `outs` (which
    /// gives each rung's size and maxrate). `offset` is in the stream's time
    /// base; `source_keys`: force IDRs where the source has keyframes (and,
    /// with an AV1 group, the grid of frames they are on).
    pub(crate) fn new(
        opened: OpenedVideo,
        offset: i64,
        duration: Option<f64>,
        rungs: &[crate::hls::ladder::RungPlan],
        source_keys: (bool, Option<u64>),
        settings: &Settings,
    ) -> Result<Self, Error> {
        let OpenedVideo {
            decoder,
            tb,
            rotation,
            fps,
            cfr,
            threads,
            width,
            height,
            colour,
        } = opened;
        let encoded: Vec<(usize, &crate::hls::ladder::RungPlan)> =
            rungs.iter().enumerate().filter(|(_, r)| !r.copy).collect();
        let copying = rungs.iter().any(|r| r.copy);
        // `--hdr keep`: an HDR source's codec groups stay HDR.
        let keep = colour.hdr().filter(|_| settings.hdr_keep);
        let (sizes, branch_of) = super::vgraph::branches(&encoded, (width, height), keep);
        let plan = super::vgraph::GraphPlan {
            tb,
            rotation,
            sizes,
            threads,
            colour,
            premapped: false,
        };
        let per_sec = f64::from(tb.denominator()) / f64::from(tb.numerator().max(1));
        let frame_dur = ((per_sec / f64::from(fps)).round() as i64).max(1);
        let av1 = encoded
            .iter()
            .any(|(_, r)| r.codec == crate::config::VideoCodec::Av1);
        let (keyint, keys) =
            super::keymode::key_plan(f64::from(fps), per_sec, (source_keys, av1), settings);
        let kept = keep.map(|h| (h, &plan.colour));
        let encoders = open_encoders(encoded, (tb, fps, cfr), keyint, frame_dur, (settings, kept))?;
        Ok(VideoChain {
            decoder,
            graph: None,
            plan,
            tone_map: None,
            encoders,
            branch_of,
            tb,
            offset,
            keys,
            forced: VecDeque::with_capacity(64),
            timeline: crate::hls::timeline::Timeline::new(per_sec, frame_dur),
            held: None,
            released: None,
            strict: copying,
            decode_errors: 0,
            poster: super::poster::PosterPicker::new(duration),
            storyboard: super::storyboard::Storyboard::new(duration),
            range: (i64::MIN, i64::MAX),
        })
    }

    /// Makes it a chunk's that starts at `pts` (a point of the keyframe
    /// grid): frames shown before are decoded and dropped, the grid goes
    /// on from there, and storyboard tiles go to the job.
    pub(crate) fn chunk_from(&mut self, pts: i64) {
        self.range.0 = pts;
        self.keys.restart_at(pts);
        let after = (pts - self.timeline.step()) as f64 * f64::from(self.tb);
        self.storyboard.detach(after);
    }

    /// A chunk's frames shown at or after `pts` are the next chunk's.
    pub(crate) fn chunk_until(&mut self, pts: i64) {
        self.range.1 = pts;
    }

    /// The keyframe grid's first point (the first frame's pts), once known.
    pub(crate) fn grid_anchor(&self) -> Option<i64> {
        self.keys.anchor()
    }

    /// How many times the video's timestamps jumped so far.
    pub(crate) fn jumps(&self) -> u32 {
        self.timeline.jumps()
    }

    /// The source's colour, with what its first frame said.
    pub(crate) fn colour_info(&self) -> crate::catalog::ColourInfo {
        self.plan.colour.info()
    }

    /// The HDR rung `out` keeps (`--hdr keep`), if it does.
    pub(crate) fn kept_hdr(&self, out: usize) -> Option<super::colour::Hdr> {
        let j = self.encoders.index_of(out)?;
        self.plan.sizes.get(*self.branch_of.get(j)?)?.2
    }

    /// Parameters for rung `out`'s output stream (its encoder's).
    pub(crate) fn encoder_for(&self, out: usize) -> Option<&encoder::Video> {
        self.encoders.encoder_for(out)
    }

    /// The first frame shown at or after `secs` is a keyframe in every
    /// encoded rung, and the keyframe grid starts again there (a live's
    /// publisher back, see `restart`). The source's keyframes (a copy)
    /// already are; SVT-AV1's frame grid cannot move.
    pub(crate) fn key_at(&mut self, secs: f64) {
        let at = (secs / f64::from(self.tb)).floor() as i64 - 1;
        self.keys.restart_at(at);
    }

    /// True when a frame shown at `pts` need not be filtered: every rung
    /// is copied, the poster has been chosen and no storyboard tile is due.
    fn idle(&self, pts: i64) -> bool {
        let secs = pts as f64 * f64::from(self.tb);
        self.encoders.is_empty() && self.poster.is_chosen() && !self.storyboard.wants(secs)
    }

    /// A decoding failure: fatal to a copy (its packets would reach
    /// players), else counted and skipped (the frame is concealed).
    fn decode_error(&mut self, e: ffmpeg_next::Error) -> Result<(), Error> {
        if self.strict {
            return Err(Error::CopyFallback(format!(
                "the source's video does not decode cleanly ({e})"
            )));
        }
        self.decode_errors += 1;
        Ok(())
    }

    /// Decodes one packet and pushes what comes out through to the muxers.
    pub(crate) fn send_packet(
        &mut self,
        packet: &Packet,
        outs: &mut dyn VideoSink,
    ) -> Result<(), Error> {
        if let Err(e) = self.decoder.send_packet(packet) {
            return self.decode_error(e);
        }
        self.receive_decoded_frames(outs)
    }

    /// Drains the decoder, filter and encoders at end of input.
    pub(crate) fn finish(&mut self, outs: &mut dyn VideoSink) -> Result<(), Error> {
        let _ = self.decoder.send_eof();
        self.receive_decoded_frames(outs)?;
        self.release_held(outs)?;
        if let Some(mut src) = self.graph.as_mut().and_then(|g| g.get("in")) {
            let _ = src.source().flush();
        }
        self.receive_filtered_frames(outs)?;
        self.encoders.finish(outs)
    }

    /// The next decoded frame: `Ok(false)` when the decoder needs more.
    fn next_frame(&mut self, frame: &mut frame::Video) -> Result<bool, Error> {
        match self.decoder.receive_frame(frame) {
            Ok(()) => Ok(true),
            Err(ffmpeg_next::Error::Eof) => Ok(false),
            Err(ffmpeg_next::Error::Other { errno }) if errno == libc::EAGAIN => Ok(false),
            Err(e) => self.decode_error(e).map(|()| false),
        }
    }

    fn receive_decoded_frames(&mut self, outs: &mut dyn VideoSink) -> Result<(), Error> {
        let mut frame = frame::Video::empty();
        while self.next_frame(&mut frame)? {
            // Strictly increasing pts through the source's repeats and
            // jumps, or libx264 and the muxer complain. (Every frame goes
            // through the timeline, filtered or not, so a skipped stretch
            // is not taken for a leap.)
            let pts = match frame.timestamp().or(frame.pts()) {
                Some(p) => self.timeline.video(p - self.offset),
                None => self.timeline.video_untimed(),
            };
            if self.idle(pts) || pts < self.range.0 || pts >= self.range.1 {
                continue;
            }
            let mut pts = pts;
            let collided = self.timeline.collided();
            // Each frame waits for the next one, so that a frame whose
            // timestamp repeated the one before it can be placed a frame's
            // worth apart, not a tick (players and the CLI map timestamps
            // to frames): half way to the next when there is room, else one
            // frame on with everything after it.
            if let Some(mut held) = self.held.take() {
                if let (true, Some(prev)) = (held.collided, self.released) {
                    let step = self.timeline.step();
                    if pts - prev >= 2 * step {
                        held.pts = prev + (pts - prev) / 2;
                    } else {
                        held.pts = prev + step;
                        let by = (held.pts + step - pts).max(0);
                        self.timeline.delay(by);
                        pts += by;
                    }
                }
                self.filter_frame(held, outs)?;
            }
            self.held = Some(Held {
                frame: std::mem::replace(&mut frame, frame::Video::empty()),
                pts,
                collided,
            });
        }
        Ok(())
    }

    /// Sends the last held frame on (end of input).
    fn release_held(&mut self, outs: &mut dyn VideoSink) -> Result<(), Error> {
        match self.held.take() {
            Some(held) => self.filter_frame(held, outs),
            None => Ok(()),
        }
    }

    /// Decides a frame's keyframe and sends it into the filter graph.
    fn filter_frame(&mut self, held: Held, outs: &mut dyn VideoSink) -> Result<(), Error> {
        let Held { mut frame, pts, .. } = held;
        self.released = Some(pts);
        let by_mode = self.keys.decide(pts, frame.is_key());
        let force = by_mode || self.forced.is_empty();
        if self.forced.len() == self.forced.capacity() {
            self.forced.pop_front();
        }
        self.forced.push_back((pts, force));
        frame.set_pts(Some(pts));
        // Reset the source's picture types, or its keyframes leak into the
        // output (LIBAV-NOTES.md); ours are set per rung below.
        frame.set_kind(picture::Type::None);
        if self.graph.is_none() {
            let told = self.plan.colour;
            self.plan.colour = told.with_frame(&frame);
            let c = &self.plan.colour;
            if (c.mastering, c.light) != (told.mastering, told.light) {
                self.encoders.reopen(c)?;
            }
            // Kept HDR branches need the source's pictures.
            if self.plan.sizes.iter().all(|s| s.2.is_none()) {
                self.tone_map = super::ycctone::YccToneMap::for_source(&self.plan.colour, &frame);
            }
            self.plan.premapped = self.tone_map.is_some();
            self.graph = Some(super::vgraph::build_graph(&self.decoder, &self.plan)?);
        }
        if let Some(map) = self.tone_map.as_mut() {
            frame = map.apply(&frame)?;
        }
        let mut src = self
            .graph
            .as_mut()
            .and_then(|g| g.get("in"))
            .ok_or_else(|| Error::Internal("video graph has no input".into()))?;
        src.source()
            .add(&frame)
            .map_err(media_err("video filter input"))?;
        self.receive_filtered_frames(outs)
    }

    fn receive_filtered_frames(&mut self, outs: &mut dyn VideoSink) -> Result<(), Error> {
        let branches = self.plan.sizes.len().max(1);
        let mut filtered = frame::Video::empty();
        for i in 0..branches {
            let name = format!("out{i}");
            loop {
                let got = match self.graph.as_mut() {
                    // No frame has come yet.
                    None => false,
                    Some(g) => {
                        let mut sink = g
                            .get(&name)
                            .ok_or_else(|| Error::Internal("video graph has no output".into()))?;
                        sink.sink().frame(&mut filtered).is_ok()
                    }
                };
                if !got {
                    break;
                }
                let pts = filtered.pts().unwrap_or(0);
                if i == 0 {
                    let secs = pts as f64 * f64::from(self.tb);
                    self.poster.offer(&filtered, secs);
                    if let Err(e) = self.storyboard.offer(&filtered, secs) {
                        tracing::warn!(error = %e, "storyboard tile skipped");
                    }
                }
                let force = self
                    .forced
                    .iter()
                    .rev()
                    .find(|(p, _)| *p == pts)
                    .is_some_and(|(_, f)| *f);
                let frame = std::mem::replace(&mut filtered, frame::Video::empty());
                self.send_to_encoders(i, frame, force, outs)?;
            }
        }
        self.encoders.poll(outs)?;
        Ok(())
    }

    /// Sends a frame of graph output `branch` to every encoder fed from
    /// it (a copy to each but the last).
    fn send_to_encoders(
        &mut self,
        branch: usize,
        frame: frame::Video,
        force: bool,
        outs: &mut dyn VideoSink,
    ) -> Result<(), Error> {
        let takers: Vec<usize> = (0..self.branch_of.len())
            .filter(|j| self.branch_of[*j] == branch)
            .collect();
        let Some((last, others)) = takers.split_last() else {
            return Ok(());
        };
        for j in others {
            self.encoders.send(*j, frame.clone(), force, outs)?;
        }
        self.encoders.send(*last, frame, force, outs)
    }
}
