//! Images of a video (issue 29's image API): frames decoded in-process
//! from stored segments (a TS segment, an fMP4 init section with a
//! segment, or the poster JPEG), fitted to the asked size with
//! libavfilter, and encoded as JPEG, PNG or WebP, or as an animated GIF or
//! WebP. The caller picks the segments (`http::images`); everything here
//! is blocking libav work for a dedicated thread.

mod animate;
mod fit;
mod source;

use crate::Error;
use ffmpeg_next::format::context::StreamIo;
use ffmpeg_next::{codec, format, frame, media, Dictionary};
use std::io::Cursor;

pub(crate) use animate::Animation;
pub(crate) use fit::{Fit, FitMode};
pub(crate) use source::{pieces, Piece};

/// What an image is encoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Format {
    Jpeg,
    Png,
    Webp,
    Gif,
    AnimatedWebp,
}

impl Format {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp | Format::AnimatedWebp => "image/webp",
            Format::Gif => "image/gif",
        }
    }
}

/// The demuxers stored media is read with (nothing that opens another
/// resource; no protocol at all).
const DEMUXERS: &str = "mpegts,mov,mp4,m4a,3gp,3g2,mj2,jpeg_pipe";

/// Decodes the video frames of `bytes` in order, each with its time from
/// the first (seconds); `each` returns `false` to stop.
pub(crate) fn decode(
    bytes: Vec<u8>,
    mut each: impl FnMut(&frame::Video, f64) -> Result<bool, Error>,
) -> Result<(), Error> {
    let av = |what: &'static str| move |e| Error::from_av(e, what);
    let io = StreamIo::from_read_seek_with_capacity(Cursor::new(bytes), 64 * 1024)
        .map_err(|e| Error::Media(format!("custom AVIO: {e}")))?;
    let mut opts = Dictionary::new();
    opts.set("format_whitelist", DEMUXERS);
    opts.set("protocol_whitelist", "none");
    let mut ictx = format::input_from_stream_with_interrupt(io, None, Some(opts), || false)
        .map_err(av("opening a stored segment"))?;
    let ist = ictx
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| Error::Media("a stored segment without video".into()))?;
    let (index, tb) = (ist.index(), f64::from(ist.time_base()));
    let ctx = codec::context::Context::from_parameters(ist.parameters()).map_err(av("decoder"))?;
    let mut dec = ctx.decoder().video().map_err(av("decoder"))?;
    let mut clock = Clock { first: None, tb };
    for (stream, packet) in ictx.packets() {
        if stream.index() != index {
            continue;
        }
        // A damaged packet is skipped, as a player would.
        let _ = dec.send_packet(&packet);
        if !drain(&mut dec, &mut clock, &mut each)? {
            return Ok(());
        }
    }
    let _ = dec.send_eof();
    drain(&mut dec, &mut clock, &mut each).map(drop)
}

/// Frame times from the first frame of the segment.
struct Clock {
    first: Option<i64>,
    tb: f64,
}

fn drain(
    dec: &mut ffmpeg_next::decoder::Video,
    clock: &mut Clock,
    each: &mut impl FnMut(&frame::Video, f64) -> Result<bool, Error>,
) -> Result<bool, Error> {
    let mut f = frame::Video::empty();
    while dec.receive_frame(&mut f).is_ok() {
        let ts = f.timestamp().or(f.pts()).unwrap_or(0);
        let first = *clock.first.get_or_insert(ts);
        if !each(&f, (ts - first) as f64 * clock.tb)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `f` fitted and encoded as one image.
pub(crate) fn still(f: &frame::Video, fit: &Fit, format: Format) -> Result<Vec<u8>, Error> {
    let (mut graph, size) = fit::graph(f, fit, fit::pixel_for(format), None)?;
    let out = fit::run(&mut graph, f)?;
    fit::encode_one(&out, size, format)
}

/// The frame of the video at `t` seconds (the last one at or before it)
/// from the segment that covers it, fitted and encoded.
pub(crate) fn thumbnail(
    pieces: Vec<Piece>,
    t: f64,
    fit: &Fit,
    format: Format,
) -> Result<Vec<u8>, Error> {
    let piece = pieces
        .into_iter()
        .next()
        .ok_or_else(|| Error::Media("no segment covers that time".into()))?;
    let offset = t - piece.start;
    let mut best: Option<frame::Video> = None;
    decode(piece.bytes, |f, secs| {
        if secs <= offset + 1e-3 || best.is_none() {
            best = Some(f.clone());
        }
        Ok(secs <= offset)
    })?;
    let f = best.ok_or_else(|| Error::Media("a segment without a frame".into()))?;
    still(&f, fit, format)
}

/// The first frame of an image file (the poster), fitted and encoded.
pub(crate) fn reencode(bytes: Vec<u8>, fit: &Fit, format: Format) -> Result<Vec<u8>, Error> {
    let mut first: Option<frame::Video> = None;
    decode(bytes, |f, _| {
        first = Some(f.clone());
        Ok(false)
    })?;
    let f = first.ok_or_else(|| Error::Media("an image without a frame".into()))?;
    still(&f, fit, format)
}

/// The frames of `[start, end)` at `fps` as an animated image.
pub(crate) fn animated(
    pieces: Vec<Piece>,
    (start, end): (f64, f64),
    mut anim: Animation,
    fps: u32,
) -> Result<Vec<u8>, Error> {
    let step = 1.0 / f64::from(fps.max(1));
    let mut next = start;
    for p in pieces {
        decode(p.bytes, |f, secs| {
            let t = p.start + secs;
            if t >= end {
                return Ok(false);
            }
            if t + 1e-3 >= next {
                anim.push(f)?;
                while next <= t + 1e-3 {
                    next += step;
                }
            }
            Ok(true)
        })?;
    }
    anim.finish()
}
