//! Exact clips (issue 29, item 3): the frames and samples of `[start,
//! end)` of a stored video, cut frame-accurately into MPEG-TS, streamed
//! out chunk by chunk as it is muxed. It becomes a new video's upload: the
//! usual pipeline then makes its ladder, posters, storyboard and download,
//! and plays it while it is being cut.
//!
//! A smart cut where the source allows ([`plan`]: 8-bit 4:2:0 H.264 in
//! an mp4-like container, IDR frames inside the range): the frames before the first
//! IDR and from the last one are decoded from the keyframe before them,
//! trimmed with libavfilter's `trim` and encoded again (libx264 CRF 16);
//! the packets between are copied as they are (made Annex B, their
//! parameter sets said again at each IDR, which MPEG-TS allows to change
//! there). Otherwise (and for a rotated source, turned upright: MPEG-TS
//! has no display matrix), all of the range is encoded so. The audio is always
//! encoded again (AAC), trimmed with `atrim`. The pipeline never copies a
//! clip's source into a rung (`jobs::pipeline`): its parameter sets may
//! change mid-stream, and CRF 16 is no rung's rate.

mod annexb;
mod chains;
mod plan;
mod video;

use crate::Error;
use bytes::Bytes;
use chains::{AudioCut, VideoIn};
use ffmpeg_next::format::context::{Output, StreamIo};
use ffmpeg_next::Rescale;
use ffmpeg_next::{format, media, Dictionary, Packet, Rational};
use std::io::{Read, Seek, Write};

/// A clip's range, seconds of the video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Range {
    pub start: f64,
    pub end: f64,
}

/// Where the cut goes: a bounded channel to the new video's ingest (a
/// full channel makes the cutter wait; a closed one stops it).
pub(crate) struct ChunkSink(pub tokio::sync::mpsc::Sender<Bytes>);

impl Write for ChunkSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(b))
            .map_err(|_| std::io::Error::other("the clip's reader is gone"))?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Cuts `range` of the media `input` into `out` (blocking).
pub(crate) fn cut<R: Read + Seek + Send + 'static>(
    input: R,
    range: Range,
    out: ChunkSink,
) -> Result<(), Error> {
    let av = |what: &'static str| move |e| Error::from_av(e, what);
    let io = StreamIo::from_read_seek_with_capacity(input, 64 * 1024)
        .map_err(|e| Error::Media(format!("custom AVIO: {e}")))?;
    let mut opts = Dictionary::new();
    opts.set("format_whitelist", super::input::ALLOWED_DEMUXERS);
    opts.set("protocol_whitelist", "none");
    let mut ictx = format::input_from_stream_with_interrupt(io, None, Some(opts), || false)
        .map_err(av("opening the clip's source"))?;
    let v = ictx
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| Error::Media("the clip's source has no video".into()))?;
    let start_time = match v.start_time() {
        i64::MIN => 0.0,
        t => t as f64 * f64::from(v.time_base()),
    };
    let shifted = Range {
        start: range.start + start_time,
        end: range.end + start_time,
    };
    let vin = VideoIn::of(&v);
    let mut audio = match ictx.streams().best(media::Type::Audio) {
        Some(a) => Some(AudioCut::new(&a, shifted)?),
        None => None,
    };
    let ticks = |secs: f64| (secs / f64::from(vin.tb)).round() as i64;
    let (start, end) = (ticks(shifted.start), ticks(shifted.end));
    let seek_to = (shifted.start * 1e6) as i64;
    let plan = smart(&mut ictx, &vin, (start, end), seek_to)?;
    tracing::debug!(copied = ?plan.as_ref().map(|p| (p.first.pts, p.last.pts)), "clip plan");
    ictx.seek(seek_to, ..seek_to)
        .map_err(av("seeking to the clip's start"))?;
    let mut video = video::Video::new(vin, start, end, plan)?;
    let octx = muxer(out, &video, audio.as_ref())?;
    let mut m = Mux { octx };
    m.run(&mut ictx, &mut video, audio.as_mut(), shifted.end)
}

