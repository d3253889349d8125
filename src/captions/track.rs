//! A caption track as segmented WebVTT beside the video's segments.

use super::{timestamp, Cue};
use crate::playlist::{MediaPlaylist, PlaylistType, Segment};
use std::fmt::Write;

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

/// Cuts `cues` at the video's segment `windows`: each segment holds the
/// cues that overlap it (a cue across a boundary is in both, as RFC 8216
/// allows), with an `X-TIMESTAMP-MAP` mapping cue time 0 to `mpegts` (the
/// MPEG-TS timestamp, 90 kHz, of the video's time 0). Cues past the last
/// window are dropped; ends past it are clipped.
pub fn write_segments(
    cues: &[Cue],
    windows: &[(f64, f64)],
    mpegts: u64,
    name_of: impl Fn(usize) -> String,
) -> SegmentedTrack {
    let end = windows.last().map_or(0.0, |(s, d)| s + d);
    let mut segments = Vec::with_capacity(windows.len());
    let mut playlist = MediaPlaylist {
        target_duration: 1,
        playlist_type: Some(PlaylistType::Vod),
        ended: true,
        ..MediaPlaylist::default()
    };
    for (i, &(start, dur)) in windows.iter().enumerate() {
        let stop = start + dur;
        let mut text = format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n\n");
        for c in cues
            .iter()
            .filter(|c| c.start < stop && c.end > start && c.start < end)
        {
            let _ = write!(
                text,
                "{} --> {}\n{}\n\n",
                timestamp(c.start),
                timestamp(c.end.min(end)),
                c.text
            );
        }
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
        assert!(
            text.contains("#EXT-X-PLAYLIST-TYPE:VOD") && text.contains("v1_00001.vtt"),
            "{text}"
        );
        assert!(text.contains("#EXT-X-TARGETDURATION:6"), "{text}");
    }
}
