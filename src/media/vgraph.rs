//! The video filter graph: `in` → rotation (the CLI's autorotation) →
//! HDR tone mapping or gamut mapping, once (see `colour`) → `split` → one
//! `scale` (square pixels, the source's matrix and range to BT.709
//! limited range) + `format=yuv420p` + colour tags per rung → `outN`; and
//! the displayed size a source gets.

use super::colour::Hdr;
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

pub(super) fn rotation_filters(rotation: u32) -> &'static str {
    // The CLI's autorotate mapping (fftools/ffmpeg_filter.c).
    match rotation {
        90 => "transpose=clock,",
        180 => "hflip,vflip,",
        270 => "transpose=cclock,",
        _ => "",
    }
}

/// The graph's outputs, one per size (and HDR kept or not), and the
/// output each encoded rung takes its frames from (a codec group's rung
/// shares the H.264 rung's of its size, unless it keeps `keep`, the
/// source's HDR). The first output is SDR (it feeds the poster and the
/// storyboard): every rung copied, or only kept ones encoded, it is one at
/// the source's size.
pub(crate) fn branches(
    encoded: &[(usize, &crate::hls::ladder::RungPlan)],
    source: (u32, u32),
    keep: Option<Hdr>,
) -> (Vec<Output>, Vec<usize>) {
    let kept = |r: &crate::hls::ladder::RungPlan| {
        keep.filter(|_| r.codec != crate::config::VideoCodec::H264)
    };
    let mut sizes: Vec<Output> = Vec::new();
    if encoded.iter().all(|(_, r)| kept(r).is_some()) {
        sizes.push((source.0, source.1, None));
    }
    let branch_of = encoded
        .iter()
        .map(|(_, r)| {
            let size = (r.width, r.height, kept(r));
            sizes.iter().position(|s| *s == size).unwrap_or_else(|| {
                sizes.push(size);
                sizes.len() - 1
            })
        })
        .collect();
    (sizes, branch_of)
}

/// A graph output: its size, and the HDR it keeps (else SDR).
pub(crate) type Output = (u32, u32, Option<Hdr>);

/// What a graph is built from (the colour read from the first frame too).
#[derive(Debug, Clone)]
pub(crate) struct GraphPlan {
    pub tb: Rational,
    pub rotation: u32,
    /// Each output's size, and the HDR it keeps (`--hdr keep`: a codec
    /// group's rung of an HDR source; see `hdrkeep`), else SDR.
    pub sizes: Vec<Output>,
    pub threads: usize,
    pub colour: super::colour::Colour,
    /// An HDR source's pictures reach the graph already tone-mapped (8-bit
    /// BT.709, see `ycctone`): the graph is an SDR source's.
    pub premapped: bool,
}

impl GraphPlan {
    /// The HDR the graph itself tone-maps (with `haldclut`), if any.
    fn tone_maps(&self) -> Option<Hdr> {
        self.colour.hdr().filter(|_| !self.premapped)
    }
}

/// The filters of `plan` after `in` (and, for an HDR source, `clut`: the
/// tone-mapping LUT as one Hald CLUT frame; see the module docs). Outputs
/// that keep HDR split off before the tone mapping.
fn spec(plan: &GraphPlan) -> String {
    let colour = &plan.colour;
    let rotate = rotation_filters(plan.rotation);
    let label = |kept: bool, pre: &str| -> String {
        plan.sizes
            .iter()
            .enumerate()
            .filter(|(_, s)| s.2.is_some() == kept)
            .map(|(i, _)| format!("[{pre}{i}]"))
            .collect()
    };
    let (sdr, kept) = (label(false, "s"), label(true, "k"));
    let (input, mut spec) = match kept.is_empty() {
        true => (format!("[in]{rotate}"), String::new()),
        false => (
            "[tm]".to_owned(),
            format!(
                "[in]{rotate}split=2[tm][kp];[kp]split={}{kept};",
                kept.matches('[').count()
            ),
        ),
    };
    spec.push_str(
        &match plan.tone_maps().and_then(|_| colour.tone_map_filters()) {
            Some((before, after)) => {
                format!("{input}{before}[hdr];[hdr][clut]haldclut=interp=tetrahedral,{after}")
            }
            None => format!("{input}{}", colour.sdr_filters()),
        },
    );
    spec.push_str(&format!("split={}{sdr}", sdr.matches('[').count()));
    let options = colour.scale_options();
    let tags = super::colour::SDR_TAGS;
    for (i, (w, h, keep)) in plan.sizes.iter().enumerate() {
        spec.push_str(&match keep {
            Some(hdr) => format!(
                ";[k{i}]{}[out{i}]",
                super::hdrkeep::branch_filters(colour, *hdr, (*w, *h))
            ),
            None => format!(
                ";[s{i}]scale={w}:{h}:flags=bicubic:{options},setsar=1,format=yuv420p,{tags}[out{i}]"
            ),
        });
    }
    spec
}

/// One sink per output, in its pixel format (10-bit for kept HDR).
fn add_sinks(
    graph: &mut filter::Graph,
    sink: &filter::Filter,
    sizes: &[Output],
) -> Result<(), Error> {
    for (i, (_, _, keep)) in sizes.iter().enumerate() {
        let name = format!("out{i}");
        graph
            .add(sink, &name, "")
            .map_err(media_err("video filter sink"))?;
        if let Some(mut out) = graph.get(&name) {
            out.set_pixel_format(match keep {
                Some(_) => Pixel::YUV420P10LE,
                None => Pixel::YUV420P,
            });
        }
    }
    Ok(())
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
    let threads = if plan.tone_maps().is_some() {
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
        ffmpeg_next::ffi::AVPixelFormat::from(match plan.premapped {
            true => Pixel::YUV420P,
            false => decoder.format(),
        }) as i32,
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
    add_sinks(&mut graph, &sink, sizes)?;
    let n = sizes.len();
    let spec = spec(plan);
    let hdr = plan.tone_maps();
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