/// What the cut may copy: read from `seek_to` to past `end` (the first
/// pass), when the video is H.264 as mp4 stores it.
fn smart(
    ictx: &mut format::context::Input,
    vin: &VideoIn,
    (start, end): (i64, i64),
    seek_to: i64,
) -> Result<Option<plan::Plan>, Error> {
    // The copied frames must decode as the encoded ones do (8-bit 4:2:0):
    // the pipeline's filters are built for the first frames' format.
    let format = ffmpeg_next::codec::context::Context::from_parameters(vin.par.clone())
        .and_then(|c| c.decoder().video())
        .map(|d| d.format());
    let avcc = match (vin.par.id(), format) {
        (
            ffmpeg_next::codec::Id::H264,
            Ok(ffmpeg_next::format::Pixel::YUV420P | ffmpeg_next::format::Pixel::YUVJ420P),
        ) => annexb::AvcC::parse(&crate::ffi::par_extradata(&vin.par)),
        _ => None,
    };
    let Some(avcc) = avcc.filter(|_| vin.rotation == 0) else {
        return Ok(None);
    };
    ictx.seek(seek_to, ..seek_to)
        .map_err(|e| Error::from_av(e, "seeking to the clip's start"))?;
    let second = 1i64.rescale(ffmpeg_next::Rational(1, 1), vin.tb);
    let seen = plan::scan(ictx, vin.index, &avcc, end, second);
    Ok(seen.and_then(|seen| plan::plan(&seen, start, end, avcc)))
}

/// For the fuzz target `video_packets` (in `fuzzing`): the `avcC`
/// parser and the packet rewriting over untrusted bytes.
pub(crate) fn fuzz_annex_b(extra: &[u8], packet: &[u8]) {
    if let Some(c) = annexb::AvcC::parse(extra) {
        let _ = (c.idr(packet), c.annex_b(packet));
    }
}

/// The MPEG-TS muxer over the sink: stream 0 the video, 1 the audio.
fn muxer(out: ChunkSink, video: &video::Video, audio: Option<&AudioCut>) -> Result<Output, Error> {
    let av = |what: &'static str| move |e| Error::from_av(e, what);
    let io = StreamIo::from_write(out).map_err(|e| Error::Media(format!("custom AVIO: {e}")))?;
    let mut octx = format::output_to_stream(io, None, Some("mpegts")).map_err(av("clip muxer"))?;
    let mut ost = octx.add_stream(video.codec()).map_err(av("clip muxer"))?;
    ost.set_parameters(video.parameters().clone());
    if let Some(a) = audio {
        let mut ost = octx.add_stream(a.enc.codec()).map_err(av("clip muxer"))?;
        ost.set_parameters(&a.enc);
    }
    octx.write_header().map_err(av("clip muxer"))?;
    Ok(octx)
}

struct Mux {
    octx: Output,
}

impl Mux {
    /// Reads packets until both streams are past `end` (with a second of
    /// slack for reordering), then drains every stage.
    fn run(
        &mut self,
        ictx: &mut format::context::Input,
        video: &mut video::Video,
        mut audio: Option<&mut AudioCut>,
        end: f64,
    ) -> Result<(), Error> {
        let (mut video_done, mut audio_done) = (false, audio.is_none());
        let vtb = video.time_base();
        // The audio moves with the video (see `video`).
        let delay = video.delay();
        let later = |a: &AudioCut| delay.rescale(vtb, a.enc_tb);
        for (stream, packet) in ictx.packets() {
            let secs = packet
                .pts()
                .map(|p| p as f64 * f64::from(stream.time_base()));
            let past = secs.is_some_and(|s| s > end + 1.0);
            if stream.index() == video.index() {
                video_done |= past;
                for p in video.send(&packet)? {
                    self.write(p, 0, vtb, 0)?;
                }
            } else if let Some(a) = audio.as_deref_mut().filter(|a| a.index == stream.index()) {
                audio_done |= past;
                let (enc_tb, by) = (a.enc_tb, later(a));
                for p in a.send(&packet)? {
                    self.write(p, 1, enc_tb, by)?;
                }
            }
            if video_done && audio_done {
                break;
            }
        }
        for p in video.finish()? {
            self.write(p, 0, vtb, 0)?;
        }
        if let Some(a) = audio {
            let (enc_tb, by) = (a.enc_tb, later(a));
            for p in a.finish()? {
                self.write(p, 1, enc_tb, by)?;
            }
        }
        self.octx
            .write_trailer()
            .map_err(|e| Error::from_av(e, "clip muxer"))
    }

    /// Writes `p` (time base `tb`) as stream `index`, `by` later.
    fn write(&mut self, mut p: Packet, index: usize, tb: Rational, by: i64) -> Result<(), Error> {
        p.set_pts(p.pts().map(|t| t + by));
        p.set_dts(p.dts().map(|t| t + by));
        p.set_stream(index);
        let ost_tb = self.octx.stream(index).map_or(tb, |s| s.time_base());
        p.rescale_ts(tb, ost_tb);
        p.write_interleaved(&mut self.octx)
            .map_err(|e| Error::from_av(e, "clip muxer"))
    }
}
