//! Where a clip can copy: a first pass over the source's video packets in
//! the clip's range (read, not decoded) finds the IDR frames that begin
//! and end the stretch copied as it is. Before the first (`head`) and
//! from the last (`tail`) the frames are decoded and encoded again.
//!
//! A keyframe bounds the copy only when it is an IDR slice (nothing after
//! it refers to anything before) and the decoding order does not cross it
//! (no frame decoded before it is shown after it, none decoded after it is
//! shown before it), so the copied packets are exactly the frames between
//! the two instants. Timestamps here are the video stream's.

use super::annexb::AvcC;
use ffmpeg_next::format;

/// One video packet seen by the first pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Seen {
    pub pts: i64,
    pub dts: i64,
    /// A keyframe holding an IDR slice.
    pub idr: bool,
    /// Its NAL units parse.
    pub sound: bool,
}

/// An IDR frame bounding the copy: its timestamp and how far its decoding
/// time is before it (the stream's reordering delay there).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Bound {
    pub pts: i64,
    pub delay: i64,
}

/// A clip that copies `[first.pts, last.pts)`; frames of `[start, first)`
/// and `[last, end)` are encoded.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    pub first: Bound,
    pub last: Bound,
    pub avcc: AvcC,
}

/// Reads the video packets from where `ictx` stands until one is shown
/// a second past `end` (`None`: a packet without timestamps).
pub(super) fn scan(
    ictx: &mut format::context::Input,
    video: usize,
    avcc: &AvcC,
    end: i64,
    second: i64,
) -> Option<Vec<Seen>> {
    let mut seen = Vec::new();
    for (stream, packet) in ictx.packets() {
        if stream.index() != video {
            continue;
        }
        let pts = packet.pts()?;
        let dts = packet.dts()?;
        let data = packet.data().unwrap_or_default();
        let idr = avcc.idr(data);
        seen.push(Seen {
            pts,
            dts,
            idr: packet.is_key() && idr == Some(true),
            sound: idr.is_some() && dts <= pts,
        });
        if pts > end.saturating_add(second) {
            break;
        }
    }
    Some(seen)
}

/// The copy `seen` allows for frames shown in `[start, end)`, if any.
pub(super) fn plan(seen: &[Seen], start: i64, end: i64, avcc: AvcC) -> Option<Plan> {
    let n = seen.len();
    // before[i]: the latest shown of the packets decoded before i;
    // after[i]: the earliest shown of those decoded after i.
    let mut before = vec![i64::MIN; n];
    for i in 1..n {
        before[i] = before[i - 1].max(seen[i - 1].pts);
    }
    let mut after = vec![i64::MAX; n];
    for i in (0..n.saturating_sub(1)).rev() {
        after[i] = after[i + 1].min(seen[i + 1].pts);
    }
    let bound = |i: usize| {
        let s = seen[i];
        (s.idr && before[i] < s.pts && after[i] >= s.pts).then_some(Bound {
            pts: s.pts,
            delay: s.pts - s.dts,
        })
    };
    let first_at = (0..n).find(|&i| seen[i].pts >= start && bound(i).is_some())?;
    let last_at = (first_at + 1..n)
        .rev()
        .find(|&i| seen[i].pts <= end && bound(i).is_some())?;
    if !seen[first_at..last_at].iter().all(|s| s.sound) {
        return None;
    }
    Some(Plan {
        first: bound(first_at)?,
        last: bound(last_at)?,
        avcc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avcc() -> AvcC {
        AvcC::parse(&[1, 100, 0, 40, 0xff, 0xe1, 0, 1, 0x67, 1, 0, 1, 0x68]).unwrap()
    }

    /// Frames 0..n at 1 tick each, IDR every `gop`, one B-frame after
    /// each P (decode order I P B P B …, delay 1 tick).
    fn stream(n: i64, gop: i64) -> Vec<Seen> {
        let mut out = Vec::new();
        let mut f = 0;
        while f < n {
            let end = (f + gop).min(n);
            out.push(Seen {
                pts: f,
                dts: f - 1,
                idr: true,
                sound: true,
            });
            let mut k = f + 1;
            while k < end {
                if k + 1 < end {
                    out.push(Seen {
                        pts: k + 1,
                        dts: k - 1,
                        idr: false,
                        sound: true,
                    });
                    out.push(Seen {
                        pts: k,
                        dts: k,
                        idr: false,
                        sound: true,
                    });
                    k += 2;
                } else {
                    out.push(Seen {
                        pts: k,
                        dts: k - 1,
                        idr: false,
                        sound: true,
                    });
                    k += 1;
                }
            }
            f = end;
        }
        out
    }

    #[test]
    fn the_copy_runs_between_the_first_and_last_idr_in_range() {
        let p = plan(&stream(100, 10), 15, 75, avcc()).unwrap();
        assert_eq!(p.first, Bound { pts: 20, delay: 1 });
        assert_eq!(p.last, Bound { pts: 70, delay: 1 });
        // An IDR at the very start and end bounds it too.
        let p = plan(&stream(100, 10), 20, 70, avcc()).unwrap();
        assert_eq!((p.first.pts, p.last.pts), (20, 70));
        // Within one GOP, or one IDR only: nothing to copy.
        assert_eq!(plan(&stream(100, 10), 21, 29, avcc()), None);
        assert_eq!(plan(&stream(100, 10), 15, 25, avcc()), None);
    }

    #[test]
    fn keyframes_the_order_crosses_or_unsound_packets_bound_nothing() {
        let mut s = stream(100, 10);
        // A frame decoded after the IDR at 20 shown before it (open GOP).
        let at = s.iter().position(|f| f.pts == 20).unwrap();
        s.insert(
            at + 1,
            Seen {
                pts: 19,
                dts: 19,
                idr: false,
                sound: true,
            },
        );
        assert_eq!(plan(&s, 15, 75, avcc()).unwrap().first.pts, 30);
        // A keyframe that is not IDR does not bound.
        let mut s = stream(100, 10);
        s.iter_mut()
            .filter(|f| f.pts == 70)
            .for_each(|f| f.idr = false);
        assert_eq!(plan(&s, 15, 75, avcc()).unwrap().last.pts, 60);
        // A packet whose NAL units do not parse refuses the copy.
        let mut s = stream(100, 10);
        s.iter_mut()
            .filter(|f| f.pts == 44)
            .for_each(|f| f.sound = false);
        assert_eq!(plan(&s, 15, 75, avcc()), None);
    }
}
