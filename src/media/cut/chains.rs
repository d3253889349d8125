//! The cut's two chains: decode → trim (libavfilter) → encode, one for
//! the video (libx264) and one for the audio (AAC, 48 kHz stereo).

use super::Range;
use crate::Error;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::util::channel_layout::ChannelLayout;
use ffmpeg_next::util::format::sample::{Sample, Type as SampleType};
use ffmpeg_next::{codec, decoder, encoder, filter, format, frame, Dictionary, Packet, Rational};

/// One stream's chain: decoder, trim graph, encoder; `F` is its kind of
/// frame (video or audio), made empty by `empty`.
pub(super) struct Chain<F> {
    pub index: usize,
    dec: decoder::Opened,
    graph: filter::Graph,
    pub enc: encoder::Encoder,
    pub enc_tb: Rational,
    empty: fn() -> F,
}

/// The video's chain (libx264).
pub(super) type VideoCut = Chain<frame::Video>;
/// The audio's chain (AAC).
pub(super) type AudioCut = Chain<frame::Audio>;

fn av(what: &'static str) -> impl Fn(ffmpeg_next::Error) -> Error {
    move |e| Error::from_av(e, what)
}

/// A graph from `source` (a buffer or abuffer with `args`) through `spec`.
fn graph(source: &str, args: &str, spec: &str) -> Result<filter::Graph, Error> {
    let mut g = filter::Graph::new();
    let sink = if source == "buffer" {
        "buffersink"
    } else {
        "abuffersink"
    };
    let src = filter::find(source).ok_or_else(|| Error::Media("no buffer filter".into()))?;
    let snk = filter::find(sink).ok_or_else(|| Error::Media("no buffersink".into()))?;
    g.add(&src, "in", args).map_err(av("clip filter"))?;
    g.add(&snk, "out", "").map_err(av("clip filter"))?;
    g.output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(spec))
        .map_err(av("clip filter"))?;
    g.validate().map_err(av("clip filter"))?;
    Ok(g)
}

/// What a video chain is made from: the source stream's parameters.
#[derive(Clone)]
pub(super) struct VideoIn {
    pub index: usize,
    pub par: codec::Parameters,
    pub tb: Rational,
    pub rate: Rational,
    /// Display rotation, clockwise degrees: the cut is turned upright
    /// (MPEG-TS has no place for a display matrix).
    pub rotation: u32,
}

impl VideoIn {
    pub(super) fn of(ist: &format::stream::Stream) -> VideoIn {
        let fr = ist.avg_frame_rate();
        VideoIn {
            index: ist.index(),
            par: ist.parameters(),
            tb: ist.time_base(),
            rate: if fr.numerator() > 0 {
                fr
            } else {
                Rational(30, 1)
            },
            rotation: crate::media::input::rotation_of(ist),
        }
    }
}

/// The frames a video chain keeps, `[start, end)`, and how they are
/// moved (`shift` taken off); timestamps in the stream's time base. Without
/// B-frames each packet is decoded when it is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Trim {
    pub start: i64,
    pub end: i64,
    pub shift: i64,
    pub b_frames: bool,
}

impl Chain<frame::Video> {
    pub(super) fn new(vin: &VideoIn, t: Trim) -> Result<VideoCut, Error> {
        let dec = codec::context::Context::from_parameters(vin.par.clone())
            .and_then(|c| c.decoder().video())
            .map_err(av("clip video decoder"))?;
        let tb = vin.tb;
        let sar = dec.aspect_ratio();
        let sar = if sar.numerator() > 0 {
            sar
        } else {
            Rational(1, 1)
        };
        let args = format!(
            "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
            dec.width(),
            dec.height(),
            ffmpeg_next::ffi::AVPixelFormat::from(dec.format()) as i32,
            tb.numerator(),
            tb.denominator(),
            sar.numerator(),
            sar.denominator()
        );
        let spec = format!(
            "trim=start_pts={}:end_pts={},setpts=PTS-({}),{}format=yuv420p",
            t.start,
            t.end,
            t.shift,
            crate::media::vgraph::rotation_filters(vin.rotation)
        );
        let graph = graph("buffer", &args, &spec)?;
        let codec = encoder::find_by_name("libx264")
            .ok_or_else(|| Error::Media("the libx264 encoder is not available".into()))?;
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(av("clip video encoder"))?;
        let (w, h) = match vin.rotation {
            90 | 270 => (dec.height(), dec.width()),
            _ => (dec.width(), dec.height()),
        };
        enc.set_width(w);
        enc.set_height(h);
        enc.set_format(Pixel::YUV420P);
        enc.set_time_base(tb);
        enc.set_aspect_ratio(sar);
        // The source's colour, said again (the pipeline converts it).
        enc.set_colorspace(dec.color_space());
        enc.set_color_range(dec.color_range());
        enc.set_color_primaries(dec.color_primaries());
        enc.set_color_transfer_characteristic(dec.color_transfer_characteristic());
        enc.set_frame_rate(Some(vin.rate));
        if !t.b_frames {
            enc.set_max_b_frames(0);
        }
        let mut opts = Dictionary::new();
        opts.set("preset", "veryfast");
        opts.set("crf", "16");
        let enc = enc
            .open_as_with(codec, opts)
            .map_err(av("opening libx264"))?;
        Ok(Chain {
            index: vin.index,
            dec: dec.0,
            graph,
            enc: enc.0 .0,
            enc_tb: tb,
            empty: frame::Video::empty,
        })
    }
}

