//! The audio chain: decoder → `aresample`/`aformat` (any rate and layout to
//! 48 kHz stereo float planar, 1024-sample frames) → AAC-LC, encoded once
//! and written to every rung's muxer.
//!
//! Any channel count is downmixed: a layout the decoder cannot name (more
//! than 8 channels, say) is taken as the first N standard positions. When
//! the decoded format changes mid-stream (a spliced file), the filter graph
//! is built anew for it. Timestamps go through [`Timeline`].
//!
//! Audio whose timestamps jump back is either a splice (the video jumped
//! back with it: both go on continuously) or audio sent again over the
//! same stretch (the video goes on: the repeat is trimmed, as the ffmpeg
//! CLI's output is). The two look alike until the video shows which, so
//! the frames after such a jump are held ([`Held`], bounded) until the
//! video jumps too, or goes on [`DECIDE_SECS`] without.

use super::media_err;
use super::outputs::RungOutput;
use super::Settings;
use crate::hls::timeline::Timeline;
use crate::Error;
use ffmpeg_next::format::sample::Type as SampleType;
use ffmpeg_next::format::Sample;
use ffmpeg_next::{
    codec, decoder, encoder, filter, format, frame, ChannelLayout, Packet, Rational,
};

/// Output sample rate (HLS authoring spec: 48 kHz is universal).
pub(crate) const OUT_RATE: i32 = 48_000;

/// What a filter graph's input is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InputFormat {
    rate: u32,
    format: Sample,
    channels: u16,
    /// A channel layout with `channels` positions.
    layout: u64,
}

impl InputFormat {
    fn new(rate: u32, format: Sample, channels: u16, layout: ChannelLayout) -> Self {
        let layout = match layout.bits() {
            b if b != 0 && b.count_ones() == u32::from(channels) => b,
            _ => match ChannelLayout::default(i32::from(channels)).bits() {
                b if b != 0 && b.count_ones() == u32::from(channels) => b,
                // No standard layout of that many channels: the first N
                // positions (libswresample downmixes what it can place).
                _ => (1u64 << channels.min(63)) - 1,
            },
        };
        InputFormat {
            rate,
            format,
            channels,
            layout,
        }
    }

    fn of_decoder(d: &decoder::Audio) -> Self {
        InputFormat::new(d.rate(), d.format(), d.channels(), d.channel_layout())
    }

    fn of_frame(f: &frame::Audio) -> Self {
        InputFormat::new(f.rate(), f.format(), f.channels(), f.channel_layout())
    }
}

/// One decoded audio stream and the AAC encoder fed from it.
pub(crate) struct AudioChain {
    decoder: decoder::Audio,
    graph: filter::Graph,
    /// What `graph` takes.
    input: InputFormat,
    timeline: Timeline,
    encoder: encoder::Audio,
    /// Input stream time base (decoder output, filter input).
    in_tb: Rational,
    /// Encoder time base: 1/48000 (what `aresample` outputs).
    enc_tb: Rational,
    /// Subtracted from every input timestamp (same instant as the video's).
    offset: i64,
    /// Packets the decoder refused.
    pub decode_errors: u64,
    /// Longest output we make, seconds (`--max-duration-secs`).
    max_secs: f64,
    /// Frames after a jump back, while it is not known what it was.
    held: Option<Held>,
    /// Audio sent again is being trimmed until it is new again.
    trimming: bool,
}

/// Where the video is, for its audio: how far the rungs have got and how
/// many times the video's timestamps jumped.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct VideoClock {
    pub secs: f64,
    pub jumps: u32,
}

/// The video going on this far past an audio jump back without jumping
/// itself makes the jump audio sent again.
const DECIDE_SECS: f64 = 1.0;
/// At most this much audio (seconds, bytes) is held meanwhile.
const MAX_HELD_SECS: f64 = 5.0;
const MAX_HELD_BYTES: usize = 16 << 20;

/// Decoded frames held after an audio jump back: each with its source
/// timestamp (offset applied) and duration, in the input time base.
struct Held {
    frames: Vec<(frame::Audio, Option<i64>, i64)>,
    /// The video's clock when the audio jumped.
    at: VideoClock,
    secs: f64,
    bytes: usize,
}

impl Held {
    /// True when the video says what the jump was, or too much is held.
    fn decided(&self, now: VideoClock, at_end: bool) -> bool {
        now.jumps != self.at.jumps
            || at_end
            || now.secs > self.at.secs + DECIDE_SECS
            || self.secs > MAX_HELD_SECS
            || self.bytes > MAX_HELD_BYTES
    }
}

/// How far audio may run ahead of the video before it is dropped: a jump
/// in audio timestamps would otherwise make `aresample=async` inject that
/// much silence (memory and a bogus last segment).
pub(crate) const MAX_AUDIO_LEAD_SECS: f64 = 30.0;

