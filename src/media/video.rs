//! The video chain: decoder → filter graph (rotation, square pixels, even
//! size, yuv420p) → libx264, with keyframes forced by timestamp.

use super::Settings;
use crate::Error;
use ffmpeg_next::format::context::Output;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::{
    codec, decoder, encoder, filter, format, frame, picture, Dictionary, Packet, Rational,
};

/// One decoded video stream and the encoder fed from it.
pub(crate) struct VideoChain {
    decoder: decoder::Video,
    graph: filter::Graph,
    encoder: encoder::Video,
    /// Output stream index in the muxer.
    ost_index: usize,
    /// Time base of decoder output, filter graph and encoder alike: the
    /// input stream's, so variable frame rate passes through untouched.
    tb: Rational,
    /// The muxer's stream time base, known after `write_header`.
    ost_tb: Rational,
    /// Subtracted from every timestamp so the output starts near 0.
    offset: i64,
    /// Keyframe grid, in `tb` units: anchored at the first output frame.
    key_anchor: Option<i64>,
    key_step: i64,
    /// Next grid point; the first frame at or after it becomes an IDR.
    next_key: i64,
    /// Last pts sent to the filter, to keep them strictly increasing.
    last_pts: Option<i64>,
    /// Nominal frame duration in `tb`, for a last frame with no successor.
    frame_dur: i64,
    /// Real duration of each frame sent to the encoder, by pts (the gap to
    /// the next frame): libx264 leaves packet durations at 0, and the hls
    /// muxer sums them for the last EXTINF, so VFR needs the true values.
    /// Entries leave when their packet does (bounded by the encoder delay).
    durations: std::collections::HashMap<i64, i64>,
    /// Pts of the last frame sent to the encoder.
    last_encoded_pts: Option<i64>,
    /// Output frames encoded.
    pub frames: u64,
    /// Packets the decoder refused (corrupt data).
    pub decode_errors: u64,
    /// Presentation end of the last encoded frame, seconds.
    pub position: f64,
    /// Key rotation for encrypted output (AES-128), if any.
    pub keys: Option<super::keys::Keys>,
    /// Chooses the poster frame as frames go by.
    pub poster: super::poster::PosterPicker,
    /// Output size.
    pub width: u32,
    pub height: u32,
}

/// Output size for a `w`×`h` picture with sample aspect `sar`, after a
/// rotation of `rotation` degrees: square pixels, even sides, at least 2,
/// and no more than `max_pixels` (an extreme SAR is clamped to 1:4..4:1 and
/// the picture scaled down rather than widened past the cap).
pub(crate) fn output_size(
    w: u32,
    h: u32,
    sar: Rational,
    rotation: u32,
    max_pixels: u64,
) -> (u32, u32) {
    let sar = if sar.numerator() > 0 && sar.denominator() > 0 {
        f64::from(sar).clamp(0.25, 4.0)
    } else {
        1.0
    };
    let (mut fw, mut fh) = (f64::from(w) * sar, f64::from(h));
    let cap = max_pixels.max(4) as f64;
    if fw * fh > cap {
        let k = (cap / (fw * fh)).sqrt();
        fw *= k;
        fh *= k;
    }
    // Nearest even number (halves up), at least 2; the float → int cast
    // saturates, and the cap keeps values far from u32::MAX anyway.
    let even = |v: f64| (((v + 1.0) / 2.0).floor() as u32).saturating_mul(2).max(2);
    let (dw, dh) = (even(fw), even(fh));
    if rotation == 90 || rotation == 270 {
        (dh, dw)
    } else {
        (dw, dh)
    }
}

fn rotation_filters(rotation: u32) -> &'static str {
    // The CLI's autorotate mapping (fftools/ffmpeg_filter.c).
    match rotation {
        90 => "transpose=clock,",
        180 => "hflip,vflip,",
        270 => "transpose=cclock,",
        _ => "",
    }
}

fn media_err(what: &str) -> impl Fn(ffmpeg_next::Error) -> Error + '_ {
    move |e| Error::from_av(e, what)
}

