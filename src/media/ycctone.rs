//! HDR to SDR straight from the decoder's pictures: a 10-bit 4:2:0 frame
//! (`yuv420p10le`, what HEVC Main 10, AV1 and VP9 profile 2 decode to)
//! becomes the 8-bit BT.709 4:2:0 frame the rungs' scalers read, in one
//! pass over the picture, before the filter graph; the graph then treats
//! it as an SDR source. The mapping is [`super::tonelut`]'s (the same
//! mathematics as zimg + `tonemap=mobius`), tabulated on a grid of the
//! source's own Y'CbCr codes instead of RGB, so no conversion to RGB and
//! back is needed: each picture's luma is read through the table once per
//! pixel, its chroma once per 2×2 block (at the block's mean luma), in
//! integer arithmetic, the picture split across cores. This replaced
//! `scale` to 16-bit RGB + `haldclut` + `scale` back (BENCHMARKS.md,
//! "HDR"), which stays for other pixel formats and for `--hdr keep`
//! graphs, whose HDR branches need the source's pictures.
//!
//! Interpolation is trilinear, in integer arithmetic: luma nodes every 16
//! codes (65), chroma nodes every 8 (129 a side: with 65 the mean luma of
//! the test pictures came out 1.0 (PQ) and 1.6 (HLG) under the reference,
//! with 129 0.3 and 0.8; more luma nodes changed nothing). A code's cell
//! is its top bits, its weights its low bits. The three components of a
//! node share one `u64` (see [`LANE`]), so weighing a corner is one
//! multiplication. Luma uses the chroma of its block (nearest-neighbour
//! upsampling). The table (8.6 MB, 0.2 s to compute) is kept for the
//! next HDR job of the same kind ([`shared_table`]).

use super::colour::{Colour, Hdr};
use super::tonelut;
use crate::Error;
use ffmpeg_next::color::{Primaries, Range, Space, TransferCharacteristic as Trc};
use ffmpeg_next::format::Pixel;
use ffmpeg_next::frame;
use std::sync::{Arc, Mutex};

/// Luma nodes every `1 << Y_BITS` codes (0, 16, …, 1024), chroma nodes
/// every `1 << C_BITS` (0, 8, …, 1024).
const Y_BITS: u32 = 4;
const C_BITS: u32 = 3;
const YN: usize = (1024 >> Y_BITS) + 1;
const CN: usize = (1024 >> C_BITS) + 1;
/// The four (Cb, Cr) corners of a cell, as offsets in the table (luma
/// changes fastest, then Cb, then Cr).
const CORNER: [usize; 4] = [0, YN, YN * CN, YN * CN + YN];
/// What the weights of one interpolation sum to, as a shift.
const WEIGHT_BITS: u32 = 2 * C_BITS + Y_BITS;

/// The table: each node's SDR Y', Cb and Cr as 8-bit codes with 3
/// fractional bits, packed in one `u64` ([`pack`]), so that one load reads
/// a node and one multiplication weighs all three.
struct Lut {
    nodes: Vec<u64>,
}

/// The bits of each component in a packed node: 11 (8.3 fixed point) times
/// weights summing to 2^[`WEIGHT_BITS`] (10) stay under 2^21, so the three
/// never carry into one another.
const LANE: u32 = 21;
const MASK: u64 = (1 << LANE) - 1;

/// A node from 16-bit (8.8) Y', Cb, Cr.
fn pack(y: u16, cb: u16, cr: u16) -> u64 {
    let q = |v: u16| ((u64::from(v) + 16) >> 5).min(2047);
    q(y) | (q(cb) << LANE) | (q(cr) << (2 * LANE))
}

/// Tone maps one source's pictures (see the module docs).
pub(crate) struct YccToneMap {
    lut: Arc<Lut>,
    size: (usize, usize),
    threads: usize,
    /// The chroma planes being made (copied into the frame after).
    cb: Vec<u8>,
    cr: Vec<u8>,
}

/// A source picture's planes.
struct Src<'a> {
    planes: [&'a [u8]; 3],
    strides: [usize; 3],
    w: usize,
    h: usize,
}

impl YccToneMap {
    /// The mapper for a source of `colour` whose first picture is
    /// `first`, when it is an HDR source in the one format this reads.
    pub(crate) fn for_source(colour: &Colour, first: &frame::Video) -> Option<YccToneMap> {
        let hdr = colour.hdr()?;
        (first.format() == Pixel::YUV420P10LE).then(|| YccToneMap {
            lut: shared_table(hdr, colour.peak_nits(), colour.full_range()),
            size: (first.width() as usize, first.height() as usize),
            threads: super::settings::cores().clamp(1, 8),
            cb: Vec::new(),
            cr: Vec::new(),
        })
    }

