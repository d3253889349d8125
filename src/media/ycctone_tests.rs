use super::*;

/// A `w`×`h` 10-bit 4:2:0 picture of one colour (limited range codes).
fn flat(w: u32, h: u32, [y, cb, cr]: [u16; 3]) -> frame::Video {
    let mut f = frame::Video::new(Pixel::YUV420P10LE, w, h);
    for (plane, v) in [(0, y), (1, cb), (2, cr)] {
        for px in f.data_mut(plane).chunks_mut(2) {
            px.copy_from_slice(&v.to_le_bytes());
        }
    }
    f
}

/// A PQ source (the mapper reads its transfer and range only).
fn pq() -> Colour {
    Colour {
        transfer: Trc::SMPTE2084,
        range: Range::MPEG,
        ..Colour::default()
    }
}

/// Every pixel of plane `p` within `w`×`h` (plane size).
fn pixels(f: &frame::Video, p: usize, w: usize, h: usize) -> Vec<u8> {
    let stride = f.stride(p);
    (0..h)
        .flat_map(|y| f.data(p)[y * stride..y * stride + w].to_vec())
        .collect()
}

/// The exact mapping of one limited-range 10-bit colour, 8-bit codes.
fn exact(hdr: Hdr, [y, cb, cr]: [u16; 3]) -> [u8; 3] {
    let y = (f64::from(y) - 64.0) / 876.0;
    let (cb, cr) = (
        (f64::from(cb) - 512.0) / 896.0,
        (f64::from(cr) - 512.0) / 896.0,
    );
    let r = y + 1.4746 * cr;
    let b = y + 1.8814 * cb;
    let g = (y - 0.2627 * r - 0.0593 * b) / 0.6780;
    let rgb = [r, g, b].map(|v| v.clamp(0.0, 1.0));
    let m = tonelut::gamut_2020_to_709();
    let [ocr, oy, ocb] = tonelut::to_ycbcr(tonelut::map(hdr, rgb, &m, 10.0));
    [oy, ocb, ocr].map(|v| ((u32::from(v) + 128) >> 8).min(255) as u8)
}

#[test]
fn flat_colours_come_out_as_the_exact_mapping_says() {
    let colours = [
        [64, 512, 512],
        [940, 512, 512],
        [400, 512, 512],
        [500, 430, 600],
        [300, 600, 380],
        [700, 470, 540],
        [123, 517, 509],
    ];
    for hdr in [Hdr::Pq, Hdr::Hlg] {
        let mut colour = pq();
        if hdr == Hdr::Hlg {
            colour.transfer = Trc::ARIB_STD_B67;
        }
        for c in colours {
            let src = flat(64, 32, c);
            let mut map = YccToneMap::for_source(&colour, &src).expect("a 10-bit HDR source");
            let out = map.apply(&src).expect("mapped");
            assert_eq!(out.format(), Pixel::YUV420P);
            let want = exact(hdr, c);
            for (p, (w, h)) in [(0, (64, 32)), (1, (32, 16)), (2, (32, 16))] {
                let got = pixels(&out, p, w, h);
                assert!(got.iter().all(|&v| v == got[0]), "{hdr:?} {c:?}: not flat");
                // Interpolated from nodes 16 codes apart: within 2 codes.
                assert!(
                    got[0].abs_diff(want[p]) <= 2,
                    "{hdr:?} {c:?} plane {p}: {} vs {}",
                    got[0],
                    want[p]
                );
            }
        }
    }
    // Black is black, the peak white.
    let mut map = YccToneMap::for_source(&pq(), &flat(8, 8, [64, 512, 512])).expect("mapper");
    let out = map.apply(&flat(8, 8, [64, 512, 512])).expect("mapped");
    assert_eq!(
        [out.data(0)[0], out.data(1)[0], out.data(2)[0]],
        [16, 128, 128]
    );
}

#[test]
fn odd_sizes_and_any_thread_count_fill_every_pixel() {
    for (w, h) in [(7, 5), (1, 1), (33, 67), (640, 361)] {
        let src = {
            let mut f = flat(w, h, [64, 512, 512]);
            // A luma ramp, so each pixel's output differs from black.
            let stride = f.stride(0);
            for y in 0..h as usize {
                for x in 0..w as usize {
                    let v = (200 + (x * 7 + y * 3) % 600) as u16;
                    f.data_mut(0)[y * stride + 2 * x..][..2].copy_from_slice(&v.to_le_bytes());
                }
            }
            f
        };
        let mut one = None;
        for threads in [1, 2, 3, 8] {
            let mut map = YccToneMap::for_source(&pq(), &src).expect("mapper");
            map.threads = threads;
            let out = map.apply(&src).expect("mapped");
            let luma = pixels(&out, 0, w as usize, h as usize);
            assert!(luma.iter().all(|&v| v > 16), "{w}x{h}: a pixel left black");
            let all = [
                luma,
                pixels(&out, 1, w.div_ceil(2) as usize, h.div_ceil(2) as usize),
                pixels(&out, 2, w.div_ceil(2) as usize, h.div_ceil(2) as usize),
            ];
            // The same picture whatever the split.
            assert_eq!(
                one.get_or_insert_with(|| all.clone()),
                &all,
                "{w}x{h} {threads}"
            );
        }
    }
}

#[test]
fn only_10_bit_hdr_of_one_size_is_mapped() {
    let src = flat(16, 16, [400, 512, 512]);
    assert!(YccToneMap::for_source(&Colour::default(), &src).is_none());
    let eight = frame::Video::new(Pixel::YUV420P, 16, 16);
    assert!(YccToneMap::for_source(&pq(), &eight).is_none());
    let mut map = YccToneMap::for_source(&pq(), &src).expect("mapper");
    assert!(map.apply(&flat(32, 16, [400, 512, 512])).is_err());
    assert!(map.apply(&eight).is_err());
}
