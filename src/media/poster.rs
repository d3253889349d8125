//! Posters: a frame from about 10% into the video (skipping dark frames
//! while that is cheap), encoded in-process with libav's mjpeg encoder as
//! `poster.jpg` (full size) and `thumb.jpg` (`THUMB_WIDTH` wide).

use crate::storage::{names, Store, VideoId};
use crate::Error;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::software::scaling;
use ffmpeg_next::{codec, encoder, frame, Rational};

/// Thumbnail width.
pub(crate) const THUMB_WIDTH: u32 = 320;
/// Mean luma (0..255) under which a frame counts as black.
const DARK_LUMA: u64 = 24;
/// JPEG quality as an MPEG qscale (2 best … 31 worst); ffmpeg's `-q:v 3`.
const JPEG_QSCALE: i32 = 3;

/// Picks the poster frame while frames go by, without keeping more than one.
pub(crate) struct PosterPicker {
    /// Output time (seconds) from which frames are candidates.
    from: f64,
    /// Past this, the first candidate is taken even if dark.
    give_up: f64,
    chosen: Option<frame::Video>,
    /// The first frame, kept as a fallback for very short videos.
    first: Option<frame::Video>,
}

impl PosterPicker {
    /// For a video of `duration` seconds (if known).
    pub(crate) fn new(duration: Option<f64>) -> Self {
        let d = duration.unwrap_or(10.0).max(0.0);
        PosterPicker {
            from: d * 0.10,
            give_up: d * 0.30,
            chosen: None,
            first: None,
        }
    }

    /// True once the poster frame is chosen (later offers are ignored).
    pub(crate) fn is_chosen(&self) -> bool {
        self.chosen.is_some()
    }

    /// Offers a yuv420p frame shown at `secs`.
    pub(crate) fn offer(&mut self, f: &frame::Video, secs: f64) {
        if self.chosen.is_some() {
            return;
        }
        if self.first.is_none() {
            self.first = Some(f.clone());
        }
        if secs >= self.from && (secs >= self.give_up || mean_luma(f) > DARK_LUMA) {
            self.chosen = Some(f.clone());
        }
    }

    /// The choice over this picker's frames and then `later`'s (the next
    /// chunk's): the first frame either chose, else the first seen.
    pub(crate) fn then(mut self, later: PosterPicker) -> PosterPicker {
        if self.chosen.is_none() {
            self.chosen = later.chosen;
        }
        if self.first.is_none() {
            self.first = later.first;
        }
        self
    }

    /// Publishes the poster and thumbnail of video `id` (atomically);
    /// returns the bytes written.
    pub(crate) fn write(self, store: &Store, id: VideoId) -> Result<u64, Error> {
        let Some(f) = self.chosen.or(self.first) else {
            return Ok(0);
        };
        let (w, h) = (f.width(), f.height());
        let poster = jpeg(&f, w, h)?;
        store.write(id, names::POSTER, &poster)?;
        let tw = THUMB_WIDTH.min(w);
        let th = ((f64::from(h) * f64::from(tw) / f64::from(w) / 2.0).round() as u32 * 2).max(2);
        let thumb = jpeg(&f, tw, th)?;
        store.write(id, names::THUMB, &thumb)?;
        Ok((poster.len() + thumb.len()) as u64)
    }
}

/// Mean of a sparse sample of the luma plane.
fn mean_luma(f: &frame::Video) -> u64 {
    let (w, h, stride) = (f.width() as usize, f.height() as usize, f.stride(0));
    let data = f.data(0);
    let (mut sum, mut n) = (0u64, 0u64);
    for y in (0..h).step_by(8) {
        for x in (0..w).step_by(8) {
            if let Some(v) = data.get(y * stride + x) {
                sum += u64::from(*v);
                n += 1;
            }
        }
    }
    sum.checked_div(n).unwrap_or(0)
}

/// `src` scaled to `w`×`h`, as JPEG bytes.
pub(super) fn jpeg(src: &frame::Video, w: u32, h: u32) -> Result<Vec<u8>, Error> {
    let av = |what: &'static str| move |e| Error::from_av(e, what);
    let mut scaler = scaling::Context::get(
        src.format(),
        src.width(),
        src.height(),
        Pixel::YUVJ420P,
        w,
        h,
        scaling::Flags::BICUBIC,
    )
    .map_err(av("poster scaler"))?;
    let mut jframe = frame::Video::empty();
    scaler.run(src, &mut jframe).map_err(av("poster scaling"))?;
    let codec = encoder::find(codec::Id::MJPEG)
        .ok_or_else(|| Error::Media("the mjpeg encoder is not available".into()))?;
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(av("mjpeg encoder"))?;
    enc.set_width(w);
    enc.set_height(h);
    enc.set_format(Pixel::YUVJ420P);
    enc.set_time_base(Rational(1, 25));
    enc.set_flags(codec::Flags::QSCALE);
    enc.set_global_quality(JPEG_QSCALE * crate::ffi::QP2LAMBDA);
    let mut enc = enc.open_as(codec).map_err(av("opening mjpeg"))?;
    jframe.set_pts(Some(0));
    crate::ffi::set_frame_quality(&mut jframe, JPEG_QSCALE * crate::ffi::QP2LAMBDA);
    enc.send_frame(&jframe).map_err(av("encoding the poster"))?;
    enc.send_eof().map_err(av("encoding the poster"))?;
    let mut packet = ffmpeg_next::Packet::empty();
    enc.receive_packet(&mut packet)
        .map_err(av("encoding the poster"))?;
    packet
        .data()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Error::Media("the poster encoder produced nothing".into()))
}