    /// `src`'s SDR picture: BT.709 limited-range 8-bit 4:2:0, tagged.
    pub(crate) fn apply(&mut self, src: &frame::Video) -> Result<frame::Video, Error> {
        let (w, h) = (src.width() as usize, src.height() as usize);
        if src.format() != Pixel::YUV420P10LE || (w, h) != self.size {
            return Err(Error::Media(
                "the source's HDR pictures changed format or size mid-stream".into(),
            ));
        }
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        self.cb.resize(cw * ch, 0);
        self.cr.resize(cw * ch, 0);
        let input = Src {
            planes: [src.data(0), src.data(1), src.data(2)],
            strides: [src.stride(0), src.stride(1), src.stride(2)],
            w,
            h,
        };
        let mut out = frame::Video::new(Pixel::YUV420P, w as u32, h as u32);
        let stride = out.stride(0);
        let rows = ch.div_ceil(self.threads).max(8);
        let (lut, cb, cr) = (&*self.lut, &mut self.cb[..], &mut self.cr[..]);
        let luma = out.data_mut(0).chunks_mut(2 * rows * stride);
        let chroma = cb.chunks_mut(rows * cw).zip(cr.chunks_mut(rows * cw));
        let parts: Vec<Part> = (luma.zip(chroma).enumerate())
            .map(|(i, (y, (cb, cr)))| Part {
                first: i * rows,
                stride,
                y,
                cb,
                cr,
            })
            .collect();
        // The parts are taken by this thread and helpers (a helper that
        // cannot be spawned leaves its share to the others).
        let (n, work) = (parts.len(), Mutex::new(parts));
        let run = || loop {
            let next = work.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match next {
                Some(part) => map_rows(lut, &input, part),
                None => break,
            }
        };
        std::thread::scope(|s| {
            for _ in 1..n {
                if std::thread::Builder::new().spawn_scoped(s, run).is_err() {
                    break;
                }
            }
            run();
        });
        for (plane, made) in [(1, &self.cb), (2, &self.cr)] {
            let stride = out.stride(plane);
            for (dst, row) in out.data_mut(plane).chunks_mut(stride).zip(made.chunks(cw)) {
                dst[..cw].copy_from_slice(row);
            }
        }
        out.set_pts(src.pts());
        out.set_color_primaries(Primaries::BT709);
        out.set_color_transfer_characteristic(Trc::BT709);
        out.set_color_space(Space::BT709);
        out.set_color_range(Range::MPEG);
        Ok(out)
    }
}

/// One thread's share of the output: block rows from `first` on.
struct Part<'a> {
    first: usize,
    stride: usize,
    y: &'a mut [u8],
    cb: &'a mut [u8],
    cr: &'a mut [u8],
}

/// A 10-bit sample of row `row` (little-endian), capped at 1023.
fn sample(row: &[u8], x: usize) -> u16 {
    u16::from_le_bytes([row[2 * x], row[2 * x + 1]]).min(1023)
}

/// The table's node for chroma `(cb, cr)`: the cell's first entry and the
/// four corners' bilinear weights (summing to 256).
fn cell(cb: u16, cr: u16) -> (usize, [u32; 4]) {
    const ONE: u32 = 1 << C_BITS;
    let (bi, bf) = (usize::from(cb >> C_BITS), u32::from(cb) & (ONE - 1));
    let (ri, rf) = (usize::from(cr >> C_BITS), u32::from(cr) & (ONE - 1));
    let w = [
        (ONE - bf) * (ONE - rf),
        bf * (ONE - rf),
        (ONE - bf) * rf,
        bf * rf,
    ];
    ((ri * CN + bi) * YN, w)
}

/// Node `i` of the table bilinearly interpolated in (Cb, Cr) with
/// weights `w` (summing to 2^(2 × [`C_BITS`])), still packed.
fn node(lut: &Lut, i: usize, w: &[u32; 4]) -> u64 {
    CORNER
        .iter()
        .zip(w)
        .map(|(o, &w)| lut.nodes[i + o] * u64::from(w))
        .sum()
}

/// Between interpolated nodes `a` and `b` at luma `v`'s fraction:
/// component `k` (Y', Cb, Cr) as an 8-bit code.
fn lerp(a: u64, b: u64, v: u16, k: u32) -> u8 {
    const ONE: u64 = 1 << Y_BITS;
    const SHIFT: u32 = WEIGHT_BITS + 3;
    let f = u64::from(v) & (ONE - 1);
    let sum = ((a * (ONE - f) + b * f) >> (LANE * k)) & MASK;
    ((sum + (1 << (SHIFT - 1))) >> SHIFT).min(255) as u8
}

