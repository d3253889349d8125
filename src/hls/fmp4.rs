//! Just enough ISO BMFF to tell whether an fMP4 fragment starts with a
//! sync sample (a part's `INDEPENDENT=YES`): every track fragment's first
//! sample, from `trun`'s first-sample or per-sample flags, else `tfhd`'s
//! default (ISO/IEC 14496-12 §8.8.7, §8.8.8). Audio samples are all sync,
//! so "every track starts on a sync sample" is "the video does".

/// `sample_is_non_sync_sample` in a sample-flags word.
const NON_SYNC: u32 = 0x0001_0000;

/// The boxes in `data`: (type, body).
fn boxes(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let size = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
        let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
        let (head, size) = match size {
            1 => (
                16,
                usize::try_from(u64::from_be_bytes(data.get(8..16)?.try_into().ok()?)).ok()?,
            ),
            0 => (8, data.len()),
            n => (8, n),
        };
        let body = data.get(head..size)?;
        data = &data[size..];
        Some((kind, body))
    })
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// `tfhd`'s default sample flags, if it carries them.
fn default_flags(tfhd: &[u8]) -> Option<u32> {
    let flags = u32_at(tfhd, 0)? & 0x00ff_ffff;
    if flags & 0x20 == 0 {
        return None;
    }
    // version+flags, track_ID, then the optional fields in order.
    let mut at = 8;
    for (bit, len) in [(0x1, 8), (0x2, 4), (0x8, 4), (0x10, 4)] {
        if flags & bit != 0 {
            at += len;
        }
    }
    u32_at(tfhd, at)
}

/// `trun`'s flags for its first sample, if it states them.
fn first_sample_flags(trun: &[u8]) -> Option<u32> {
    let flags = u32_at(trun, 0)? & 0x00ff_ffff;
    let mut at = 8 + if flags & 0x1 != 0 { 4 } else { 0 };
    if flags & 0x4 != 0 {
        return u32_at(trun, at);
    }
    if flags & 0x400 == 0 || u32_at(trun, 4)? == 0 {
        return None;
    }
    at += if flags & 0x100 != 0 { 4 } else { 0 };
    at += if flags & 0x200 != 0 { 4 } else { 0 };
    u32_at(trun, at)
}

/// True when every track fragment of the fragments in `data` says it
/// starts with a sync sample (and there is at least one).
pub(crate) fn starts_with_sync(data: &[u8]) -> bool {
    let Some((_, moof)) = boxes(data).find(|(k, _)| k == b"moof") else {
        return false;
    };
    let mut any = false;
    for (_, traf) in boxes(moof).filter(|(k, _)| k == b"traf") {
        let default = boxes(traf)
            .find(|(k, _)| k == b"tfhd")
            .and_then(|(_, b)| default_flags(b));
        let first = boxes(traf)
            .find(|(k, _)| k == b"trun")
            .and_then(|(_, b)| first_sample_flags(b));
        // Unknown (left to `trex` in the init section): not claimed.
        match first.or(default) {
            Some(f) if f & NON_SYNC == 0 => any = true,
            _ => return false,
        }
    }
    any
}

/// The `track_ID` of the video track (`hdlr` `vide`) of an init segment.
pub(crate) fn video_track(init: &[u8]) -> Option<u32> {
    let (_, moov) = boxes(init).find(|(k, _)| k == b"moov")?;
    boxes(moov)
        .filter(|(k, _)| k == b"trak")
        .find_map(|(_, trak)| {
            let (_, mdia) = boxes(trak).find(|(k, _)| k == b"mdia")?;
            let (_, hdlr) = boxes(mdia).find(|(k, _)| k == b"hdlr")?;
            (hdlr.get(8..12)? == b"vide").then_some(())?;
            let (_, tkhd) = boxes(trak).find(|(k, _)| k == b"tkhd")?;
            let at = if tkhd.first()? == &1 { 20 } else { 12 };
            u32_at(tkhd, at)
        })
}

/// Where the first sample of track `track` (of the first fragment) ends,
/// from the start of `data`: the byte range `[0, end)` holds the fragment's
/// `moof` and that sample (an I-frame entry of an fMP4 segment that starts
/// on a keyframe). Fragments based on their `moof` (FFmpeg's, `dash`).
pub(crate) fn first_sample_end(data: &[u8], track: u32) -> Option<u64> {
    let (moof_start, moof) = moof_at(data)?;
    boxes(moof)
        .filter(|(k, _)| k == b"traf")
        .find_map(|(_, traf)| {
            let (_, tfhd) = boxes(traf).find(|(k, _)| k == b"tfhd")?;
            (u32_at(tfhd, 4)? == track).then_some(())?;
            let (_, trun) = boxes(traf).find(|(k, _)| k == b"trun")?;
            let start = moof_start as u64 + u64::from(trun_data_offset(trun)?);
            Some(start + u64::from(first_sample_size(tfhd, trun)?))
        })
}

