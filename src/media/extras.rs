//! What a finished job makes beside the playlists: caption tracks from the
//! source's subtitles, the storyboard, and the MP4 download.

use super::job::Job;
use crate::captions;
use crate::catalog::{CaptionSource, CaptionTrack};
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

impl Job<'_> {
    /// Caption tracks from the source's text subtitles, cut at the top
    /// rung's segments; a folder an uploaded track holds is not reused.
    pub(super) fn write_captions(&mut self) -> Result<u64, Error> {
        let ctx = self.ctx;
        let top = self.outs[0].publisher.published();
        let w = windows(top.segments.iter().map(|s| s.duration));
        let first = top
            .segments
            .first()
            .map(|s| self.outs[0].publisher.rel(&s.uri))
            .unwrap_or_default();
        let mpegts = mpegts_origin(ctx.store, ctx.id, &first);
        let taken: Vec<String> = self
            .events
            .uploaded_captions()
            .into_iter()
            .map(|c| c.dir)
            .collect();
        let mut bytes = 0;
        for track in std::mem::take(&mut self.subs) {
            let (stream, cues) = track.into_cues();
            if cues.is_empty() {
                continue;
            }
            let dir = (1..)
                .map(|n| names::caption_dir(&stream.lang, n))
                .find(|d| !taken.contains(d) && !self.captions.iter().any(|c| &c.dir == d))
                .unwrap_or_default();
            let c = CaptionTrack {
                lang: stream.lang,
                name: stream.name,
                source: CaptionSource::Embedded,
                default: stream.default,
                forced: stream.forced,
                dir,
                version: ctx.generation + 1,
            };
            bytes += publish_track(ctx.store, ctx.id, &c, &cues, &w, mpegts)?;
            self.captions.push(c);
        }
        Ok(bytes)
    }

    /// The storyboard (a missing one never fails a playable video).
    pub(super) fn write_storyboard(&mut self, duration: f64) -> (u64, bool) {
        let sb = std::mem::replace(
            &mut self.video.storyboard,
            super::storyboard::Storyboard::new(None),
        );
        match sb.write(self.ctx.store, self.ctx.id, duration) {
            Ok(bytes) => (bytes, bytes > 0),
            Err(e) => {
                tracing::warn!(error = %e, "could not write the storyboard");
                (0, false)
            }
        }
    }

    /// `download.mp4` from the top rung's segments (not for encrypted
    /// videos: the download would be their clear text). A failure is
    /// logged; the video stays playable.
    pub(super) fn write_download(&mut self) -> (u64, bool) {
        let ctx = self.ctx;
        if !ctx.settings.downloads || ctx.settings.encrypt {
            return (0, false);
        }
        // It takes about what its segments take: reserved first, so the
        // quota is never crossed (a download that does not fit is not made).
        let sizes = |p: &super::publish::Publisher| -> u64 {
            p.published()
                .segments
                .iter()
                .filter_map(|s| std::fs::metadata(ctx.store.path(ctx.id, &p.rel(&s.uri))).ok())
                .map(|m| m.len())
                .sum()
        };
        let need = sizes(&self.outs[0].publisher)
            + self
                .group
                .iter()
                .find(|g| g.track.default)
                .map_or(0, |g| sizes(&g.out.publisher));
        if self.events.planned(need).is_err() {
            self.source
                .notes
                .push("no MP4 download: it would cross the storage quota".into());
            return (0, false);
        }
        // A rendition's files in order: its init segment (fMP4), then its
        // segments.
        let files = |p: &super::publish::Publisher| -> Vec<std::path::PathBuf> {
            let init = super::hls::is_fmp4(ctx.settings).then(|| {
                ctx.store
                    .path(ctx.id, &p.rel(&names::init_name(ctx.generation)))
            });
            let segments = p.published().segments.iter();
            init.into_iter()
                .chain(segments.map(|s| ctx.store.path(ctx.id, &p.rel(&s.uri))))
                .collect()
        };
        let mut parts = vec![super::download::Part {
            files: files(&self.outs[0].publisher),
            video: true,
            audio: true,
        }];
        // With an audio group, the default track's segments give the sound.
        if let Some(g) = self.group.iter().find(|g| g.track.default) {
            parts.push(super::download::Part {
                files: files(&g.out.publisher),
                video: false,
                audio: true,
            });
        }
        match super::download::make(ctx.store, ctx.id, parts) {
            Ok(bytes) => (bytes, true),
            Err(e) => {
                tracing::warn!(error = %e, "could not make the MP4 download");
                (0, false)
            }
        }
    }
}