/// Every packet an encoder has ready.
fn packets(mut receive: impl FnMut(&mut Packet) -> Result<(), ffmpeg_next::Error>) -> Vec<Packet> {
    let mut out = Vec::new();
    loop {
        let mut p = Packet::empty();
        if receive(&mut p).is_err() {
            return out;
        }
        out.push(p);
    }
}

impl Chain<frame::Audio> {
    pub(super) fn new(ist: &format::stream::Stream, r: Range) -> Result<AudioCut, Error> {
        let dec = codec::context::Context::from_parameters(ist.parameters())
            .and_then(|c| c.decoder().audio())
            .map_err(av("clip audio decoder"))?;
        let codec = encoder::find_by_name("aac")
            .ok_or_else(|| Error::Media("the aac encoder is not available".into()))?;
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(av("clip audio encoder"))?;
        enc.set_rate(48_000);
        enc.set_channel_layout(ChannelLayout::STEREO);
        enc.set_channels(2);
        enc.set_format(Sample::F32(SampleType::Planar));
        enc.set_bit_rate(192_000);
        enc.set_time_base(Rational(1, 48_000));
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
        let enc = enc.open_as(codec).map_err(av("opening aac"))?;
        let args = crate::media::audio::abuffer_args(&dec, ist.time_base());
        let spec = format!(
            "atrim=start={:.6}:end={:.6},asetpts=PTS-STARTPTS,aresample=48000,\
             aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo",
            r.start, r.end
        );
        let mut graph = graph("abuffer", &args, &spec)?;
        if let Some(mut out) = graph.get("out") {
            out.sink().set_frame_size(enc.frame_size().max(1));
        }
        Ok(Chain {
            index: ist.index(),
            dec: dec.0,
            graph,
            enc: enc.0 .0,
            enc_tb: Rational(1, 48_000),
            empty: frame::Audio::empty,
        })
    }
}

impl<F: std::ops::DerefMut<Target = frame::Frame>> Chain<F> {
    pub(super) fn send(&mut self, p: &Packet) -> Result<Vec<Packet>, Error> {
        // A damaged packet is skipped, as a player would.
        let _ = self.dec.send_packet(p);
        self.pump()
    }

    pub(super) fn finish(&mut self) -> Result<Vec<Packet>, Error> {
        let _ = self.dec.send_eof();
        let mut out = self.pump()?;
        if let Some(mut src) = self.graph.get("in") {
            src.source().flush().map_err(av("clip filter"))?;
        }
        out.extend(self.filtered()?);
        self.enc.send_eof().map_err(av("clip encoder"))?;
        out.extend(packets(|p| self.enc.receive_packet(p)));
        Ok(out)
    }

    /// Decoded frames into the graph; what it lets through, encoded.
    fn pump(&mut self) -> Result<Vec<Packet>, Error> {
        let mut f = (self.empty)();
        while self.dec.receive_frame(&mut f).is_ok() {
            let ts = f.timestamp().or(f.pts());
            f.set_pts(ts);
            if let Some(mut src) = self.graph.get("in") {
                src.source().add(&f).map_err(av("clip filter"))?;
            }
        }
        self.filtered()
    }

    fn filtered(&mut self) -> Result<Vec<Packet>, Error> {
        let mut out = Vec::new();
        let mut f = (self.empty)();
        while let Some(mut sink) = self.graph.get("out") {
            if sink.sink().frame(&mut f).is_err() {
                break;
            }
            self.enc.send_frame(&f).map_err(av("clip encoder"))?;
            out.extend(packets(|p| self.enc.receive_packet(p)));
        }
        Ok(out)
    }
}