/// The first `moof` of `data`: its offset and body.
fn moof_at(data: &[u8]) -> Option<(usize, &[u8])> {
    let mut at = 0usize;
    while let Some(h) = data.get(at..at + 8) {
        let size = u32_at(h, 0)? as usize;
        if size < 8 {
            return None;
        }
        if &h[4..8] == b"moof" {
            return Some((at, data.get(at + 8..at + size)?));
        }
        at = at.checked_add(size)?;
    }
    None
}

fn trun_data_offset(trun: &[u8]) -> Option<u32> {
    let flags = u32_at(trun, 0)? & 0x00ff_ffff;
    (flags & 0x1 != 0).then(|| u32_at(trun, 8)).flatten()
}

/// The first sample's size: `trun`'s own, else `tfhd`'s default.
fn first_sample_size(tfhd: &[u8], trun: &[u8]) -> Option<u32> {
    let flags = u32_at(trun, 0)? & 0x00ff_ffff;
    if flags & 0x200 != 0 {
        let mut at = 8;
        for bit in [0x1, 0x4, 0x100] {
            at += if flags & bit != 0 { 4 } else { 0 };
        }
        return u32_at(trun, at);
    }
    let tf = u32_at(tfhd, 0)? & 0x00ff_ffff;
    if tf & 0x10 == 0 {
        return None;
    }
    let mut at = 8;
    for (bit, len) in [(0x1, 8), (0x2, 4), (0x8, 4)] {
        at += if tf & bit != 0 { len } else { 0 };
    }
    u32_at(tfhd, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    /// A fragment of one track: `tfhd` with default flags `default`, a
    /// `trun` of 2 samples stating its first sample's flags `first`.
    fn fragment(default: u32, first: Option<u32>) -> Vec<u8> {
        let mut tfhd = 0x20u32.to_be_bytes().to_vec();
        tfhd.extend(1u32.to_be_bytes());
        tfhd.extend(default.to_be_bytes());
        let flags: u32 = 0x1 | if first.is_some() { 0x4 } else { 0 };
        let mut trun = flags.to_be_bytes().to_vec();
        trun.extend(2u32.to_be_bytes());
        trun.extend(100u32.to_be_bytes());
        trun.extend(first.map(u32::to_be_bytes).unwrap_or_default());
        let traf = bx(b"traf", &[bx(b"tfhd", &tfhd), bx(b"trun", &trun)].concat());
        let mut data = bx(b"styp", b"msdh");
        data.extend(bx(b"moof", &traf));
        data.extend(bx(b"mdat", &[0; 16]));
        data
    }

    #[test]
    fn the_first_samples_flags_decide() {
        assert!(starts_with_sync(&fragment(NON_SYNC, Some(0x0200_0000))));
        assert!(!starts_with_sync(&fragment(NON_SYNC, None)));
        assert!(starts_with_sync(&fragment(0, None)));
        assert!(!starts_with_sync(&fragment(0, Some(NON_SYNC))));
    }

    #[test]
    fn the_first_sample_of_the_video_track_ends_the_iframe_range() {
        // styp (12 bytes), then a moof whose trun says data at +100 and a
        // first sample of 700 bytes (per-sample sizes).
        let mut tfhd = 0x2_0000u32.to_be_bytes().to_vec();
        tfhd.extend(1u32.to_be_bytes());
        let mut trun = 0x201u32.to_be_bytes().to_vec();
        trun.extend(2u32.to_be_bytes());
        trun.extend(100u32.to_be_bytes());
        trun.extend(700u32.to_be_bytes());
        trun.extend(50u32.to_be_bytes());
        let traf = bx(b"traf", &[bx(b"tfhd", &tfhd), bx(b"trun", &trun)].concat());
        let mut data = bx(b"styp", b"msdh");
        data.extend(bx(b"moof", &traf));
        assert_eq!(first_sample_end(&data, 1), Some(12 + 100 + 700));
        assert_eq!(first_sample_end(&data, 2), None);
        assert_eq!(first_sample_end(b"\0\0\0\x04moof", 1), None);
        // An init segment: the video track's id from its tkhd.
        let hdlr = bx(b"hdlr", &[&[0u8; 8][..], b"vide", &[0; 12]].concat());
        let mut tkhd = vec![0u8; 12];
        tkhd.extend(7u32.to_be_bytes());
        let trak = bx(b"trak", &[bx(b"tkhd", &tkhd), bx(b"mdia", &hdlr)].concat());
        let init = [bx(b"ftyp", b"iso5"), bx(b"moov", &trak)].concat();
        assert_eq!(video_track(&init), Some(7));
        assert_eq!(video_track(b"junk"), None);
    }

    #[test]
    fn garbage_is_not_independent() {
        for d in [
            &b""[..],
            b"\0\0\0\x01moof",
            b"\0\0\0\x10moof\0\0\0\x08traf",
            &[0xff; 64],
        ] {
            assert!(!starts_with_sync(d));
        }
    }
}