impl VideoChain {
    /// Builds the chain for input stream `ist` and adds its output stream to
    /// `octx`. `offset` is in the stream's time base.
    pub(crate) fn new(
        ist: &format::stream::Stream,
        rotation: u32,
        offset: i64,
        duration: Option<f64>,
        octx: &mut Output,
        settings: &Settings,
    ) -> Result<Self, Error> {
        let tb = ist.time_base();
        let mut dctx = codec::context::Context::from_parameters(ist.parameters())
            .map_err(media_err("video decoder parameters"))?;
        super::ffi::set_max_pixels(&mut dctx, settings.max_pixels);
        dctx.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        let decoder = dctx
            .decoder()
            .video()
            .map_err(|e| Error::Unprocessable(format!("video decoder: {e}")))?;
        let fps = [ist.avg_frame_rate(), ist.rate()]
            .into_iter()
            .find(|r| r.numerator() > 0 && r.denominator() > 0 && f64::from(*r) <= 240.0)
            .unwrap_or(Rational(25, 1));
        let (width, height) = output_size(
            decoder.width(),
            decoder.height(),
            decoder.aspect_ratio(),
            rotation,
            settings.max_pixels,
        );
        let graph = build_graph(&decoder, tb, rotation, width, height)?;
        let ost_index = octx.nb_streams() as usize;
        let global = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let encoder = open_encoder(width, height, tb, fps, global, settings)?;
        let mut ost = octx
            .add_stream(encoder::find_by_name("libx264"))
            .map_err(media_err("add video stream"))?;
        ost.set_parameters(&encoder);
        ost.set_time_base(tb);
        ost.set_avg_frame_rate(fps);
        let per_sec = f64::from(tb.denominator()) / f64::from(tb.numerator().max(1));
        let frame_dur = ((per_sec / f64::from(fps)).round() as i64).max(1);
        let key_step = ((settings.keyframe_seconds * per_sec).round() as i64).max(1);
        Ok(VideoChain {
            decoder,
            graph,
            encoder,
            ost_index,
            tb,
            ost_tb: tb,
            offset,
            key_anchor: None,
            key_step,
            next_key: 0,
            last_pts: None,
            frame_dur,
            durations: std::collections::HashMap::new(),
            last_encoded_pts: None,
            frames: 0,
            decode_errors: 0,
            position: 0.0,
            poster: super::poster::PosterPicker::new(duration),
            keys: None,
            width,
            height,
        })
    }

    /// Reads the muxer's time base for our stream (valid after write_header).
    pub(crate) fn set_output_time_base(&mut self, octx: &Output) {
        if let Some(st) = octx.stream(self.ost_index) {
            self.ost_tb = st.time_base();
        }
    }

    /// Decodes one packet and pushes what comes out through to the muxer.
    pub(crate) fn send_packet(&mut self, packet: &Packet, octx: &mut Output) -> Result<(), Error> {
        if self.decoder.send_packet(packet).is_err() {
            // Corrupt data: skip the packet, keep going (counted for the record).
            self.decode_errors += 1;
            return Ok(());
        }
        self.receive_decoded_frames(octx)
    }

    /// Drains the decoder, filter and encoder at end of input.
    pub(crate) fn finish(&mut self, octx: &mut Output) -> Result<(), Error> {
        let _ = self.decoder.send_eof();
        self.receive_decoded_frames(octx)?;
        if let Some(mut src) = self.graph.get("in") {
            let _ = src.source().flush();
        }
        self.receive_filtered_frames(octx)?;
        self.encoder
            .send_eof()
            .map_err(media_err("video encoder eof"))?;
        self.receive_encoded_packets(octx)
    }