impl AudioChain {
    /// Builds the chain for input stream `ist`; `offset` is in its time base.
    pub(crate) fn new(
        ist: &format::stream::Stream,
        offset: i64,
        settings: &Settings,
    ) -> Result<Self, Error> {
        let in_tb = ist.time_base();
        let decoder = codec::context::Context::from_parameters(ist.parameters())
            .and_then(|c| c.decoder().audio())
            .map_err(|e| Error::Unprocessable(format!("audio decoder: {e}")))?;
        let codec = encoder::find_by_name("aac")
            .ok_or_else(|| Error::Media("the aac encoder is not available".into()))?;
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(media_err("audio encoder"))?;
        enc.set_rate(OUT_RATE);
        enc.set_channel_layout(ChannelLayout::STEREO);
        enc.set_channels(2);
        enc.set_format(Sample::F32(SampleType::Planar));
        enc.set_bit_rate(settings.audio_bps);
        let enc_tb = Rational(1, OUT_RATE);
        enc.set_time_base(enc_tb);
        // The hls muxer wants global headers (LIBAV-NOTES.md).
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
        let encoder = enc.open_as(codec).map_err(media_err("opening aac"))?;
        let input = InputFormat::of_decoder(&decoder);
        let graph = build_graph(input, in_tb, encoder.frame_size())?;
        let per_sec = f64::from(in_tb.denominator()) / f64::from(in_tb.numerator().max(1));
        Ok(AudioChain {
            decoder,
            graph,
            input,
            timeline: Timeline::new(per_sec, 1),
            encoder,
            in_tb,
            enc_tb,
            offset,
            decode_errors: 0,
            max_secs: settings.max_duration_secs as f64,
            held: None,
            trimming: false,
        })
    }

    /// The opened AAC encoder (for the muxers' stream parameters).
    pub(crate) fn encoder(&self) -> &encoder::Audio {
        &self.encoder
    }

    /// Its time base (1/48000).
    pub(crate) fn time_base(&self) -> Rational {
        self.enc_tb
    }

    /// Decodes one packet and pushes what comes out through to the muxer;
    /// `video` is where the video is.
    pub(crate) fn send_packet(
        &mut self,
        packet: &Packet,
        outs: &mut [RungOutput],
        video: VideoClock,
    ) -> Result<(), Error> {
        let limit = (video.secs + MAX_AUDIO_LEAD_SECS).min(self.max_secs);
        self.settle(video, outs, limit, false)?;
        if self.decoder.send_packet(packet).is_err() {
            self.decode_errors += 1;
            return Ok(());
        }
        self.receive_decoded_frames(outs, limit, video)
    }

    /// Drains everything at end of input (`video`: where the video ended).
    pub(crate) fn finish(
        &mut self,
        outs: &mut [RungOutput],
        video: VideoClock,
    ) -> Result<(), Error> {
        let _ = self.decoder.send_eof();
        self.receive_decoded_frames(outs, self.max_secs, video)?;
        self.settle(video, outs, self.max_secs, true)?;
        if let Some(mut src) = self.graph.get("in") {
            let _ = src.source().flush();
        }
        self.receive_filtered_frames(outs)?;
        self.encoder.send_eof().map_err(media_err("aac eof"))?;
        self.receive_encoded_packets(outs)
    }

    /// Frames starting after `limit_secs` are dropped; frames after a
    /// jump back are held until [`AudioChain::settle`] knows what it was.
    fn receive_decoded_frames(
        &mut self,
        outs: &mut [RungOutput],
        limit_secs: f64,
        video: VideoClock,
    ) -> Result<(), Error> {
        let mut frame = frame::Audio::empty();
        while self.decoder.receive_frame(&mut frame).is_ok() {
            let dur = (frame.samples() as f64
                / f64::from(frame.rate().max(1))
                / f64::from(self.in_tb)) as i64;
            let src = frame.timestamp().or(frame.pts()).map(|p| p - self.offset);
            let jumps = !self.trimming && src.is_some_and(|p| self.timeline.audio_jumps_back(p));
            if self.held.is_some() || jumps {
                let secs = dur as f64 * f64::from(self.in_tb);
                let bytes = frame.samples() * usize::from(frame.channels()) * 8;
                let h = self.held.get_or_insert_with(|| Held {
                    frames: Vec::new(),
                    at: video,
                    secs: 0.0,
                    bytes: 0,
                });
                h.secs += secs;
                h.bytes += bytes;
                let taken = std::mem::replace(&mut frame, frame::Audio::empty());
                h.frames.push((taken, src, dur));
            } else {
                self.place(&mut frame, src, dur, limit_secs, outs)?;
            }
            self.settle(video, outs, limit_secs, false)?;
        }
        Ok(())
    }

    /// Lets the held frames go once the video says what their jump was: a
    /// splice goes on continuously, audio sent again is trimmed.
    fn settle(
        &mut self,
        video: VideoClock,
        outs: &mut [RungOutput],
        limit_secs: f64,
        at_end: bool,
    ) -> Result<(), Error> {
        if !self.held.as_ref().is_some_and(|h| h.decided(video, at_end)) {
            return Ok(());
        }
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        self.trimming = video.jumps == held.at.jumps;
        for (mut f, src, dur) in held.frames {
            self.place(&mut f, src, dur, limit_secs, outs)?;
        }
        Ok(())
    }

