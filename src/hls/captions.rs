//! Caption tracks as HLS renditions: the time windows of a rung's
//! segments, where an MPEG-TS video's time 0 is, and publishing a track's
//! WebVTT segments and playlist (for the job's embedded subtitles and for
//! captions uploaded later alike).

use crate::captions;
use crate::catalog::CaptionTrack;
use crate::storage::{names, Store, VideoId};
use crate::Error;

/// The time windows of a published rung's segments.
pub(crate) fn windows(durations: impl Iterator<Item = f64>) -> Vec<(f64, f64)> {
    let mut t = 0.0;
    durations
        .map(|d| {
            let w = (t, d);
            t += d;
            w
        })
        .collect()
}

/// How much of a segment's start [`mpegts_origin`] reads first: its
/// tables and first video packet are in the first few of its 188-byte
/// packets, so a caption change need not fetch megabytes of video.
const ORIGIN_HEAD: u64 = 188 * 512;

/// The MPEG-TS timestamp (90 kHz) of a video's time 0: its first TS
/// segment's first video PTS (0 for fMP4, whose timestamps start at 0).
/// Reads the segment's head, and the whole of it only when that is not
/// enough.
pub(crate) fn mpegts_origin(store: &Store, id: VideoId, first_segment: &str) -> u64 {
    if !first_segment.ends_with(".ts") {
        return 0;
    }
    let Ok(Some((size, _))) = store.stat(id, first_segment) else {
        return 0;
    };
    let head = store.read_range(id, first_segment, 0, size.min(ORIGIN_HEAD));
    let pts = head.ok().and_then(|b| super::ts::first_video_pts(&b));
    let pts = match pts {
        None if size > ORIGIN_HEAD => store
            .read(id, first_segment)
            .ok()
            .and_then(|b| super::ts::first_video_pts(&b)),
        pts => pts,
    };
    pts.map_or(0, |p| p.max(0) as u64)
}

/// Publishes a caption track: its segments, then its playlist.
pub(crate) fn publish_track(
    store: &Store,
    id: VideoId,
    track: &CaptionTrack,
    cues: &[captions::Cue],
    windows: &[(f64, f64)],
    mpegts: u64,
) -> Result<u64, Error> {
    let v = track.version;
    let t = captions::write_segments(cues, windows, mpegts, |i| names::caption_segment(v, i));
    let mut bytes = 0;
    for (name, text) in &t.segments {
        store.write(id, &format!("{}/{name}", track.dir), text.as_bytes())?;
        bytes += text.len() as u64;
    }
    let playlist = t.playlist.to_string();
    store.write(id, &track.playlist(), playlist.as_bytes())?;
    Ok(bytes + playlist.len() as u64)
}