    fn receive_decoded_frames(&mut self, octx: &mut Output) -> Result<(), Error> {
        let mut frame = frame::Video::empty();
        while self.decoder.receive_frame(&mut frame).is_ok() {
            let pts = match frame.timestamp().or(frame.pts()) {
                Some(p) => p - self.offset,
                None => self.last_pts.map_or(0, |l| l + self.frame_dur),
            };
            // Strictly increasing pts, or libx264 and the muxer complain
            // (duplicate timestamps happen in VFR sources with coarse bases).
            let pts = match self.last_pts {
                Some(last) if pts <= last => last + 1,
                _ => pts,
            };
            self.last_pts = Some(pts);
            frame.set_pts(Some(pts));
            frame.set_kind(picture::Type::None);
            let mut src = self
                .graph
                .get("in")
                .ok_or_else(|| Error::Internal("video graph has no input".into()))?;
            src.source()
                .add(&frame)
                .map_err(media_err("video filter input"))?;
            self.receive_filtered_frames(octx)?;
        }
        Ok(())
    }

    fn receive_filtered_frames(&mut self, octx: &mut Output) -> Result<(), Error> {
        let mut filtered = frame::Video::empty();
        while self.pull_filtered(&mut filtered)? {
            let pts = filtered.pts().unwrap_or(0);
            // Reset the source's picture types, then force an IDR on the first
            // frame at or after each grid point (decided by timestamp, so VFR
            // input still cuts cleanly; LIBAV-NOTES.md).
            let anchor = *self.key_anchor.get_or_insert(pts);
            if pts >= self.next_key || self.frames == 0 {
                filtered.set_kind(picture::Type::I);
                let steps = (pts - anchor).div_euclid(self.key_step) + 1;
                self.next_key = anchor + steps * self.key_step;
            } else {
                filtered.set_kind(picture::Type::None);
            }
            // Only while the previous frame's packet is still to come: an
            // entry whose packet already left must not be re-added (leak).
            if let Some(d) = self
                .last_encoded_pts
                .and_then(|p| self.durations.get_mut(&p).map(|d| (d, p)))
            {
                *d.0 = pts - d.1;
            }
            self.durations.insert(pts, self.frame_dur);
            self.last_encoded_pts = Some(pts);
            self.poster
                .offer(&filtered, pts as f64 * f64::from(self.tb));
            self.encoder
                .send_frame(&filtered)
                .map_err(media_err("video encoder"))?;
            self.frames += 1;
            self.position = (pts + self.frame_dur) as f64 * f64::from(self.tb);
            self.receive_encoded_packets(octx)?;
        }
        Ok(())
    }

    /// Takes one frame out of the graph; `false` when none is ready.
    fn pull_filtered(&mut self, into: &mut frame::Video) -> Result<bool, Error> {
        let mut sink = self
            .graph
            .get("out")
            .ok_or_else(|| Error::Internal("video graph has no output".into()))?;
        let got = sink.sink().frame(into).is_ok();
        Ok(got)
    }

    fn receive_encoded_packets(&mut self, octx: &mut Output) -> Result<(), Error> {
        let mut packet = Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(self.ost_index);
            if packet.is_key() {
                if let (Some(keys), Some(pts)) = (self.keys.as_mut(), packet.pts()) {
                    keys.before_keyframe(pts as f64 * f64::from(self.tb))?;
                }
            }
            let real = packet.pts().and_then(|p| self.durations.remove(&p));
            if packet.duration() <= 0 {
                packet.set_duration(real.unwrap_or(self.frame_dur));
            }
            packet.rescale_ts(self.tb, self.ost_tb);
            packet
                .write_interleaved(octx)
                .map_err(|e| Error::from_av(e, "writing a video packet"))?;
        }
        Ok(())
    }
}

