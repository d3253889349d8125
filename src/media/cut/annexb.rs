//! H.264 packets of an mp4 (`avcC`: NAL units behind big-endian lengths,
//! parameter sets in the sample entry) made Annex B (start codes, the
//! parameter sets said again before every IDR), as MPEG-TS carries them —
//! what FFmpeg's `h264_mp4toannexb` does, for the packets a clip copies.
//! The `avcC` record and the lengths are read by `media::paramsets`.

use crate::media::paramsets;

/// An `avcC` record: the NAL length size and the parameter sets.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AvcC {
    length_size: usize,
    /// SPS then PPS NAL units, each with its start code.
    parameter_sets: Vec<u8>,
}

const START: [u8; 4] = [0, 0, 0, 1];
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;

impl AvcC {
    /// Parses `extradata`; `None` unless it is an `avcC` record (Annex B
    /// extradata means the packets carry their own start codes).
    pub(super) fn parse(b: &[u8]) -> Option<AvcC> {
        if b.len() < 7 || b[0] != 1 {
            return None;
        }
        let (length_size, sets) = paramsets::record_units(b, false)?;
        if length_size == 3 {
            return None;
        }
        let mut parameter_sets = Vec::new();
        for nal in sets {
            parameter_sets.extend_from_slice(&START);
            parameter_sets.extend_from_slice(nal);
        }
        Some(AvcC {
            length_size,
            parameter_sets,
        })
    }

    /// The NAL units of a packet; `None` if its lengths do not add up or
    /// one is empty.
    fn units<'a>(&self, p: &'a [u8]) -> Option<Vec<&'a [u8]>> {
        let units = paramsets::prefixed_units(p, self.length_size)?;
        units.iter().all(|n| !n.is_empty()).then_some(units)
    }

    /// Whether the packet parses and holds an IDR slice (`None`: it does
    /// not parse).
    pub(super) fn idr(&self, p: &[u8]) -> Option<bool> {
        let units = self.units(p)?;
        Some(units.iter().any(|n| n[0] & 0x1f == NAL_IDR))
    }

    /// The packet in Annex B, the parameter sets first when it holds an
    /// IDR slice and none of its own; `None` if it does not parse.
    pub(super) fn annex_b(&self, p: &[u8]) -> Option<Vec<u8>> {
        let units = self.units(p)?;
        let mut out = Vec::with_capacity(p.len() + self.parameter_sets.len() + 16);
        let idr = units.iter().any(|n| n[0] & 0x1f == NAL_IDR);
        if idr && !units.iter().any(|n| n[0] & 0x1f == NAL_SPS) {
            out.extend_from_slice(&self.parameter_sets);
        }
        for n in units {
            out.extend_from_slice(&START);
            out.extend_from_slice(n);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avcc() -> Vec<u8> {
        // version 1, High 4.0, 4-byte lengths, one SPS (3 bytes), one PPS (2).
        vec![
            1, 100, 0, 40, 0xff, 0xe1, 0, 3, 0x67, 1, 2, 1, 0, 2, 0x68, 9,
        ]
    }

    #[test]
    fn an_idr_gets_the_parameter_sets_and_start_codes() {
        let c = AvcC::parse(&avcc()).unwrap();
        let idr = [0, 0, 0, 2, 0x65, 7, 0, 0, 0, 1, 0x06];
        assert_eq!(c.idr(&idr), Some(true));
        let out = c.annex_b(&idr).unwrap();
        let want = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 9, 0, 0, 0, 1, 0x65, 7, 0, 0, 0, 1, 0x06,
        ];
        assert_eq!(out, want);
        let p = [0, 0, 0, 2, 0x41, 3];
        assert_eq!(c.idr(&p), Some(false));
        assert_eq!(c.annex_b(&p).unwrap(), [0, 0, 0, 1, 0x41, 3]);
    }

    #[test]
    fn what_does_not_parse_is_refused() {
        assert_eq!(AvcC::parse(&[0, 0, 0, 1, 0x67]), None);
        assert_eq!(AvcC::parse(&avcc()[..10]), None);
        let c = AvcC::parse(&avcc()).unwrap();
        assert_eq!(c.idr(&[0, 0, 0, 9, 0x65]), None);
        assert_eq!(c.annex_b(&[0, 0, 0, 0]), None);
        assert_eq!(c.annex_b(&[0, 0]), None);
    }
}
