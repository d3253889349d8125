//! Parameter sets of a copied H.264 or HEVC stream, followed packet by
//! packet: a copied rung is described once (its `avcC`/`hvcC` in the init
//! segment, its `CODECS` in the master), so a source whose SPS or PPS
//! change mid-stream (two encodes joined end to end, a camera switching
//! profile) is not copied. Each parameter set met in a packet (Annex B
//! or length-prefixed) must be one already seen, or the first of its kind.
//! Sets that differ only in their id are counted as a change too (the
//! rule is on bytes, not ids): such a source is encoded, which is safe.

use ffmpeg_next::codec::Id;

/// The parameter sets seen so far, by NAL unit type.
#[derive(Debug, Default)]
pub(crate) struct ParamSets {
    hevc: bool,
    /// Length-prefix size of non-Annex-B packets (from `avcC`/`hvcC`).
    length_size: usize,
    seen: Vec<(u8, Vec<u8>)>,
    /// Nothing to follow (another codec).
    off: bool,
}

/// Splits Annex B bytes at their start codes.
fn annex_b_units(b: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= b.len() {
        if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(b.len(), |&n| n - 3);
        while end > s && b[end - 1] == 0 {
            end -= 1;
        }
        units.push(&b[s..end]);
    }
    units
}

fn is_annex_b(b: &[u8]) -> bool {
    b.starts_with(&[0, 0, 1]) || b.starts_with(&[0, 0, 0, 1])
}

/// Splits length-prefixed NAL units (`None` when the lengths do not add up).
pub(super) fn prefixed_units(mut b: &[u8], size: usize) -> Option<Vec<&[u8]>> {
    if size == 0 {
        return None;
    }
    let mut units = Vec::new();
    while !b.is_empty() {
        let len = b
            .get(..size)?
            .iter()
            .fold(0usize, |n, x| (n << 8) | usize::from(*x));
        units.push(b.get(size..size + len)?);
        b = &b[size + len..];
    }
    Some(units)
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
    ])))
}

/// `count` units of a record, each behind a `u16` length, from `*at`.
fn take<'a>(b: &'a [u8], at: &mut usize, count: usize, units: &mut Vec<&'a [u8]>) -> Option<()> {
    for _ in 0..count {
        let len = u16_at(b, *at)?;
        units.push(b.get(*at + 2..*at + 2 + len)?);
        *at += 2 + len;
    }
    Some(())
}

/// The sets of an `avcC` or `hvcC` record, and its length size.
pub(super) fn record_units(b: &[u8], hevc: bool) -> Option<(usize, Vec<&[u8]>)> {
    let mut units = Vec::new();
    if hevc {
        let size = usize::from(*b.get(21)? & 3) + 1;
        let mut at = 23;
        for _ in 0..*b.get(22)? {
            let n = u16_at(b, at + 1)?;
            at += 3;
            take(b, &mut at, n, &mut units)?;
        }
        return Some((size, units));
    }
    let size = usize::from(*b.get(4)? & 3) + 1;
    let mut at = 6;
    take(b, &mut at, usize::from(*b.get(5)? & 0x1f), &mut units)?;
    let pps = usize::from(*b.get(at)?);
    at += 1;
    take(b, &mut at, pps, &mut units)?;
    Some((size, units))
}

impl ParamSets {
    /// Follows a stream of codec `id` whose extradata is `extra`.
    pub(crate) fn new(id: Id, extra: &[u8]) -> ParamSets {
        let hevc = match id {
            Id::H264 => false,
            Id::HEVC => true,
            _ => {
                return ParamSets {
                    off: true,
                    ..ParamSets::default()
                }
            }
        };
        let mut sets = ParamSets {
            hevc,
            length_size: 4,
            ..ParamSets::default()
        };
        let units = if is_annex_b(extra) {
            annex_b_units(extra)
        } else if let Some((size, units)) = record_units(extra, hevc) {
            sets.length_size = size;
            units
        } else {
            Vec::new()
        };
        for u in units {
            // Seeded from the sample entry: never a change.
            if let Some(t) = sets.kind(u) {
                sets.seen.push((t, u.to_vec()));
            }
        }
        sets
    }

