//! The end of a [`Job`]: drain every stage, publish the finished
//! playlists, the I-frame playlists, the master and the poster, and say
//! what was made.

use super::context::{JobContext, Produced};
use super::job::{Audio, Job};
use super::outputs::RungOutput;
use crate::catalog::{OutputInfo, Rendition};
use crate::hls::master::IFrames;
use crate::storage::names;
use crate::Error;

impl Job<'_> {
    /// Drains every stage, publishes the finished playlists, the I-frame
    /// playlists, the master and the poster.
    pub(super) fn finish(mut self) -> Result<Produced, Error> {
        self.finish_chunks()?;
        self.video.finish(&mut self.outs)?;
        let clock = self.clock();
        if let Audio::Encode(a) = &mut self.audio {
            a.finish(&mut self.outs, clock)?;
        }
        let end = super::job::slowest(&self.outs);
        for g in &mut self.group {
            g.chain.finish(std::slice::from_mut(&mut g.out), clock)?;
            g.out.advance(end)?;
        }
        if let (Some(c), Some(copied)) = (&self.cadence, self.outs.iter().find(|o| o.plan.copy)) {
            c.finish(copied.position).map_err(Error::CopyFallback)?;
        }
        if self.outs.iter().any(|o| o.packets == 0) {
            return Err(Error::Unprocessable(
                "no video frame could be decoded from the file".into(),
            ));
        }
        let mut bytes = 0;
        for o in self
            .outs
            .iter_mut()
            .chain(self.group.iter_mut().map(|g| &mut g.out))
        {
            bytes += o.finish()?;
        }
        // Every finished playlist is durable before anything names them.
        self.publishing.flush()?;
        self.events.published(bytes)?;
        let (iframes, iframe_bytes) = self.write_iframe_playlists()?;
        let captioned = self.write_captions()?;
        self.events.published(captioned + iframe_bytes)?;
        if !self.single {
            // It replaces the run-time master: counted is the difference.
            let n = self.write_master(&iframes)?;
            let before = self.master_bytes.unwrap_or(0);
            self.events.published(n.saturating_sub(before))?;
        }
        let poster = std::mem::replace(
            &mut self.video.poster,
            super::poster::PosterPicker::new(None),
        );
        match poster.write(self.ctx.store, self.ctx.id) {
            Ok(bytes) => self.events.published(bytes)?,
            // A missing poster never fails a playable video.
            Err(e) => tracing::warn!(error = %e, "could not write the poster"),
        }
        let duration = self.outs[0].publisher.published().duration();
        let (sb_bytes, storyboard) = self.write_storyboard(duration);
        let (dl_bytes, download) = self.write_download();
        self.events.published(sb_bytes + dl_bytes)?;
        self.report();
        let mut produced = self.produced(&iframes);
        produced.storyboard = storyboard;
        produced.download = download;
        Ok(produced)
    }

    /// I-frame playlists of TS ladders (fMP4 would need byte ranges into
    /// `moof`/`mdat` pairs, which we do not make).
    /// The rungs' I-frame playlists, and the bytes they take.
    fn write_iframe_playlists(&self) -> Result<(Vec<Option<IFrames>>, u64), Error> {
        if self.single {
            return Ok((vec![None; self.outs.len()], 0));
        }
        let mut bytes = 0;
        let mut out = Vec::with_capacity(self.outs.len());
        for o in &self.outs {
            // An encrypted fMP4 segment cannot be read in ranges.
            if o.is_fmp4() && o.publisher.encrypts() {
                out.push(None);
                continue;
            }
            let (f, n) = write_iframe_playlist(self.ctx, o)?;
            bytes += n;
            out.push(Some(f));
        }
        Ok((out, bytes))
    }

    /// What the finished job made, for the record.
    fn produced(&self, iframes: &[Option<IFrames>]) -> Produced {
        let top = self.outs[0].publisher.published();
        let ranged = self.outs.iter().any(|o| o.hdr_range.is_some());
        let renditions = self
            .outs
            .iter()
            .zip(iframes)
            .map(|(o, f)| {
                let (peak, avg) = o.publisher.bitrates();
                let video = o.codecs().unwrap_or_else(|| "avc1.640028".into());
                let has_audio = !matches!(self.audio, Audio::None) || !self.group.is_empty();
                Rendition {
                    playlist: o.publisher.rel(names::PLAYLIST),
                    name: o.plan.name.clone(),
                    width: o.plan.width,
                    height: o.plan.height,
                    bandwidth: peak,
                    average_bandwidth: avg,
                    codecs: if has_audio {
                        format!("{video},mp4a.40.2")
                    } else {
                        video
                    },
                    codec: o.plan.codec.name().to_owned(),
                    frame_rate: f64::from(self.timing.fps),
                    copied: o.plan.copy,
                    progress: 1.0,
                    iframe_playlist: f.as_ref().map(|f| f.uri.clone()),
                    video_range: ranged.then(|| o.hdr_range.unwrap_or("SDR").to_owned()),
                }
            })
            .collect();
        let merged = self.chunks.as_ref().and_then(|c| c.merged());
        let frames = match (self.outs.iter().find(|o| o.plan.copy), merged) {
            (Some(copied), _) => copied.packets,
            (None, Some(m)) => m.frames,
            (None, None) => self.video.encoders.frames(),
        };
        Produced {
            info: OutputInfo {
                width: self.outs[0].plan.width,
                height: self.outs[0].plan.height,
                video_codec: "h264".into(),
                audio_codec: (!matches!(self.audio, Audio::None) || !self.group.is_empty())
                    .then(|| "aac".to_owned()),
                segments: top.segments.len(),
                frames,
                duration: top.duration(),
                segment_seconds: self.ctx.settings.segment_seconds,
                processing_seconds: 0.0,
                chunks: self.chunks.as_ref().map_or(1, |c| c.started as u32),
            },
            renditions,
            copied: self.copy,
            copy_note: self.copy_note.clone(),
            generation: self.ctx.generation,
            captions: self.captions.clone(),
            audio_tracks: self.group.iter().map(|g| g.track.clone()).collect(),
            storyboard: false,
            download: false,
            notes: self.source.notes.clone(),
            colour: Some(merged.map_or_else(|| self.video.colour_info(), |m| m.colour.clone())),
        }
    }
}

