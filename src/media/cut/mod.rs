//! Exact clips (issue 29, item 3): the frames and samples of `[start,
//! end)` of a stored video, cut frame-accurately (decoded from the
//! keyframe before `start`, trimmed with libavfilter's `trim`/`atrim`)
//! and re-encoded at a high quality (libx264 CRF 16, AAC) into MPEG-TS,
//! streamed out chunk by chunk as it is muxed. It becomes a new video's
//! upload: the usual pipeline then makes its ladder, posters, storyboard
//! and download, and plays it while it is being cut.

mod chains;

use crate::Error;
use bytes::Bytes;
use chains::{AudioCut, VideoCut};
use ffmpeg_next::format::context::{Output, StreamIo};
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
    let mut video = VideoCut::new(&v, shifted)?;
    let mut audio = match ictx.streams().best(media::Type::Audio) {
        Some(a) => Some(AudioCut::new(&a, shifted)?),
        None => None,
    };
    let seek_to = (shifted.start * 1e6) as i64;
    ictx.seek(seek_to, ..seek_to)
        .map_err(av("seeking to the clip's start"))?;
    let octx = muxer(out, &video, audio.as_ref())?;
    let mut m = Mux { octx };
    m.run(&mut ictx, &mut video, audio.as_mut(), shifted.end)
}

/// The MPEG-TS muxer over the sink: stream 0 the video, 1 the audio.
fn muxer(out: ChunkSink, video: &VideoCut, audio: Option<&AudioCut>) -> Result<Output, Error> {
    let av = |what: &'static str| move |e| Error::from_av(e, what);
    let io = StreamIo::from_write(out).map_err(|e| Error::Media(format!("custom AVIO: {e}")))?;
    let mut octx = format::output_to_stream(io, None, Some("mpegts")).map_err(av("clip muxer"))?;
    let mut ost = octx
        .add_stream(video.enc.codec())
        .map_err(av("clip muxer"))?;
    ost.set_parameters(&video.enc);
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
        video: &mut VideoCut,
        mut audio: Option<&mut AudioCut>,
        end: f64,
    ) -> Result<(), Error> {
        let (mut video_done, mut audio_done) = (false, audio.is_none());
        for (stream, packet) in ictx.packets() {
            let secs = packet
                .pts()
                .map(|p| p as f64 * f64::from(stream.time_base()));
            let past = secs.is_some_and(|s| s > end + 1.0);
            if stream.index() == video.index {
                video_done |= past;
                let enc_tb = video.enc_tb;
                for p in video.send(&packet)? {
                    self.write(p, 0, enc_tb)?;
                }
            } else if let Some(a) = audio.as_deref_mut().filter(|a| a.index == stream.index()) {
                audio_done |= past;
                let enc_tb = a.enc_tb;
                for p in a.send(&packet)? {
                    self.write(p, 1, enc_tb)?;
                }
            }
            if video_done && audio_done {
                break;
            }
        }
        let enc_tb = video.enc_tb;
        for p in video.finish()? {
            self.write(p, 0, enc_tb)?;
        }
        if let Some(a) = audio {
            let enc_tb = a.enc_tb;
            for p in a.finish()? {
                self.write(p, 1, enc_tb)?;
            }
        }
        self.octx
            .write_trailer()
            .map_err(|e| Error::from_av(e, "clip muxer"))
    }

    fn write(&mut self, mut p: Packet, index: usize, tb: Rational) -> Result<(), Error> {
        p.set_stream(index);
        let ost_tb = self.octx.stream(index).map_or(tb, |s| s.time_base());
        p.rescale_ts(tb, ost_tb);
        p.write_interleaved(&mut self.octx)
            .map_err(|e| Error::from_av(e, "clip muxer"))
    }
}
