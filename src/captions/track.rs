//! A caption track as segmented WebVTT beside the video's segments.

use super::{timestamp, Cue};
use crate::playlist::{MediaPlaylist, PlaylistType, Segment};

/// A track ready to publish: its segments (name, WebVTT text) and the
/// media playlist over them.
#[derive(Debug, Clone)]
pub struct SegmentedTrack {
    pub segments: Vec<(String, String)>,
    pub playlist: MediaPlaylist,
}

/// Most windows a grid has (more than a day of 1 s segments).
const MAX_GRID: usize = 100_000;

/// Segment windows (start, duration) of `seg` seconds over `duration`
/// (the last one shorter), for a video whose own segments are not known.
pub fn segment_grid(duration: f64, seg: f64) -> Vec<(f64, f64)> {
    let seg = seg.max(1.0);
    // At most MAX_GRID windows, whatever length a probe or a cue claims.
    let duration = if duration.is_finite() { duration } else { 0.0 };
    let duration = duration.min(seg * MAX_GRID as f64);
    let mut out = Vec::new();
    let mut t = 0.0;
    while t < duration - 1e-6 {
        let d = seg.min(duration - t);
        out.push((t, d));
        t += seg;
    }
    if out.is_empty() {
        out.push((0.0, duration.max(0.001)));
    }
    out
}

/// The windows (`first..last`, indices into `windows`) cue `c` lands in:
/// those it overlaps, found by binary search (`windows` are in order and
/// do not overlap). Empty when the cue starts after the last window ends.
fn span(c: &Cue, windows: &[(f64, f64)], end: f64) -> std::ops::Range<usize> {
    if c.start >= end || c.end <= c.start {
        return 0..0;
    }
    // The first window that ends after the cue starts, up to the first
    // that starts at or after the cue ends.
    let first = windows.partition_point(|(s, d)| s + d <= c.start);
    let last = windows.partition_point(|(s, _)| *s < c.end);
    first..last.max(first)
}

fn header(mpegts: u64) -> String {
    format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n\n")
}

/// The bytes [`write_segments`] would write for `cues` over `windows`
/// (segments and playlist), computed without writing them: a cue's text
/// is repeated in every window it overlaps, so a small body can ask for a
/// great deal; callers bound this before any work.
pub fn output_size(cues: &[Cue], windows: &[(f64, f64)], mpegts: u64) -> u64 {
    let end = windows.last().map_or(0.0, |(s, d)| s + d);
    let mut bytes = (header(mpegts).len() as u64 + PLAYLIST_LINE) * windows.len() as u64;
    for c in cues {
        let n = span(c, windows, end).len() as u64;
        let line = timestamp(c.start).len() + timestamp(c.end.min(end)).len() + 8 + c.text.len();
        bytes = bytes.saturating_add(n.saturating_mul(line as u64));
    }
    bytes + PLAYLIST_HEAD
}

/// An upper bound of one segment's lines in the playlist
/// (`#EXTINF:<f64>,\nv<u32>_<i>.vtt\n`), and of the playlist's head and
/// tail.
const PLAYLIST_LINE: u64 = 64;
const PLAYLIST_HEAD: u64 = 256;

