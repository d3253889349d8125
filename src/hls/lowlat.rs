//! Low-Latency HLS (RFC 8216bis §4.4.3.7–§4.4.5.2, §6.2.5.2) for a live
//! with `latency: low`.
//!
//! FFmpeg's `hls` muxer knows nothing of parts, so a low-latency rung's
//! muxer cuts by time (`split_by_time`) every [`part_seconds`]: each file
//! it closes is one **part**. The rung's [`super::publish::Publisher`]
//! hands each to [`Low::take`], which groups parts into **segments**:
//! a segment closes at the first part that starts with a keyframe once it
//! holds a segment's length (a ladder's encoders force a keyframe every 2
//! s, five parts; a copied rung has its publisher's keyframes), or before
//! a part would stretch it past the target duration (keyframes off the
//! part grid: that segment is not independent, and the playlist stops
//! saying `INDEPENDENT-SEGMENTS`). A segment's file is its parts' bytes
//! end to end (MPEG-TS packets, or fMP4 fragments after one init
//! section), so each is written once more, whole, for the VOD and for
//! players that do not read parts.
//!
//! The playlist ([`Low::render`]) lists the whole segments, the parts of
//! the last two and of the open one, a preload hint for the next part,
//! `EXT-X-SERVER-CONTROL` (blocking reloads, delta updates: version 9),
//! `EXT-X-PART-INF`, a
//! `PROGRAM-DATE-TIME` per segment (when its first frame reached the
//! muxer, wall clock) and a rendition report per sibling rung. Parts go
//! to the rung's [`edge`](super::edge) before any playlist lists them and
//! are served from there while fresh; their files are removed once no
//! playlist lists them.

use super::edge::{self, EdgeGuard, Position};
use crate::playlist::{Key, Segment};
use bytes::Bytes;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whole segments whose parts the playlist still lists.
const PARTS_OF_WHOLE: usize = 2;

/// Frame rates a stream's timestamps may only approximate: FLV's
/// millisecond timestamps (RTMP) make 30 fps read as 30.303.
const RATES: [f64; 9] = [
    24.0,
    25.0,
    30.0,
    48.0,
    50.0,
    60.0,
    24000.0 / 1001.0,
    30000.0 / 1001.0,
    60000.0 / 1001.0,
];

/// `fps` as the standard rate within 1.5% of it, if there is one.
fn standard(fps: f64) -> f64 {
    let fps = if fps.is_finite() && fps >= 1.0 {
        fps
    } else {
        30.0
    };
    let off = |r: &f64| (fps - r).abs() / r;
    RATES
        .iter()
        .filter(|r| off(r) < 0.015)
        .min_by(|a, b| off(a).total_cmp(&off(b)))
        .copied()
        .unwrap_or(fps)
}

/// The muxer's cut interval (`hls_time`) for video at `fps`: 0.2 s (or
/// 0.25 s) when it is a whole number of frames, else 0.4 s, 0.5 s or 1 s:
/// the first whose parts, a varying number of frames, stay within the
/// rule that parts are at least 85% of the part target (9 fps at 0.4 s
/// made parts of 4 and 3 frames, 0.44 and 0.33 s: against a target of
/// 0.45, refused). At whole frame rates 1 s is always a whole number of
/// frames. Each divides the 2 s keyframe interval (10, 8, 5, 4 or 2
/// parts), and at 25, 30, 50 and 60 fps every cut falls on a frame time
/// that is whole in milliseconds, so FLV's millisecond timestamps do not
/// jitter around it (a third of a second did: 30 fps in milliseconds made
/// parts of 11, 9 and 10 frames).
pub(crate) fn part_seconds(fps: f64) -> f64 {
    let fps = standard(fps);
    let whole = |c: f64| (c * fps - (c * fps).round()).abs() < 1e-3;
    if let Some(c) = [0.2, 0.25].into_iter().find(|c| whole(*c)) {
        return c;
    }
    let fits = |c: f64| whole(c) || (c * fps).floor() / fps >= 0.85 * target_of(fps, c);
    [0.4, 0.5].into_iter().find(|c| fits(*c)).unwrap_or(1.0)
}

/// The `PART-TARGET` for video at `fps`: the longest part the muxer cuts
/// (it cuts between frames) plus 5 ms of timestamp jitter, rounded up to
/// the millisecond.
pub(crate) fn part_target(fps: f64) -> f64 {
    let fps = standard(fps);
    target_of(fps, part_seconds(fps))
}

/// [`part_target`] at a standard `fps` cut every `cut` seconds.
fn target_of(fps: f64, cut: f64) -> f64 {
    let frames = (fps * cut - 1e-6).ceil().max(1.0);
    ((frames / fps + 0.005) * 1000.0 - 1e-6).ceil() / 1000.0
}

/// How long a blocked reload waits at most: three target durations
/// (§6.2.5.2; the 2 s segments may run to 2 s and a part).
pub(crate) fn patience(part_target: f64) -> Duration {
    Duration::from_secs_f64(part_target * 3.0 + 6.0)
}

