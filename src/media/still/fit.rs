//! Fitting a frame to an asked size (Mux's `fit_mode`s) with libavfilter,
//! and encoding one image.

use super::Format;
use crate::Error;
use ffmpeg_next::{codec, encoder, filter, frame, Rational};

/// How a frame meets an asked box (both sides given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FitMode {
    /// Inside the box, its aspect kept (the image may be smaller).
    Preserve,
    /// Fills the box, its aspect kept, the overflow cut off (centred).
    Crop,
    /// Inside the box, its aspect kept, the rest black (centred).
    Pad,
    /// Exactly the box, its aspect changed.
    Stretch,
}

/// The asked size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Fit {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub mode: FitMode,
}

/// The scaled size and the final one, for a frame of `sw`×`sh`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub scaled: (u32, u32),
    pub out: (u32, u32),
}

impl Fit {
    pub(crate) fn sizes(&self, sw: u32, sh: u32) -> Sizes {
        let (fw, fh) = (f64::from(sw.max(1)), f64::from(sh.max(1)));
        let px = |v: f64| (v.round() as u32).max(1);
        let same = |s: (u32, u32)| Sizes { scaled: s, out: s };
        let (w, h) = match (self.width, self.height) {
            (None, None) => return same((sw, sh)),
            (Some(w), None) => return same((w, px(fh * f64::from(w) / fw))),
            (None, Some(h)) => return same((px(fw * f64::from(h) / fh), h)),
            (Some(w), Some(h)) => (w, h),
        };
        let (rw, rh) = (f64::from(w) / fw, f64::from(h) / fh);
        match self.mode {
            FitMode::Stretch => same((w, h)),
            FitMode::Preserve => same((px(fw * rw.min(rh)), px(fh * rw.min(rh)))),
            FitMode::Pad => Sizes {
                scaled: (px(fw * rw.min(rh)).min(w), px(fh * rw.min(rh)).min(h)),
                out: (w, h),
            },
            FitMode::Crop => Sizes {
                scaled: (
                    ((fw * rw.max(rh)).ceil() as u32).max(w),
                    ((fh * rw.max(rh)).ceil() as u32).max(h),
                ),
                out: (w, h),
            },
        }
    }
}

/// The pixel format each encoder takes.
pub(super) fn pixel_for(format: Format) -> &'static str {
    match format {
        Format::Jpeg => "yuvj420p",
        Format::Png => "rgb24",
        Format::Webp | Format::AnimatedWebp => "yuv420p",
        Format::Gif => "pal8",
    }
}

/// A graph from frames like `f` to the fitted size in `pix` (with `tail`
/// appended before the format, e.g. a GIF palette), and that size.
pub(super) fn graph(
    f: &frame::Video,
    fit: &Fit,
    pix: &str,
    tail: Option<&str>,
) -> Result<(filter::Graph, (u32, u32)), Error> {
    let media = |what: &'static str| move |e| Error::from_av(e, what);
    let s = fit.sizes(f.width(), f.height());
    let mut spec = format!("scale={}:{}:flags=bicubic", s.scaled.0, s.scaled.1);
    match (fit.mode, s.scaled == s.out) {
        (_, true) => {}
        (FitMode::Crop, false) => spec.push_str(&format!(",crop={}:{}", s.out.0, s.out.1)),
        (_, false) => spec.push_str(&format!(
            ",pad={}:{}:(ow-iw)/2:(oh-ih)/2:color=black",
            s.out.0, s.out.1
        )),
    }
    spec.push_str(",setsar=1");
    match tail {
        Some(t) => spec.push_str(t),
        None => spec.push_str(&format!(",format={pix}")),
    }
    let args = format!(
        "video_size={}x{}:pix_fmt={}:time_base=1/30:pixel_aspect=1/1",
        f.width(),
        f.height(),
        ffmpeg_next::ffi::AVPixelFormat::from(f.format()) as i32
    );
    let mut graph = filter::Graph::new();
    let buffer = filter::find("buffer").ok_or_else(|| Error::Media("no buffer filter".into()))?;
    let sink = filter::find("buffersink").ok_or_else(|| Error::Media("no buffersink".into()))?;
    graph
        .add(&buffer, "in", &args)
        .map_err(media("image source"))?;
    graph.add(&sink, "out", "").map_err(media("image sink"))?;
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(&spec))
        .map_err(media("image filter graph"))?;
    graph.validate().map_err(media("image filter graph"))?;
    Ok((graph, s.out))
}

