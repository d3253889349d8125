//! What a finished job makes beside the playlists: caption tracks from the
//! source's subtitles, the storyboard, and the MP4 download.

use super::job::Job;
use crate::catalog::{CaptionSource, CaptionTrack};
use crate::hls::captions::{mpegts_origin, publish_track, windows};
use crate::hls::publish::Publisher;
use crate::storage::names;
use crate::Error;

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
        let sizes = |p: &Publisher| -> u64 {
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
        let files = |p: &Publisher| -> Vec<std::path::PathBuf> {
            let init = super::muxer::is_fmp4(ctx.settings).then(|| {
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
