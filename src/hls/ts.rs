//! MPEG-TS packet parsing (ISO/IEC 13818-1): packet headers, PAT/PMT
//! sections, PES headers, and whether an access unit holds an IDR. Trusts
//! no length field and never panics on malformed input.

/// Size of a TS packet.
pub(crate) const TS: usize = 188;

/// A parsed TS packet header.
pub(crate) struct Pkt<'a> {
    pub pid: u16,
    pub start: bool,
    pub random_access: bool,
    pub payload: &'a [u8],
}

pub(crate) fn parse(p: &[u8]) -> Option<Pkt<'_>> {
    if p.len() < TS || p[0] != 0x47 {
        return None;
    }
    let start = p[1] & 0x40 != 0;
    let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
    let afc = (p[3] >> 4) & 3;
    let mut at = 4;
    let mut random_access = false;
    if afc & 2 != 0 {
        let len = usize::from(p[4]);
        if len > 0 {
            random_access = p.get(5).is_some_and(|f| f & 0x40 != 0);
        }
        at = 5 + len;
    }
    let payload = if afc & 1 != 0 {
        p.get(at..TS).unwrap_or(&[])
    } else {
        &[]
    };
    Some(Pkt {
        pid,
        start,
        random_access,
        payload,
    })
}

/// The section of a PSI payload that starts in this packet.
pub(crate) fn section(payload: &[u8]) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    payload.get(1 + pointer..)
}

/// PMT PID from a PAT section (first program that is not the NIT).
pub(crate) fn pat_pmt_pid(sec: &[u8]) -> Option<u16> {
    if *sec.first()? != 0 {
        return None;
    }
    let len = (usize::from(sec.get(1)? & 0x0f) << 8) | usize::from(*sec.get(2)?);
    let end = (3 + len).saturating_sub(4).min(sec.len());
    let mut i = 8;
    while i + 4 <= end {
        let program = (u16::from(sec[i]) << 8) | u16::from(sec[i + 1]);
        let pid = (u16::from(sec[i + 2] & 0x1f) << 8) | u16::from(sec[i + 3]);
        if program != 0 {
            return Some(pid);
        }
        i += 4;
    }
    None
}

/// The first H.264 (0x1b) or HEVC (0x24) stream's PID from a PMT section.
pub(crate) fn pmt_video_pid(sec: &[u8]) -> Option<u16> {
    if *sec.first()? != 2 {
        return None;
    }
    let len = (usize::from(sec.get(1)? & 0x0f) << 8) | usize::from(*sec.get(2)?);
    let end = (3 + len).saturating_sub(4).min(sec.len());
    let info = (usize::from(sec.get(10)? & 0x0f) << 8) | usize::from(*sec.get(11)?);
    let mut i = 12 + info;
    while i + 5 <= end {
        let kind = sec[i];
        let pid = (u16::from(sec[i + 1] & 0x1f) << 8) | u16::from(sec[i + 2]);
        let es_info = (usize::from(sec[i + 3] & 0x0f) << 8) | usize::from(sec[i + 4]);
        if kind == 0x1b || kind == 0x24 {
            return Some(pid);
        }
        i += 5 + es_info;
    }
    None
}

/// (PTS, the PES payload) of a PES that starts in `payload`.
pub(crate) fn pes(payload: &[u8]) -> Option<(Option<i64>, &[u8])> {
    if payload.get(..3)? != [0, 0, 1] {
        return None;
    }
    let flags = *payload.get(7)?;
    let header_len = usize::from(*payload.get(8)?);
    let data = payload.get(9 + header_len..).unwrap_or(&[]);
    let pts = if flags & 0x80 != 0 {
        let b = payload.get(9..14)?;
        Some(
            (i64::from(b[0] >> 1 & 0x07) << 30)
                | (i64::from(b[1]) << 22)
                | (i64::from(b[2] >> 1) << 15)
                | (i64::from(b[3]) << 7)
                | i64::from(b[4] >> 1),
        )
    } else {
        None
    };
    Some((pts, data))
}

/// The PTS of the first video PES in a TS segment (its presentation
/// start), if the bytes hold one.
pub(crate) fn first_video_pts(data: &[u8]) -> Option<i64> {
    let (mut pmt, mut video) = (None, None);
    for p in data.chunks(TS) {
        let pkt = parse(p)?;
        if pkt.pid == 0 && pkt.start {
            pmt = section(pkt.payload).and_then(pat_pmt_pid).or(pmt);
        } else if Some(pkt.pid) == pmt && pkt.start {
            video = section(pkt.payload).and_then(pmt_video_pid).or(video);
        } else if Some(pkt.pid) == video && pkt.start {
            if let Some((Some(pts), _)) = pes(pkt.payload) {
                return Some(pts);
            }
        }
    }
    None
}

/// True when a TS chunk starts a decodable run: its first video PES is a
/// keyframe (random access flag, or an IDR/IRAP in its first bytes), or
/// its program has no video at all.
pub(crate) fn starts_with_key(data: &[u8]) -> bool {
    let (mut pmt, mut video, mut programs) = (None, None, false);
    for p in data.chunks(TS) {
        let Some(pkt) = parse(p) else { return false };
        if pkt.pid == 0 && pkt.start {
            pmt = section(pkt.payload).and_then(pat_pmt_pid).or(pmt);
        } else if Some(pkt.pid) == pmt && pkt.start {
            programs = true;
            video = section(pkt.payload).and_then(pmt_video_pid).or(video);
        } else if Some(pkt.pid) == video && pkt.start {
            let idr = pes(pkt.payload).is_some_and(|(_, es)| has_idr(es));
            return pkt.random_access || idr;
        }
    }
    programs && video.is_none()
}

/// True when the Annex B bytes hold an IDR slice (H.264 NAL type 5) or an
/// HEVC IRAP (types 16..=21) before any other slice.
pub(crate) fn has_idr(data: &[u8]) -> bool {
    let mut i = 0;
    while let Some(pos) = data
        .get(i..)
        .and_then(|d| d.windows(3).position(|w| w == [0, 0, 1]))
    {
        let nal = i + pos + 3;
        let Some(&b) = data.get(nal) else {
            return false;
        };
        match b & 0x1f {
            5 => return true,
            1 => return false,
            _ => {}
        }
        let hevc = (b >> 1) & 0x3f;
        if (16..=21).contains(&hevc) && b & 0x81 == 0 {
            return true;
        }
        i = nal;
    }
    false
}
