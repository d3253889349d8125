//! Handing a tone-mapping LUT ([`super::tonelut`]) to libavfilter's
//! `haldclut` as one frame of its second input: nothing on disk.
//!
//! The LUT goes in as planar 16-bit RGB (`gbrp16le`), like the pictures:
//! `haldclut` shares one format between its inputs, and its planar path
//! costs less than half the packed one (BENCHMARKS.md, "HDR"). FFmpeg
//! 5.1's planar loader reads the CLUT's planes rotated (red from the green
//! plane, green from blue, blue from red); [`loader_rotates`] finds out
//! once, with a tiny graph, which way the linked libavfilter reads them,
//! and the frame is laid out to be read as meant either way.

use super::media_err;
use crate::Error;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::{filter, frame};
use std::sync::OnceLock;

/// The `buffer` source arguments for a CLUT of `side`×`side`.
pub(crate) fn source_args(side: usize) -> String {
    let fmt = ffmpeg_next::ffi::AVPixelFormat::from(Pixel::GBRP16LE) as i32;
    format!("video_size={side}x{side}:pix_fmt={fmt}:time_base=1/1:pixel_aspect=1/1")
}

/// The CLUT frame of `side`×`side` packed RGB pixels `px` (red, green,
/// blue per pixel), planes placed for the loader: `gbrp`'s green, blue,
/// red, or red, green, blue for a loader that rotates them.
pub(crate) fn frame(side: usize, px: &[u16]) -> Result<frame::Video, Error> {
    let order: [usize; 3] = if loader_rotates()? {
        [0, 1, 2]
    } else {
        [1, 2, 0]
    };
    let mut f = frame::Video::new(Pixel::GBRP16LE, side as u32, side as u32);
    for (plane, &channel) in order.iter().enumerate() {
        let stride = f.stride(plane);
        let data = f.data_mut(plane);
        for (y, row) in px.chunks(side * 3).enumerate() {
            let line = &mut data[y * stride..y * stride + side * 2];
            for (dst, v) in line.chunks_mut(2).zip(row.iter().skip(channel).step_by(3)) {
                dst.copy_from_slice(&v.to_le_bytes());
            }
        }
    }
    Ok(f)
}

/// Gives the graph's `source` its one CLUT frame, before any picture
/// whatever the pictures' timestamps (a picture earlier than the CLUT
/// would pass through untouched), then ends that input.
pub(crate) fn feed(
    graph: &mut filter::Graph,
    source: &str,
    mut clut: frame::Video,
) -> Result<(), Error> {
    clut.set_pts(Some(-(1 << 30)));
    let mut src = graph
        .get(source)
        .ok_or_else(|| Error::Media("no CLUT source".into()))?;
    src.source()
        .add(&clut)
        .and_then(|()| src.source().flush())
        .map_err(media_err("tone-mapping LUT"))
}

/// Whether this libavfilter's `haldclut` reads a planar CLUT's planes
/// rotated (FFmpeg 5.1 does), found once per process.
fn loader_rotates() -> Result<bool, Error> {
    static ROTATES: OnceLock<Result<bool, String>> = OnceLock::new();
    ROTATES
        .get_or_init(|| probe().map_err(|e| e.to_string()))
        .clone()
        .map_err(Error::Media)
}

/// A 2×2 picture through a level-2 CLUT that maps every colour to one
/// whose planes differ (green plane ¼, blue ½, red ¾ as laid out): the
/// output's green plane says how the loader read them.
fn probe() -> Result<bool, Error> {
    let mut clut = frame::Video::new(Pixel::GBRP16LE, 8, 8);
    for (plane, v) in [0x4000u16, 0x8000, 0xC000].into_iter().enumerate() {
        clut.data_mut(plane)
            .chunks_mut(2)
            .for_each(|d| d.copy_from_slice(&v.to_le_bytes()));
    }
    let [green, _, _] = through(clut, [0; 3])?;
    Ok(green.abs_diff(0x8000) < green.abs_diff(0x4000))
}

/// The planes (green, blue, red) of a 2×2 picture of `planes` after
/// `haldclut` with the 8×8 (level 2) `clut`, nearest point.
fn through(clut: frame::Video, planes: [u16; 3]) -> Result<[u16; 3], Error> {
    let mut graph = filter::Graph::new();
    let buffer = filter::find("buffer").ok_or_else(|| Error::Media("no buffer filter".into()))?;
    let sink = filter::find("buffersink").ok_or_else(|| Error::Media("no buffersink".into()))?;
    let err = media_err("CLUT probe");
    graph.add(&buffer, "in", &source_args(2)).map_err(&err)?;
    graph.add(&buffer, "clut", &source_args(8)).map_err(&err)?;
    graph.add(&sink, "out", "").map_err(&err)?;
    graph
        .output("in", 0)
        .and_then(|p| p.output("clut", 0))
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse("[in][clut]haldclut=interp=nearest[out]"))
        .map_err(&err)?;
    graph.validate().map_err(&err)?;
    feed(&mut graph, "clut", clut)?;
    let mut pic = frame::Video::new(Pixel::GBRP16LE, 2, 2);
    for (plane, v) in planes.into_iter().enumerate() {
        pic.data_mut(plane)
            .chunks_mut(2)
            .for_each(|d| d.copy_from_slice(&v.to_le_bytes()));
    }
    pic.set_pts(Some(0));
    let mut src = graph
        .get("in")
        .ok_or_else(|| Error::Media("no source".into()))?;
    src.source().add(&pic).map_err(&err)?;
    src.source().flush().map_err(&err)?;
    let mut out = frame::Video::empty();
    let mut sink = graph
        .get("out")
        .ok_or_else(|| Error::Media("no sink".into()))?;
    sink.sink().frame(&mut out).map_err(&err)?;
    Ok([0, 1, 2].map(|p| u16::from_le_bytes([out.data(p)[0], out.data(p)[1]])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A level-2 CLUT (4 points a side) mapping `f` over every point.
    fn clut(f: impl Fn([u16; 3]) -> [u16; 3]) -> frame::Video {
        let n = 4;
        let px: Vec<u16> = (0..n * n * n)
            .flat_map(|i| f([i % n, i / n % n, i / (n * n)].map(|c| (c * 0x5555) as u16)))
            .collect();
        frame(8, &px).unwrap()
    }

    #[test]
    fn a_clut_is_read_as_laid_out() {
        ffmpeg_next::init().unwrap();
        eprintln!("planar CLUT loader rotates: {}", loader_rotates().unwrap());
        // Planes are green, blue, red; the CLUT's pixels red, green, blue.
        let identity = through(clut(|c| c), [0x5555, 0xAAAA, 0xFFFF]).unwrap();
        assert_eq!(identity, [0x5555, 0xAAAA, 0xFFFF]);
        let swap = through(clut(|[r, g, b]| [g, b, r]), [0x5555, 0xAAAA, 0xFFFF]).unwrap();
        // Red out = green in, green out = blue in, blue out = red in.
        assert_eq!(swap, [0xAAAA, 0xFFFF, 0x5555]);
    }
}