    /// Stamps a frame through the timeline and sends it on.
    fn place(
        &mut self,
        frame: &mut frame::Audio,
        src: Option<i64>,
        dur: i64,
        limit_secs: f64,
        outs: &mut [RungOutput],
    ) -> Result<(), Error> {
        let pts = match src {
            Some(p) if self.trimming => match self.timeline.audio_trimmed(p, dur) {
                Some(t) => {
                    self.trimming = false;
                    t
                }
                None => return Ok(()),
            },
            Some(p) => self.timeline.audio(p, dur),
            None => self.timeline.audio_untimed(dur),
        };
        // Audio from before the first video frame is dropped whole; a
        // frame straddling 0 is kept (aresample trims nothing; the
        // muxer shifts both streams alike if anything is negative).
        if pts + dur <= 0 || pts as f64 * f64::from(self.in_tb) > limit_secs {
            return Ok(());
        }
        frame.set_pts(Some(pts));
        let now = InputFormat::of_frame(frame);
        if now != self.input {
            // A new format mid-stream: a graph of its own (what the old
            // one still held, under a frame, is dropped: a gap, never an
            // overlap).
            self.graph = build_graph(now, self.in_tb, self.encoder.frame_size())?;
            self.input = now;
        }
        self.add_to_graph(frame, outs)
    }

    fn add_to_graph(&mut self, frame: &frame::Audio, outs: &mut [RungOutput]) -> Result<(), Error> {
        let mut src = self
            .graph
            .get("in")
            .ok_or_else(|| Error::Internal("audio graph has no input".into()))?;
        src.source()
            .add(frame)
            .map_err(media_err("audio filter input"))?;
        self.receive_filtered_frames(outs)
    }

    fn receive_filtered_frames(&mut self, outs: &mut [RungOutput]) -> Result<(), Error> {
        let mut filtered = frame::Audio::empty();
        while self.pull_filtered(&mut filtered)? {
            self.encoder
                .send_frame(&filtered)
                .map_err(media_err("aac encoder"))?;
            // Drain after every frame: a send with a packet pending is EAGAIN.
            self.receive_encoded_packets(outs)?;
        }
        Ok(())
    }

    /// Takes one frame out of the graph; `false` when none is ready.
    fn pull_filtered(&mut self, into: &mut frame::Audio) -> Result<bool, Error> {
        let mut sink = self
            .graph
            .get("out")
            .ok_or_else(|| Error::Internal("audio graph has no output".into()))?;
        let got = sink.sink().frame(into).is_ok();
        Ok(got)
    }

    fn receive_encoded_packets(&mut self, outs: &mut [RungOutput]) -> Result<(), Error> {
        let mut packet = Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            for out in outs.iter_mut() {
                out.write_audio(&packet, self.enc_tb)?;
            }
        }
        Ok(())
    }
}

/// `abuffer`'s arguments for what decoder `d` gives (a cut's graph).
pub(super) fn abuffer_args(d: &decoder::Audio, tb: Rational) -> String {
    args_of(InputFormat::of_decoder(d), tb)
}

fn args_of(input: InputFormat, tb: Rational) -> String {
    format!(
        "time_base={}/{}:sample_rate={}:sample_fmt={}:channel_layout=0x{:x}",
        tb.numerator(),
        tb.denominator(),
        input.rate,
        input.format.name(),
        input.layout
    )
}

fn build_graph(input: InputFormat, tb: Rational, frame_size: u32) -> Result<filter::Graph, Error> {
    let mut graph = filter::Graph::new();
    let args = args_of(input, tb);
    let abuffer = filter::find("abuffer").ok_or_else(|| Error::Media("no abuffer".into()))?;
    let sink = filter::find("abuffersink").ok_or_else(|| Error::Media("no abuffersink".into()))?;
    graph
        .add(&abuffer, "in", &args)
        .map_err(media_err("audio filter source"))?;
    graph
        .add(&sink, "out", "")
        .map_err(media_err("audio filter sink"))?;
    // async=1: stretch/pad where timestamps jump, so audio stays in sync
    // with video across gaps (aresample's `async`, min_hard_comp 0.1 s).
    let spec = format!(
        "aresample={OUT_RATE}:async=1,aformat=sample_fmts=fltp:sample_rates={OUT_RATE}:channel_layouts=stereo"
    );
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(&spec))
        .map_err(media_err("audio filter graph"))?;
    graph.validate().map_err(media_err("audio filter graph"))?;
    if let Some(mut out) = graph.get("out") {
        // AAC wants fixed 1024-sample frames (transcode-audio.rs).
        out.sink().set_frame_size(frame_size.max(1));
    }
    Ok(graph)
}