/// One part: a file the muxer closed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    pub name: String,
    pub duration: f64,
    pub independent: bool,
    /// A live's publisher came back here: the part starts a segment, after
    /// `EXT-X-DISCONTINUITY`.
    pub restart: bool,
}

/// A segment [`Low::take`] closed: its parts' bytes, end to end.
pub(crate) struct Closed {
    pub duration: f64,
    pub bytes: Vec<Bytes>,
    pub independent: bool,
    /// It starts where a live's publisher came back.
    pub restart: bool,
}

/// A low-latency rung's parts and open segment.
pub(crate) struct Low {
    part_target: f64,
    /// Parts of the segment being made, and their bytes.
    open: Vec<Part>,
    open_bytes: Vec<Bytes>,
    /// Parts of the last whole segments (oldest first).
    recent: std::collections::VecDeque<Vec<Part>>,
    /// Parts that no playlist lists any more, to remove.
    expired: Vec<String>,
    /// Whole segments so far, and whether all start with a keyframe.
    segments: u64,
    independent: bool,
    /// Wall clock at the start of the first part.
    t0: Option<SystemTime>,
    edge: EdgeGuard,
}

impl Low {
    /// For video `id`'s rung `rung`, at `part_target` seconds a part.
    pub(crate) fn new(id: crate::storage::VideoId, rung: &str, part_target: f64) -> Low {
        let patience = patience(part_target);
        Low {
            part_target,
            open: Vec::new(),
            open_bytes: Vec::new(),
            recent: Default::default(),
            expired: Vec::new(),
            segments: 0,
            independent: true,
            t0: None,
            edge: edge::open(id, rung, patience),
        }
    }

    /// Takes the muxer's next part; the segment it closes, if it does
    /// (`target`: the playlist's target duration, `nominal`: a segment's
    /// length).
    pub(crate) fn take(
        &mut self,
        part: Part,
        (plain, served): (Bytes, Bytes),
        timing: (f64, u64),
    ) -> Option<Closed> {
        if self.t0.is_none() {
            let back = Duration::from_secs_f64(part.duration.clamp(0.0, 60.0));
            self.t0 = Some(SystemTime::now() - back);
        }
        let closed = self.closes(&part, timing).then(|| self.close()).flatten();
        self.edge.edge().add_part(part.name.clone(), served);
        self.open.push(part);
        self.open_bytes.push(plain);
        closed
    }

    /// True when `part` closes the open segment before it joins the next
    /// (see [`Low::take`]).
    pub(crate) fn closes(&self, part: &Part, (nominal, target): (f64, u64)) -> bool {
        let have: f64 = self.open.iter().map(|p| p.duration).sum();
        let full = have >= nominal - self.part_target / 2.0;
        let overlong = (have + part.duration).round() as u64 > target;
        !self.open.is_empty() && ((part.independent && (full || part.restart)) || overlong)
    }

    /// Closes the open segment (the end of the broadcast, or
    /// [`Low::take`]'s cut); `None` when it holds no part.
    pub(crate) fn close(&mut self) -> Option<Closed> {
        if self.open.is_empty() {
            return None;
        }
        let parts = std::mem::take(&mut self.open);
        let closed = Closed {
            duration: parts.iter().map(|p| p.duration).sum(),
            bytes: std::mem::take(&mut self.open_bytes),
            independent: parts[0].independent,
            restart: parts[0].restart,
        };
        self.independent &= closed.independent;
        self.segments += 1;
        self.recent.push_back(parts);
        if self.recent.len() > PARTS_OF_WHOLE + 1 {
            let old = self.recent.pop_front().unwrap_or_default();
            self.expired.extend(old.into_iter().map(|p| p.name));
        }
        Some(closed)
    }
}

/// What a playlist shows: the rung's whole segments from `first` on.
pub(crate) struct View<'a> {
    pub segments: &'a [Segment],
    pub first: usize,
    /// `EVENT` (the broadcast is kept), else a live window.
    pub event: bool,
    pub map: Option<&'a str>,
    pub target: u64,
    /// The next part's name (the preload hint).
    pub hint: &'a str,
    /// `EXT-X-DISCONTINUITY-SEQUENCE` (those of the segments slid out).
    pub discontinuities: u64,
    /// Encrypted: the key the first shown segment is under (restated when
    /// it does not start one), and the key the open segment starts with.
    pub keys: (Option<&'a Key>, Option<&'a Key>),
}

