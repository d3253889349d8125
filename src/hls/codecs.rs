//! RFC 6381 codec strings for `CODECS` attributes.

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

#[cfg(test)]
mod tests {
    use super::*;

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
