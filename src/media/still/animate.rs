//! Animated images (GIF, WebP): frames fitted and encoded as they come,
//! muxed into memory; nothing is held but the frame in hand and the
//! output (a GIF's palette is made per frame).

use super::fit::{self, Fit};
use super::Format;
use crate::Error;
use ffmpeg_next::{encoder, filter, format, frame, Dictionary, Packet, Rational};
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

/// The muxer's output, shared with the custom AVIO that writes it.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Cursor<Vec<u8>>>>);

impl Sink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cursor<Vec<u8>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.lock().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Sink {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.lock().seek(to)
    }
}

/// What exists once the first frame came.
struct Running {
    graph: filter::Graph,
    enc: encoder::Video,
    octx: format::context::Output,
}

/// One animated image being made.
pub(crate) struct Animation {
    fit: Fit,
    format: Format,
    fps: i32,
    sink: Sink,
    run: Option<Running>,
    frames: i64,
}

impl Animation {
    /// An animation of `fit`-sized frames at `fps`.
    pub(crate) fn new(fit: Fit, fps: u32, format: Format) -> Animation {
        Animation {
            fit,
            format,
            fps: i32::try_from(fps.max(1)).unwrap_or(30),
            sink: Sink::default(),
            run: None,
            frames: 0,
        }
    }

    fn start(&self, f: &frame::Video) -> Result<Running, Error> {
        let media = |what: &'static str| move |e| Error::from_av(e, what);
        let tail = (self.format == Format::Gif)
            .then_some(",split[a][b];[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1");
        let (graph, size) = fit::graph(f, &self.fit, fit::pixel_for(self.format), tail)?;
        let enc = fit::encoder(self.format, size, self.fps)?;
        let muxer = match self.format {
            Format::Gif => "gif",
            _ => "webp",
        };
        let io = format::context::StreamIo::from_write_seek(self.sink.clone())
            .map_err(|e| Error::Media(format!("custom AVIO: {e}")))?;
        let mut octx =
            format::output_to_stream(io, None, Some(muxer)).map_err(media("image muxer"))?;
        let mut ost = octx.add_stream(enc.codec()).map_err(media("image muxer"))?;
        ost.set_parameters(&enc);
        ost.set_time_base(Rational(1, self.fps));
        let mut opts = Dictionary::new();
        opts.set("loop", "0");
        octx.write_header_with(opts).map_err(media("image muxer"))?;
        Ok(Running { graph, enc, octx })
    }

    /// The next frame.
    pub(crate) fn push(&mut self, f: &frame::Video) -> Result<(), Error> {
        if self.run.is_none() {
            self.run = Some(self.start(f)?);
        }
        let mut f = f.clone();
        f.set_pts(Some(self.frames));
        self.frames += 1;
        let Some(run) = self.run.as_mut() else {
            return Ok(());
        };
        run.graph
            .get("in")
            .ok_or_else(|| Error::Media("image source".into()))?
            .source()
            .add(&f)
            .map_err(|e| Error::from_av(e, "animation filter"))?;
        drain(run, self.fps)
    }

    /// The file, once every frame is in.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>, Error> {
        let media = |what: &'static str| move |e| Error::from_av(e, what);
        let fps = self.fps;
        let run = self.run.as_mut().ok_or_else(|| {
            Error::BadRequest("no frame in that range (is it after the end of the video?)".into())
        })?;
        if let Some(mut src) = run.graph.get("in") {
            src.source().flush().map_err(media("animation filter"))?;
        }
        drain(run, fps)?;
        run.enc.send_eof().map_err(media("animation encoder"))?;
        write_packets(run, fps)?;
        run.octx.write_trailer().map_err(media("image muxer"))?;
        self.run = None;
        let out = std::mem::take(self.sink.lock().get_mut());
        Ok(out)
    }
}

/// Frames out of the graph into the encoder, packets into the muxer.
fn drain(run: &mut Running, fps: i32) -> Result<(), Error> {
    let mut out = frame::Video::empty();
    loop {
        let got = run
            .graph
            .get("out")
            .ok_or_else(|| Error::Media("image sink".into()))?
            .sink()
            .frame(&mut out);
        if got.is_err() {
            break;
        }
        run.enc
            .send_frame(&out)
            .map_err(|e| Error::from_av(e, "animation encoder"))?;
        write_packets(run, fps)?;
    }
    Ok(())
}

fn write_packets(run: &mut Running, fps: i32) -> Result<(), Error> {
    let mut packet = Packet::empty();
    while run.enc.receive_packet(&mut packet).is_ok() {
        packet.set_stream(0);
        let tb = run
            .octx
            .stream(0)
            .map_or(Rational(1, fps), |s| s.time_base());
        packet.rescale_ts(Rational(1, fps), tb);
        packet
            .write_interleaved(&mut run.octx)
            .map_err(|e| Error::from_av(e, "image muxer"))?;
    }
    Ok(())
}