    /// The parameter-set type of a NAL unit, if it is one.
    fn kind(&self, nal: &[u8]) -> Option<u8> {
        let h = *nal.first()?;
        let t = if self.hevc { (h >> 1) & 0x3f } else { h & 0x1f };
        let set = if self.hevc {
            (32..=34).contains(&t)
        } else {
            t == 7 || t == 8
        };
        set.then_some(t)
    }

    /// Follows one packet; `Err` says why it cannot be copied.
    pub(crate) fn check(&mut self, data: &[u8]) -> Result<(), String> {
        if self.off {
            return Ok(());
        }
        let units = if is_annex_b(data) {
            annex_b_units(data)
        } else {
            prefixed_units(data, self.length_size)
                .ok_or("a video packet's NAL unit lengths do not add up")?
        };
        for u in units {
            let Some(t) = self.kind(u) else { continue };
            if self.seen.iter().any(|(k, s)| *k == t && s == u) {
                continue;
            }
            if self.seen.iter().any(|(k, _)| *k == t) {
                return Err("the source's parameter sets (SPS/PPS) change mid-stream".into());
            }
            self.seen.push((t, u.to_vec()));
        }
        Ok(())
    }
}

/// The parameter sets of `source`'s video stream, to follow.
pub(crate) fn of(source: &super::input::Source) -> ParamSets {
    match source.ictx.stream(source.video_index) {
        Some(st) => {
            let par = st.parameters();
            ParamSets::new(par.id(), &crate::ffi::par_extradata(&par))
        }
        None => ParamSets::new(Id::None, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: [u8; 4] = [0x67, 0x42, 0xc0, 0x1e];
    const SPS2: [u8; 4] = [0x67, 0x64, 0x00, 0x1e];
    const PPS: [u8; 2] = [0x68, 0xce];

    fn annex_b(units: &[&[u8]]) -> Vec<u8> {
        units
            .iter()
            .flat_map(|u| [&[0, 0, 0, 1][..], u].concat())
            .collect()
    }

    #[test]
    fn repeated_sets_pass_and_a_new_one_is_a_change() {
        let mut p = ParamSets::new(Id::H264, &[]);
        let idr: &[u8] = &[0x65, 1, 2];
        assert_eq!(p.check(&annex_b(&[&SPS, &PPS, idr])), Ok(()));
        assert_eq!(p.check(&annex_b(&[&[0x41, 9]])), Ok(()));
        assert_eq!(p.check(&annex_b(&[&SPS, &PPS, idr])), Ok(()));
        assert!(p.check(&annex_b(&[&SPS2, &PPS, idr])).is_err());
    }

    #[test]
    fn an_avcc_seeds_the_sets_and_sizes_the_lengths() {
        let mut avcc = vec![1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 4];
        avcc.extend(SPS);
        avcc.extend([1, 0, 2]);
        avcc.extend(PPS);
        let mut p = ParamSets::new(Id::H264, &avcc);
        let same = [&[0, 0, 0, 4][..], &SPS, &[0, 0, 0, 2], &[0x65, 7]].concat();
        assert_eq!(p.check(&same), Ok(()));
        let other = [&[0, 0, 0, 4][..], &SPS2, &[0, 0, 0, 2], &[0x65, 7]].concat();
        assert!(p.check(&other).is_err());
        assert!(
            p.check(&[0, 0, 0, 9, 0x65]).is_err(),
            "lengths that do not add up"
        );
        // Other codecs are not followed.
        assert_eq!(ParamSets::new(Id::AV1, &[]).check(&[1, 2, 3]), Ok(()));
    }

    #[test]
    fn hevc_sets_are_followed_by_their_type() {
        let vps: &[u8] = &[0x40, 0x01, 0x0c];
        let sps: &[u8] = &[0x42, 0x01, 0x01];
        let sps2: &[u8] = &[0x42, 0x01, 0x02];
        let mut p = ParamSets::new(Id::HEVC, &annex_b(&[vps, sps]));
        assert_eq!(p.check(&annex_b(&[vps, sps, &[0x26, 0x01, 5]])), Ok(()));
        assert!(p.check(&annex_b(&[vps, sps2])).is_err());
    }
}