/// Cuts `cues` at the video's segment `windows`: each segment holds the
/// cues that overlap it (a cue across a boundary is in both, as RFC 8216
/// allows), with an `X-TIMESTAMP-MAP` mapping cue time 0 to `mpegts` (the
/// MPEG-TS timestamp, 90 kHz, of the video's time 0). Cues past the last
/// window are dropped; ends past it are clipped. The work is the cues (a
/// binary search each), the windows and the output, never cues × windows.
pub fn write_segments(
    cues: &[Cue],
    windows: &[(f64, f64)],
    mpegts: u64,
    name_of: impl Fn(usize) -> String,
) -> SegmentedTrack {
    let end = windows.last().map_or(0.0, |(s, d)| s + d);
    let mut order: Vec<usize> = (0..cues.len()).collect();
    order.sort_by(|&a, &b| cues[a].start.total_cmp(&cues[b].start));
    let mut texts: Vec<String> = windows.iter().map(|_| header(mpegts)).collect();
    for i in order {
        let c = &cues[i];
        let line = format!(
            "{} --> {}\n{}\n\n",
            timestamp(c.start),
            timestamp(c.end.min(end)),
            c.text
        );
        for w in span(c, windows, end) {
            texts[w].push_str(&line);
        }
    }
    let mut playlist = MediaPlaylist {
        target_duration: 1,
        playlist_type: Some(PlaylistType::Vod),
        ended: true,
        ..MediaPlaylist::default()
    };
    let mut segments = Vec::with_capacity(windows.len());
    for (i, (&(_, dur), text)) in windows.iter().zip(texts).enumerate() {
        let name = name_of(i);
        playlist.target_duration = playlist.target_duration.max(dur.ceil() as u64);
        playlist.segments.push(Segment::new(dur, name.clone()));
        segments.push((name, text));
    }
    SegmentedTrack { segments, playlist }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_stays_bounded_whatever_length_it_is_told() {
        assert_eq!(segment_grid(1e12, 6.0).len(), MAX_GRID);
        assert_eq!(segment_grid(f64::INFINITY, 6.0), vec![(0.0, 0.001)]);
        assert_eq!(segment_grid(f64::NAN, 2.0), vec![(0.0, 0.001)]);
    }

    #[test]
    fn the_output_of_one_long_cue_is_known_before_it_is_written() {
        let cue = Cue {
            start: 0.0,
            end: 12.0 * 3600.0,
            text: "x".repeat(50_000),
        };
        let w = segment_grid(12.0 * 3600.0, 6.0);
        // 7,200 windows of 50 KB each: 360 MB from a 50 KB body.
        assert!(output_size(std::slice::from_ref(&cue), &w, 0) > 360_000_000);
        // A cue that ends before another begins lands in its windows only.
        let short = Cue {
            start: 6.0,
            end: 12.0,
            text: "y".into(),
        };
        assert_eq!(span(&short, &w, 43_200.0), 1..2);
        let past = Cue {
            start: 50_000.0,
            end: 50_001.0,
            text: "z".into(),
        };
        assert_eq!(span(&past, &w, 43_200.0), 0..0);
    }

    #[test]
    fn cues_land_in_every_segment_they_overlap() {
        let cues = vec![
            Cue {
                start: 1.0,
                end: 2.0,
                text: "a".into(),
            },
            Cue {
                start: 5.5,
                end: 6.5,
                text: "b".into(),
            },
            Cue {
                start: 11.0,
                end: 20.0,
                text: "c".into(),
            },
        ];
        let w = segment_grid(12.0, 6.0);
        assert_eq!(w, vec![(0.0, 6.0), (6.0, 6.0)]);
        let t = write_segments(&cues, &w, 1920, |i| format!("v1_{i:05}.vtt"));
        assert_eq!(t.segments.len(), 2);
        let (a, b) = (&t.segments[0].1, &t.segments[1].1);
        assert!(a.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:1920,LOCAL:00:00:00.000\n\n"));
        assert!(
            a.contains("\na\n") && a.contains("\nb\n") && !a.contains("\nc\n"),
            "{a}"
        );
        assert!(
            b.contains("\nb\n") && b.contains("00:00:11.000 --> 00:00:12.000\nc"),
            "{b}"
        );
        let text = t.playlist.to_string();
        let written: usize = t.segments.iter().map(|(_, s)| s.len()).sum::<usize>() + text.len();
        assert!(output_size(&cues, &w, 1920) >= written as u64);
        assert!(output_size(&cues, &w, 1920) < written as u64 + 512);
        assert!(
            text.contains("#EXT-X-PLAYLIST-TYPE:VOD") && text.contains("v1_00001.vtt"),
            "{text}"
        );
        assert!(text.contains("#EXT-X-TARGETDURATION:6"), "{text}");
    }
}