impl Low {
    /// The playlist for `view`, and the position it puts the edge at.
    pub(crate) fn render(&self, view: &View<'_>) -> (String, Position) {
        let mut t = String::with_capacity(1024 + view.segments.len() * 48);
        self.head(&mut t, view);
        let mut start = 0.0;
        let whole = view.segments.len();
        let first_with_parts = whole.saturating_sub(self.recent.len().min(PARTS_OF_WHOLE));
        let older = self.recent.len().saturating_sub(PARTS_OF_WHOLE);
        for (i, s) in view.segments.iter().enumerate() {
            if i >= view.first {
                if s.discontinuity {
                    t.push_str("#EXT-X-DISCONTINUITY\n");
                }
                let restated = (i == view.first).then_some(view.keys.0).flatten();
                key_line(&mut t, s.key.as_ref().or(restated));
                self.date(&mut t, start);
                if i >= first_with_parts {
                    let parts = &self.recent[older + i - first_with_parts];
                    self.parts(&mut t, parts);
                }
                let _ = write!(t, "#EXTINF:{:.6},\n{}\n", s.duration.max(0.0), s.uri);
            }
            start += s.duration;
        }
        if self.open.first().is_some_and(|p| p.restart) {
            t.push_str("#EXT-X-DISCONTINUITY\n");
        }
        key_line(&mut t, view.keys.1);
        if !self.open.is_empty() {
            self.date(&mut t, start);
            self.parts(&mut t, &self.open);
        }
        let _ = writeln!(t, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"", view.hint);
        let position = Position {
            open_msn: whole as u64,
            parts: self.open.len() as u64,
            prev_parts: self.recent.back().map_or(0, |p| p.len() as u64),
            hint: view.hint.to_owned(),
            ended: false,
        };
        self.reports(&mut t);
        (t, position)
    }

    fn head(&self, t: &mut String, view: &View<'_>) {
        let pt = self.part_target;
        let _ = write!(
            t,
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{}\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={:.1},PART-HOLD-BACK={:.3}\n\
             #EXT-X-PART-INF:PART-TARGET={pt:.3}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
            view.target,
            // Delta updates (`_HLS_skip=YES`, `crate::playlist::delta`):
            // the shortest skip boundary the spec allows.
            view.target as f64 * 6.0,
            pt * 3.0,
            view.first
        );
        if view.discontinuities > 0 {
            let _ = writeln!(t, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", view.discontinuities);
        }
        if view.event {
            t.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n");
        }
        if self.independent {
            t.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        }
        if let Some(map) = view.map {
            let _ = writeln!(t, "#EXT-X-MAP:URI=\"{map}\"");
        }
    }

    fn parts(&self, t: &mut String, parts: &[Part]) {
        for p in parts {
            let _ = write!(
                t,
                "#EXT-X-PART:DURATION={:.5},URI=\"{}\"",
                p.duration, p.name
            );
            t.push_str(if p.independent {
                ",INDEPENDENT=YES\n"
            } else {
                "\n"
            });
        }
    }

    fn date(&self, t: &mut String, offset: f64) {
        if let Some(t0) = self.t0 {
            let at = t0 + Duration::from_secs_f64(offset.max(0.0));
            let _ = writeln!(t, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339(at));
        }
    }

    /// `EXT-X-RENDITION-REPORT` for each other rung of the video being
    /// made now (its playlist is `../{rung}/video.m3u8`).
    fn reports(&self, t: &mut String) {
        let (id, rung) = self.edge.key();
        if rung.is_empty() {
            return;
        }
        for (other, p) in edge::siblings(id, rung) {
            let last = match (p.parts, p.prev_parts) {
                (0, 0) => None,
                (0, prev) => p.open_msn.checked_sub(1).map(|m| (m, prev - 1)),
                (n, _) => Some((p.open_msn, n - 1)),
            };
            if let (false, Some((msn, part))) = (other.is_empty(), last) {
                let _ = writeln!(
                    t,
                    "#EXT-X-RENDITION-REPORT:URI=\"../{other}/{}\",LAST-MSN={msn},LAST-PART={part}",
                    crate::storage::names::PLAYLIST
                );
            }
        }
    }

    /// Moves the edge to `to` (once the playlist there is written).
    pub(crate) fn edge(&self) -> std::sync::Arc<edge::Edge> {
        self.edge.edge().clone()
    }

    /// Parts no playlist lists any more (taken: removed once the playlist
    /// that dropped them is written); at the end of the broadcast, every
    /// part left.
    pub(crate) fn expired(&mut self, all: bool) -> Vec<String> {
        if all {
            let parts = self.recent.drain(..).flatten().chain(self.open.drain(..));
            self.expired.extend(parts.map(|p| p.name));
        }
        std::mem::take(&mut self.expired)
    }
}

/// `#EXT-X-KEY` for `key`, if there is one.
fn key_line(t: &mut String, key: Option<&Key>) {
    if let Some(k) = key {
        let _ = write!(t, "#EXT-X-KEY:METHOD={}", k.method);
        if let Some(uri) = &k.uri {
            let _ = write!(t, ",URI=\"{uri}\"");
        }
        if let Some(iv) = &k.iv {
            let _ = write!(t, ",IV={iv}");
        }
        t.push('\n');
    }
}

/// `2026-12-07T12:00:00.123Z`.
fn rfc3339(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let (secs, ms) = ((ms / 1000) as i64, ms % 1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
#[path = "lowlat_tests.rs"]
mod tests;