/// One frame through `graph`.
pub(super) fn run(graph: &mut filter::Graph, f: &frame::Video) -> Result<frame::Video, Error> {
    let media = |what: &'static str| move |e| Error::from_av(e, what);
    let mut src = graph
        .get("in")
        .ok_or_else(|| Error::Media("image source".into()))?;
    src.source().add(f).map_err(media("image filter"))?;
    src.source().flush().map_err(media("image filter"))?;
    let mut out = frame::Video::empty();
    graph
        .get("out")
        .ok_or_else(|| Error::Media("image sink".into()))?
        .sink()
        .frame(&mut out)
        .map_err(media("image filter"))?;
    Ok(out)
}

/// An opened encoder of `format` for `w`×`h` frames at `fps`.
pub(super) fn encoder(
    format: Format,
    (w, h): (u32, u32),
    fps: i32,
) -> Result<encoder::Video, Error> {
    let media = |what: &'static str| move |e| Error::from_av(e, what);
    let name = match format {
        Format::Jpeg => "mjpeg",
        Format::Png => "png",
        Format::Webp => "libwebp",
        Format::AnimatedWebp => "libwebp_anim",
        Format::Gif => "gif",
    };
    let codec = encoder::find_by_name(name)
        .ok_or_else(|| Error::Media(format!("the {name} encoder is not available")))?;
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(media("image encoder"))?;
    enc.set_width(w);
    enc.set_height(h);
    let pix: ffmpeg_next::format::Pixel = pixel_for(format)
        .parse()
        .map_err(|_| Error::Media("image pixel format".into()))?;
    enc.set_format(pix);
    enc.set_time_base(Rational(1, fps));
    if format == Format::Jpeg {
        enc.set_flags(codec::Flags::QSCALE);
        enc.set_global_quality(3 * crate::ffi::QP2LAMBDA);
    }
    enc.open_as(codec)
        .map_err(media("opening the image encoder"))
}

/// One image: the encoder's packet is the file (JPEG, PNG, WebP).
pub(super) fn encode_one(
    f: &frame::Video,
    size: (u32, u32),
    format: Format,
) -> Result<Vec<u8>, Error> {
    let media = |what: &'static str| move |e| Error::from_av(e, what);
    let mut enc = encoder(format, size, 30)?;
    let mut f = f.clone();
    f.set_pts(Some(0));
    if format == Format::Jpeg {
        crate::ffi::set_frame_quality(&mut f, 3 * crate::ffi::QP2LAMBDA);
    }
    enc.send_frame(&f).map_err(media("encoding an image"))?;
    enc.send_eof().map_err(media("encoding an image"))?;
    let mut packet = ffmpeg_next::Packet::empty();
    enc.receive_packet(&mut packet)
        .map_err(media("encoding an image"))?;
    packet
        .data()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Error::Media("the image encoder produced nothing".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fit_mode_gives_its_size() {
        let fit = |w, h, mode| Fit {
            width: w,
            height: h,
            mode,
        };
        let s = |f: Fit| f.sizes(1280, 720);
        assert_eq!(s(fit(None, None, FitMode::Crop)).out, (1280, 720));
        assert_eq!(s(fit(Some(320), None, FitMode::Pad)).out, (320, 180));
        assert_eq!(s(fit(None, Some(90), FitMode::Stretch)).out, (160, 90));
        assert_eq!(
            s(fit(Some(300), Some(300), FitMode::Stretch)).out,
            (300, 300)
        );
        assert_eq!(
            s(fit(Some(300), Some(300), FitMode::Preserve)).out,
            (300, 169)
        );
        let pad = s(fit(Some(300), Some(300), FitMode::Pad));
        assert_eq!((pad.scaled, pad.out), ((300, 169), (300, 300)));
        let crop = s(fit(Some(300), Some(300), FitMode::Crop));
        assert_eq!(crop.out, (300, 300));
        assert!(crop.scaled.0 >= 300 && crop.scaled.1 == 300, "{crop:?}");
    }
}
