//! RFC 6381 codec strings for `CODECS` attributes: H.264's from its SPS,
//! AV1's (`av01.P.LLT.DD`, AV1-ISOBMFF §5) from the `av1C` box and HEVC's
//! (`hvc1.…`, ISO/IEC 14496-15 Annex E) from the `hvcC` box of the init
//! segment the muxer wrote, never FFmpeg 5.1's hls muxer's own strings
//! (it writes a malformed `hvc1` one and none for AV1).

/// `avc1.PPCCLL` from H.264 extradata: an `avcC` record (mp4) or Annex B
/// NAL units with an SPS (libx264's global header, MPEG-TS sources).
pub(crate) fn avc1_codec(extradata: Vec<u8>) -> Option<String> {
    let e = extradata.as_slice();
    let (p, c, l) = if e.first() == Some(&1) && e.len() >= 4 {
        (e[1], e[2], e[3])
    } else {
        // Annex B: find a start code followed by NAL type 7 (SPS).
        let mut i = 0;
        loop {
            let rest = e.get(i..)?;
            let pos = rest.windows(3).position(|w| w == [0, 0, 1])?;
            let nal = i + pos + 3;
            if e.get(nal).is_some_and(|b| b & 0x1f == 7) {
                break (*e.get(nal + 1)?, *e.get(nal + 2)?, *e.get(nal + 3)?);
            }
            i = nal;
        }
    };
    Some(format!("avc1.{p:02x}{c:02x}{l:02x}"))
}

/// The video `CODECS` of an fMP4 init segment: from its `av1C` or `hvcC`.
pub(crate) fn from_init_segment(mp4: &[u8]) -> Option<String> {
    if let Some(b) = find_box(mp4, b"av1C") {
        return av01_codec(b);
    }
    find_box(mp4, b"hvcC").and_then(hvc1_codec)
}

/// The body of the first box of type `kind` (searched for, not walked: the
/// configuration boxes sit deep in `moov`, and a false hit needs a size
/// that fits).
fn find_box<'a>(mp4: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    let mut from = 4;
    while let Some(pos) = mp4.get(from..)?.windows(4).position(|w| w == kind) {
        let at = from + pos;
        let size = u32::from_be_bytes(mp4.get(at - 4..at)?.try_into().ok()?) as usize;
        if size >= 8 && at - 4 + size <= mp4.len() {
            return mp4.get(at + 4..at - 4 + size);
        }
        from = at + 1;
    }
    None
}

/// `av01.P.LLT.DD` from an `av1C` body.
fn av01_codec(c: &[u8]) -> Option<String> {
    let (b1, b2) = (*c.get(1)?, *c.get(2)?);
    let profile = b1 >> 5;
    let level = b1 & 0x1f;
    let tier = if b2 & 0x80 != 0 { 'H' } else { 'M' };
    let depth = match (b2 & 0x40 != 0, b2 & 0x20 != 0) {
        (false, _) => 8,
        (true, false) => 10,
        (true, true) => 12,
    };
    Some(format!("av01.{profile}.{level:02}{tier}.{depth:02}"))
}

/// `hvc1.[A-C]P.C.TL.B…` from an `hvcC` body: profile space and profile,
/// the compatibility flags bit-reversed in hex, tier and level, and the
/// constraint bytes up to the last non-zero one.
fn hvc1_codec(c: &[u8]) -> Option<String> {
    let b1 = *c.get(1)?;
    let space = ["", "A", "B", "C"][usize::from(b1 >> 6)];
    let tier = if b1 & 0x20 != 0 { 'H' } else { 'L' };
    let profile = b1 & 0x1f;
    let compat = u32::from_be_bytes(c.get(2..6)?.try_into().ok()?).reverse_bits();
    let constraints = c.get(6..12)?;
    let level = *c.get(12)?;
    let kept = constraints
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i + 1);
    let mut s = format!("hvc1.{space}{profile}.{compat:X}.{tier}{level}");
    for b in &constraints[..kept] {
        s.push_str(&format!(".{b:X}"));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn av1_and_hevc_strings_from_their_boxes() {
        // Main profile, level 3.1 (5), 8-bit.
        let mut mp4 = vec![0, 0, 0, 12, b'f', b't', b'y', b'p', 0, 0, 0, 0];
        mp4.extend([0, 0, 0, 12, b'a', b'v', b'1', b'C', 0x81, 0x05, 0x0c, 0]);
        assert_eq!(from_init_segment(&mp4).as_deref(), Some("av01.0.05M.08"));
        // Main, tier L, level 93, compatibility 0x60000000, constraints B0.
        let mut mp4 = vec![0, 0, 0, 8, b'f', b'r', b'e', b'e'];
        mp4.extend([0, 0, 0, 30, b'h', b'v', b'c', b'C', 1, 0x01, 0x60, 0, 0, 0]);
        mp4.extend([
            0xb0, 0, 0, 0, 0, 0, 93, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f,
        ]);
        assert_eq!(from_init_segment(&mp4).as_deref(), Some("hvc1.1.6.L93.B0"));
        assert_eq!(from_init_segment(b"no boxes here"), None);
    }

    #[test]
    fn codecs_from_avcc_and_annex_b() {
        assert_eq!(
            avc1_codec(vec![1, 0x64, 0x00, 0x1f, 0xff]).as_deref(),
            Some("avc1.64001f")
        );
        let annexb = vec![
            0, 0, 0, 1, 0x67, 0x4d, 0x40, 0x28, 0xaa, 0, 0, 1, 0x68, 0xee,
        ];
        assert_eq!(avc1_codec(annexb).as_deref(), Some("avc1.4d4028"));
        assert_eq!(avc1_codec(vec![0, 0, 1, 0x68]), None);
        assert_eq!(avc1_codec(vec![]), None);
    }
}
