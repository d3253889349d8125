//! The video filter graph: `in` → rotation (the CLI's autorotation) →
//! HDR tone mapping or gamut mapping, once (see `colour`) → `split` → one
//! `scale` (square pixels, the source's matrix and range to BT.709
//! limited range) + `format=yuv420p` + colour tags per rung → `outN`; and
//! the displayed size a source gets.

use super::media_err;
use super::{haldclut, tonelut};
use crate::Error;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::{decoder, filter, Rational};

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

/// What a graph is built from (the colour read from the first frame too).
#[derive(Debug, Clone)]
pub(crate) struct GraphPlan {
    pub tb: Rational,
    pub rotation: u32,
    pub sizes: Vec<(u32, u32)>,
    pub threads: usize,
    pub colour: super::colour::Colour,
}

/// The filters of `plan` after `in` (and, for an HDR source, `clut`: the
/// tone-mapping LUT as one Hald CLUT frame; see the module docs).
fn spec(plan: &GraphPlan) -> String {
    let n = plan.sizes.len();
    let colour = &plan.colour;
    let rotate = rotation_filters(plan.rotation);
    let head = match colour.tone_map_filters() {
        Some((before, after)) => {
            format!("[in]{rotate}{before}[hdr];[hdr][clut]haldclut=interp=tetrahedral,{after}")
        }
        None => format!("[in]{rotate}{}", colour.sdr_filters()),
    };
    let mut spec = format!(
        "{head}split={n}{}",
        (0..n).map(|i| format!("[s{i}]")).collect::<String>()
    );
    let options = colour.scale_options();
    let tags = super::colour::SDR_TAGS;
    for (i, (w, h)) in plan.sizes.iter().enumerate() {
        spec.push_str(&format!(
            ";[s{i}]scale={w}:{h}:flags=bicubic:{options},setsar=1,format=yuv420p,{tags}[out{i}]"
        ));
    }
    spec
}

/// The graph of `plan` for `decoder`'s frames, its filters (swscale's
/// slices, zimg's) on `plan.threads` threads, 0 for libavfilter's own
/// count (one a core).
pub(crate) fn build_graph(
    decoder: &decoder::Video,
    plan: &GraphPlan,
) -> Result<filter::Graph, Error> {
    let (tb, threads, sizes) = (plan.tb, plan.threads, &plan.sizes);
    let mut graph = filter::Graph::new();
    // Tone mapping is a serial stage in front of every encoder: it gets
    // slice threads (one a core) even where the scaling alone does not
    // (BENCHMARKS.md, "HDR").
    let threads = if plan.colour.hdr().is_some() {
        0
    } else {
        threads
    };
    crate::ffi::set_graph_threads(&mut graph, threads);
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
    for i in 0..sizes.len() {
        let name = format!("out{i}");
        graph
            .add(&sink, &name, "")
            .map_err(media_err("video filter sink"))?;
        if let Some(mut out) = graph.get(&name) {
            out.set_pixel_format(Pixel::YUV420P);
        }
    }
    let n = sizes.len();
    let spec = spec(plan);
    let hdr = plan.colour.hdr();
    if hdr.is_some() {
        graph
            .add(
                &buffer,
                "clut",
                &haldclut::source_args(tonelut::LEVEL.pow(3)),
            )
            .map_err(media_err("tone-mapping LUT source"))?;
    }
    let mut parser = graph
        .output("in", 0)
        .map_err(media_err("video filter graph"))?;
    if hdr.is_some() {
        parser = parser
            .output("clut", 0)
            .map_err(media_err("video filter graph"))?;
    }
    for i in 0..n {
        parser = parser
            .input(&format!("out{i}"), 0)
            .map_err(media_err("video filter graph"))?;
    }
    parser
        .parse(&spec)
        .map_err(media_err("video filter graph"))?;
    graph.validate().map_err(media_err("video filter graph"))?;
    if let Some(h) = hdr {
        let (side, px) = tonelut::hald(h, plan.colour.peak_nits());
        haldclut::feed(&mut graph, "clut", haldclut::frame(side, &px)?)?;
    }
    Ok(graph)
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