/// Scans a finished rung's segments for I-frames (a TS one 64 KiB at a
/// time; an fMP4 one's first sample of each segment) and publishes its
/// I-frame playlist.
fn write_iframe_playlist(ctx: &JobContext<'_>, o: &RungOutput) -> Result<(IFrames, u64), Error> {
    let published = o.publisher.published();
    let path = |uri: &str| ctx.store.path(ctx.id, &o.publisher.rel(uri));
    let segments = match (o.is_fmp4(), &published.map) {
        (true, Some(map)) => {
            let list: Vec<_> = published
                .segments
                .iter()
                .map(|s| (s.uri.clone(), s.duration, path(&s.uri)))
                .collect();
            crate::hls::iframes::scan_fmp4(&path(map), &list)?
        }
        _ => published
            .segments
            .iter()
            .map(|s| {
                Ok(crate::hls::iframes::SegmentIFrames {
                    iframes: crate::hls::iframes::scan_file(&path(&s.uri))?,
                    uri: s.uri.clone(),
                    duration: s.duration,
                })
            })
            .collect::<Result<Vec<_>, std::io::Error>>()?,
    };
    let (mut playlist, peak, average) = crate::hls::iframes::iframe_playlist(&segments);
    // A live's publisher came back: its first I-frame after the cut too.
    for s in published.segments.iter().filter(|s| s.discontinuity) {
        if let Some(e) = playlist.segments.iter_mut().find(|e| e.uri == s.uri) {
            e.discontinuity = true;
        }
    }
    playlist.map = published.map.clone().filter(|_| o.is_fmp4());
    let rel = o.publisher.rel(names::IFRAME_PLAYLIST);
    let text = playlist.to_string();
    ctx.store.write(ctx.id, &rel, text.as_bytes())?;
    let iframes = IFrames {
        uri: rel,
        peak,
        average,
    };
    Ok((iframes, text.len() as u64))
}