/// One 2×2 block of 10-bit lumas `v` sharing chroma `(cb, cr)`: its four
/// 8-bit lumas, and its Cb and Cr at the block's mean luma. The two luma
/// nodes around the mean are interpolated in (Cb, Cr) once and serve
/// every pixel between them (most blocks: their lumas are within 16 codes).
fn map_block(lut: &Lut, v: [u16; 4], (cb, cr): (u16, u16)) -> ([u8; 4], u8, u8) {
    let (base, w) = cell(cb, cr);
    let index = |v: u16| usize::from(v >> Y_BITS);
    let mean = ((v.iter().map(|&v| u32::from(v)).sum::<u32>() + 2) / 4) as u16;
    let around = |v: u16| {
        let i = base + index(v);
        (node(lut, i, &w), node(lut, i + 1, &w))
    };
    let (a, b) = around(mean);
    let y = v.map(|v| match index(v) == index(mean) {
        true => lerp(a, b, v, 0),
        false => {
            let (a, b) = around(v);
            lerp(a, b, v, 0)
        }
    });
    (y, lerp(a, b, mean, 1), lerp(a, b, mean, 2))
}

/// Maps `part`'s block rows of `src` through `lut`.
fn map_rows(lut: &Lut, src: &Src, part: Part) {
    let Part {
        first,
        stride,
        y,
        cb,
        cr,
    } = part;
    let cw = src.w.div_ceil(2);
    for (r, (cb_out, cr_out)) in cb.chunks_mut(cw).zip(cr.chunks_mut(cw)).enumerate() {
        let by = first + r;
        let line = |p: usize, row: usize| &src.planes[p][row * src.strides[p]..];
        let (cb_in, cr_in) = (line(1, by), line(2, by));
        let luma = [line(0, 2 * by), line(0, (2 * by + 1).min(src.h - 1))];
        for bx in 0..cw {
            let (x0, x1) = (2 * bx, (2 * bx + 1).min(src.w - 1));
            let v = [
                sample(luma[0], x0),
                sample(luma[0], x1),
                sample(luma[1], x0),
                sample(luma[1], x1),
            ];
            let chroma = (sample(cb_in, bx), sample(cr_in, bx));
            let (out, b, c) = map_block(lut, v, chroma);
            for (k, (row, x)) in [(0, x0), (0, x1), (1, x0), (1, x1)].into_iter().enumerate() {
                if let Some(o) = y.get_mut((2 * r + row) * stride + x) {
                    *o = out[k];
                }
            }
            cb_out[bx] = b;
            cr_out[bx] = c;
        }
    }
}

/// What a table is computed for: HDR, peak (bits of the f64), full range.
type Kind = (Hdr, u64, bool);

/// The table for these arguments ([`table`]): the last one made, if it
/// was for the same, else a new one, which is kept in its place.
fn shared_table(hdr: Hdr, peak_nits: f64, full: bool) -> Arc<Lut> {
    static LAST: Mutex<Option<(Kind, Arc<Lut>)>> = Mutex::new(None);
    let kind = (hdr, peak_nits.to_bits(), full);
    let last = |guard: &Option<(Kind, Arc<Lut>)>| {
        guard
            .as_ref()
            .filter(|(k, _)| *k == kind)
            .map(|(_, t)| t.clone())
    };
    if let Some(t) = last(&LAST.lock().unwrap_or_else(|e| e.into_inner())) {
        return t;
    }
    // Computed outside the lock: two jobs of other kinds need not wait.
    let made = Arc::new(table(hdr, peak_nits, full));
    *LAST.lock().unwrap_or_else(|e| e.into_inner()) = Some((kind, made.clone()));
    made
}

/// The table for `hdr` with the tone mapper's peak at `peak_nits`, for
/// limited-range (or, `full`, full-range) BT.2020 Y'CbCr.
fn table(hdr: Hdr, peak_nits: f64, full: bool) -> Lut {
    let to709 = tonelut::gamut_2020_to_709();
    let peak = (peak_nits / 100.0).max(1.0);
    let (y0, ys, cs) = match full {
        true => (0.0, 1023.0, 1023.0),
        false => (64.0, 876.0, 896.0),
    };
    let mut lut = Lut {
        nodes: Vec::with_capacity(YN * CN * CN),
    };
    for i in 0..YN * CN * CN {
        let code = |k: usize, bits: u32| (k << bits) as f64;
        let y = (code(i % YN, Y_BITS) - y0) / ys;
        let cb = (code(i / YN % CN, C_BITS) - 512.0) / cs;
        let cr = (code(i / (YN * CN), C_BITS) - 512.0) / cs;
        // BT.2020 non-constant luminance.
        let r = y + 1.4746 * cr;
        let b = y + 1.8814 * cb;
        let g = (y - 0.2627 * r - 0.0593 * b) / 0.6780;
        let rgb = [r, g, b].map(|v| v.clamp(0.0, 1.0));
        let [ocr, oy, ocb] = tonelut::to_ycbcr(tonelut::map(hdr, rgb, &to709, peak));
        lut.nodes.push(pack(oy, ocb, ocr));
    }
    lut
}

#[cfg(test)]
#[path = "ycctone_tests.rs"]
mod tests;