fn build_graph(
    decoder: &decoder::Video,
    tb: Rational,
    rotation: u32,
    width: u32,
    height: u32,
) -> Result<filter::Graph, Error> {
    let mut graph = filter::Graph::new();
    let sar = decoder.aspect_ratio();
    let sar = if sar.numerator() > 0 && sar.denominator() > 0 {
        sar
    } else {
        Rational(1, 1)
    };
    let args = format!(
        "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
        decoder.width(),
        decoder.height(),
        ffmpeg_next::ffi::AVPixelFormat::from(decoder.format()) as i32,
        tb.numerator(),
        tb.denominator(),
        sar.numerator(),
        sar.denominator()
    );
    let buffer = filter::find("buffer").ok_or_else(|| Error::Media("no buffer filter".into()))?;
    let sink = filter::find("buffersink").ok_or_else(|| Error::Media("no buffersink".into()))?;
    graph
        .add(&buffer, "in", &args)
        .map_err(media_err("video filter source"))?;
    graph
        .add(&sink, "out", "")
        .map_err(media_err("video filter sink"))?;
    if let Some(mut out) = graph.get("out") {
        out.set_pixel_format(Pixel::YUV420P);
    }
    let spec = format!(
        "{}scale={width}:{height}:flags=bicubic,setsar=1,format=yuv420p",
        rotation_filters(rotation)
    );
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(&spec))
        .map_err(media_err("video filter graph"))?;
    graph.validate().map_err(media_err("video filter graph"))?;
    Ok(graph)
}

fn open_encoder(
    width: u32,
    height: u32,
    tb: Rational,
    fps: Rational,
    global_header: bool,
    settings: &Settings,
) -> Result<encoder::Video, Error> {
    let codec = encoder::find_by_name("libx264")
        .ok_or_else(|| Error::Media("libx264 is not available in this FFmpeg build".into()))?;
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(media_err("video encoder"))?;
    enc.set_width(width);
    enc.set_height(height);
    enc.set_format(Pixel::YUV420P);
    enc.set_time_base(tb);
    enc.set_frame_rate(Some(fps));
    enc.set_aspect_ratio(Rational(1, 1));
    if global_header {
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    // Keyframes come from our forced IDRs; x264's own interval is set wide
    // (twice the grid) so it never adds one off the grid, and scenecut is
    // off for the same reason. Closed GOPs so every segment decodes alone.
    let grid = (f64::from(fps) * settings.keyframe_seconds)
        .round()
        .max(1.0) as u32;
    let mut opts = Dictionary::new();
    opts.set("preset", &settings.x264_preset);
    opts.set("crf", &settings.crf.to_string());
    // High profile for every player; lossless (crf 0) needs High 4:4:4
    // Predictive, which x264 picks itself when no profile is forced.
    if settings.crf > 0 {
        opts.set("profile", "high");
    }
    opts.set("forced-idr", "1");
    opts.set(
        "x264-params",
        &format!(
            "keyint={}:min-keyint=1:scenecut=0:open-gop=0:vbv-maxrate={}:vbv-bufsize={}",
            grid * 2,
            settings.max_video_kbps,
            settings.max_video_kbps * 2
        ),
    );
    enc.open_with(opts).map_err(|e| {
        Error::Media(format!(
            "opening libx264 (preset {}): {e}",
            settings.x264_preset
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_is_even_square_and_rotated() {
        let m = 7680 * 4320;
        assert_eq!(output_size(320, 240, Rational(1, 1), 0, m), (320, 240));
        assert_eq!(output_size(321, 241, Rational(0, 1), 0, m), (322, 242));
        assert_eq!(output_size(320, 240, Rational(1, 1), 90, m), (240, 320));
        // Anamorphic DVD PAL 16:9: 720×576 with SAR 64:45 → 1024×576.
        assert_eq!(output_size(720, 576, Rational(64, 45), 0, m), (1024, 576));
        assert_eq!(output_size(1, 1, Rational(1, 1), 0, m), (2, 2));
        // An absurd SAR is clamped (8:1 → 4:1), then the cap scales it down.
        assert_eq!(output_size(1920, 1080, Rational(8, 1), 0, m), (7680, 1080));
        let (w, h) = output_size(7680, 4320, Rational(4, 1), 0, m);
        assert!(u64::from(w) * u64::from(h) <= m + 2 * 7680, "{w}x{h}");
        assert!(u64::from(w) * u64::from(h) > m * 9 / 10, "{w}x{h}");
    }
}
