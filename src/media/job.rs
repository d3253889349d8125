//! One transcode, as a struct with named steps (rust-ffmpeg's
//! `Transcoder` shape): [`Job::open`] plans the ladder and opens every
//! output; [`Job::run`] reads packets and hands each to
//! [`Job::on_video_packet`] or [`Job::on_audio_packet`], publishing what
//! the muxers close; [`Job::finish`] drains, publishes the VOD playlists,
//! the I-frame playlists, the master and the poster, and reports.

use super::audio::VideoClock;
use super::context::{JobContext, JobEvents, Produced, RungProgress};
use super::copy;
use super::input::Source;
use super::outputs::{AudioParams, RungOutput, RungSpec, VideoParams};
pub(super) use super::plan::Audio;
use super::plan::{estimate_bytes, open_audio, open_subtitles, plan_video, VideoPlan};
use super::timing::{rescale, MICROS};
use super::video::VideoChain;
use crate::hls::ladder;
use crate::hls::master::{self, IFrames};
use crate::hls::publish::Publisher;
use crate::hls::queue::Publishing;
use crate::storage::names;
use crate::Error;
use ffmpeg_next::{Packet, Rational};
use std::sync::atomic::Ordering;

/// Below this much free disk the job stops with `DiskFull`: the hls muxer
/// does not report a failed segment write at once, so free space is
/// watched instead.
const MIN_FREE_BYTES: u64 = 1 << 20;
/// Packets between two free-space checks.
const FREE_CHECK_EVERY: u64 = 64;
/// Video packets between two progress reports.
const REPORT_EVERY: u64 = 8;

/// Most frames a second a source may show: past this (a stream whose
/// timestamps advance by a nanosecond, a 1000 fps claim) it is refused, so
/// odd timestamps cannot bypass the duration cap.
pub(crate) const MAX_FPS: f64 = 240.0;

/// The source video stream's timing.
pub(super) struct Timing {
    pub(super) tb: Rational,
    /// Subtracted from video timestamps so the output starts near 0.
    pub(super) offset: i64,
    /// Nominal frame duration in `tb`.
    pub(super) frame_dur: i64,
    pub(super) fps: Rational,
}

/// A transcode in progress.
pub(crate) struct Job<'a> {
    pub(super) source: Source,
    pub(super) ctx: &'a JobContext<'a>,
    pub(super) events: &'a mut dyn JobEvents,
    pub(super) timing: Timing,
    pub(super) copy: bool,
    pub(super) copy_note: Option<String>,
    pub(super) single: bool,
    pub(super) video: VideoChain,
    pub(super) audio: Audio,
    pub(super) outs: Vec<RungOutput>,
    /// Follows the copied rung's keyframes (copy mode only).
    pub(super) cadence: Option<copy::Cadence>,
    /// The run-time master's size once written (counted in the quota).
    pub(super) master_bytes: Option<u64>,
    packets: u64,
    pub(super) video_packets: u64,
    /// The latest video time read, seconds (for [`MAX_FPS`]).
    pub(super) latest_secs: f64,
    /// The copied video's rules (copy mode).
    pub(super) video_copy: super::copycheck::VideoCopy,
    /// The source's text subtitle streams, decoded as they go by.
    pub(super) subs: Vec<super::subs::SubtitleTrack>,
    /// Caption tracks made from them (at the end).
    pub(super) captions: Vec<crate::catalog::CaptionTrack>,
    /// Audio renditions of a source with several audio tracks.
    pub(super) group: Vec<super::group::AudioRendition>,
    /// The publishing queue every rung's publisher hands its segments to.
    pub(super) publishing: Publishing,
    /// A live's publishers coming back (see `restart`).
    pub(super) restarts: super::restart::Restarts,
    /// The video split into chunks encoded side by side (see `chunks`).
    pub(super) chunks: Option<super::chunks::Chunked>,
}

impl<'a> Job<'a> {
    /// Plans the ladder for `source` and opens the decoders, encoders and
    /// one muxer per rung.
    pub(crate) fn open(
        source: Source,
        ctx: &'a JobContext<'a>,
        events: &'a mut dyn JobEvents,
    ) -> Result<Self, Error> {
        let settings = ctx.settings;
        let VideoPlan {
            tb,
            vparams,
            origin_us,
            copy_check,
            opened,
            decoder,
            rungs,
        } = plan_video(&source, settings)?;
        let fps = opened.fps;
        let copied = copy_check.as_ref().ok().copied();
        let copy = copy_check.is_ok();
        // Captions or several audio tracks need a master playlist, so even
        // one rung then gets its own folder.
        let single =
            rungs.len() == 1 && source.subtitles.is_empty() && source.audio_streams.is_empty();
        let subs = open_subtitles(&source, origin_us);
        let offset = rescale(origin_us, MICROS, tb);
        let frame_dur = ((1.0 / f64::from(fps).max(1.0) / f64::from(tb)).round() as i64).max(1);
        let per_chunk = super::chunks::per_chunk(settings, &rungs, source.info.duration);
        let video = VideoChain::new(
            opened,
            offset,
            source.info.duration,
            &rungs,
            (copy && !single, copied.and_then(|c| c.every)),
            per_chunk.as_ref().unwrap_or(settings),
        )?;
        let publishing = Publishing::start(ctx.store, ctx.id)?;
        let group = super::group::open(&source, origin_us, ctx, publishing.queue())?;
        let audio = if group.is_empty() {
            open_audio(&source, copy, origin_us, settings)?
        } else {
            Audio::None
        };
        let restarts = super::restart::Restarts::of(&source, origin_us, settings, f64::from(fps));
        let mut job = Job {
            video_copy: super::copycheck::VideoCopy::of(copied.and_then(|c| c.every), &source),
            restarts,
            timing: Timing {
                tb,
                offset,
                frame_dur,
                fps,
            },
            cadence: copy.then(|| copy::Cadence::new(settings.segment_seconds)),
            copy_note: copy_check.err(),
            source,
            ctx,
            events,
            copy,
            single,
            video,
            audio,
            outs: Vec::with_capacity(rungs.len()),
            master_bytes: single.then_some(0),
            packets: 0,
            video_packets: 0,
            latest_secs: 0.0,
            subs,
            captions: Vec::new(),
            group,
            publishing,
            chunks: None,
        };
        job.prepare(rungs, vparams, (decoder, per_chunk))?;
        Ok(job)
    }

    /// Reserves the bytes the job may take, opens its outputs, and splits
    /// it into chunks when it is to be (`per_chunk`: each chunk's settings).
    fn prepare(
        &mut self,
        rungs: Vec<ladder::RungPlan>,
        vparams: ffmpeg_next::codec::Parameters,
        (decoder, per_chunk): (super::video::DecoderPlan, Option<super::Settings>),
    ) -> Result<(), Error> {
        let (source, subs, s) = (&self.source, self.subs.len(), self.ctx.settings);
        let estimate = estimate_bytes(source, &self.audio, subs, &rungs, &vparams, s);
        self.events.planned(estimate)?;
        self.open_outputs(rungs.clone(), vparams)?;
        match per_chunk {
            Some(settings) => self.split_into_chunks(decoder, rungs, settings),
            None => Ok(()),
        }
    }

    /// One muxer (and key series, and publisher) per rung.
    fn open_outputs(
        &mut self,
        rungs: Vec<ladder::RungPlan>,
        vparams: ffmpeg_next::codec::Parameters,
    ) -> Result<(), Error> {
        let ctx = self.ctx;
        for (i, plan) in rungs.into_iter().enumerate() {
            let rung = if self.single {
                String::new()
            } else {
                plan.name.clone()
            };
            let queue = self.publishing.queue();
            let publisher = Publisher::new(
                ctx.store,
                ctx.id,
                &rung,
                (
                    ctx.settings.segment_seconds,
                    ctx.settings.live_window,
                    ctx.settings.part_target(f64::from(self.timing.fps)),
                ),
                queue,
            );
            ctx.store.make_dir(ctx.id, &rung)?;
            let dir = ctx.store.path(ctx.id, &rung);
            let video = if plan.copy {
                VideoParams::Copied(vparams.clone())
            } else {
                VideoParams::Encoded(
                    self.video
                        .encoder_for(i)
                        .ok_or_else(|| Error::Internal("rung without encoder".into()))?,
                )
            };
            let audio = match &self.audio {
                Audio::None => None,
                Audio::Encode(a) => Some((AudioParams::Encoded(a.encoder()), a.time_base())),
                Audio::Copy { params, tb, .. } => Some((AudioParams::Copied(params.clone()), *tb)),
            };
            let fmp4 = super::muxer::is_fmp4(ctx.settings)
                || plan.codec != crate::config::VideoCodec::H264;
            let mut publisher = publisher;
            let keys = self.rung_keys(i, fmp4, &mut publisher)?;
            let spec = RungSpec {
                plan,
                dir,
                video: Some(video),
                video_tb: self.timing.tb,
                fps: self.timing.fps,
                audio,
                generation: ctx.generation,
                fmp4,
                keys,
            };
            let mut out = RungOutput::create(spec, publisher, ctx.settings)?;
            out.hdr_range = self.video.kept_hdr(i).map(super::hdrkeep::video_range);
            self.outs.push(out);
        }
        self.report();
        Ok(())
    }

    /// Rung `i`'s key series when the video is encrypted: its muxer's (TS),
    /// or its publisher's, which encrypts fMP4 segments itself (FFmpeg's
    /// muxer encrypts MPEG-TS only).
    fn rung_keys(
        &self,
        i: usize,
        fmp4: bool,
        publisher: &mut Publisher,
    ) -> Result<Option<(crate::hls::keys::Keys, std::path::PathBuf)>, Error> {
        let s = self.ctx.settings;
        if !s.encrypt {
            return Ok(None);
        }
        let slot = (!self.single).then_some(i);
        let ctx = self.ctx;
        let (g, rotation) = (ctx.generation, s.key_rotation_segments);
        let keys =
            crate::hls::keys::Keys::start(ctx.store, ctx.id, g, slot, rotation, s.segment_seconds)?;
        // A low-latency live's parts are encrypted by its publisher too:
        // each part alone and each segment whole.
        if fmp4 || s.live_low {
            publisher.encrypt_with(keys.0);
            return Ok(None);
        }
        Ok(Some(keys))
    }

    /// Reads and processes every packet, then finishes.
    pub(crate) fn run(mut self) -> Result<Produced, Error> {
        while let Some(packet) = self.next_packet()? {
            let index = packet.stream();
            if index == self.source.video_index {
                self.on_video_packet(&packet)?;
            } else if let Some(g) = self.group.iter().position(|g| g.index == index) {
                let clock = self.clock();
                self.group[g].send_packet(&packet, clock)?;
            } else if Some(index) == self.source.audio_index {
                self.on_audio_packet(&packet)?;
            } else if let Some(t) = self.subs.iter_mut().find(|t| t.stream.index == index) {
                t.send_packet(&packet);
            }
        }
        self.finish()
    }

    /// The next packet read; `None` at the end of the input (or at a read
    /// error of a truncated file, keeping what decoded).
    pub(super) fn read_packet(&mut self) -> Result<Option<Packet>, Error> {
        if self.ctx.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        self.packets += 1;
        if self.packets.is_multiple_of(FREE_CHECK_EVERY) && self.ctx.disk_full(MIN_FREE_BYTES) {
            return Err(Error::DiskFull);
        }
        // A fresh packet per read: `av_read_frame` overwrites its argument
        // without unreferencing the previous buffer, so reusing one packet
        // leaks every packet read (measured: RSS grew with the input size).
        let mut packet = Packet::empty();
        match packet.read(&mut self.source.ictx) {
            Ok(()) => Ok(Some(packet)),
            Err(ffmpeg_next::Error::Eof) => Ok(None),
            Err(e) => {
                // `packets()` would end silently here; tell an aborted upload
                // and a cancel from a truncated/corrupt file.
                if self.source.spool.as_ref().is_some_and(|s| s.is_aborted()) {
                    return Err(Error::Aborted);
                }
                if self.ctx.cancel.load(Ordering::Relaxed) || matches!(e, ffmpeg_next::Error::Exit)
                {
                    return Err(Error::Cancelled);
                }
                tracing::warn!(error = %e, "input ends with a read error; keeping what decoded");
                Ok(None)
            }
        }
    }

    /// How far the slowest rung has got, seconds.
    pub(super) fn position(&self) -> f64 {
        slowest(&self.outs)
    }

    /// Where the video is, for the audio chains.
    pub(super) fn clock(&self) -> VideoClock {
        VideoClock {
            secs: self.position(),
            jumps: self.video.jumps() + self.chunks.as_ref().map_or(0, |c| c.jumps()),
        }
    }

    fn on_video_packet(&mut self, packet: &Packet) -> Result<(), Error> {
        self.video_packets += 1;
        self.check_frame_rate(packet)?;
        if self.copy {
            self.copy_video_packet(packet)?;
        }
        match self.chunks.is_some() {
            true => self.chunk_packet(packet)?,
            false => self.video.send_packet(packet, &mut self.outs)?,
        }
        let position = self.position();
        for g in &mut self.group {
            g.out.advance(position)?;
        }
        self.publish()?;
        if self.video_packets.is_multiple_of(REPORT_EVERY) {
            self.report();
        }
        let max = self.ctx.settings.max_duration_secs;
        if self.position() > max as f64 {
            return Err(Error::Unprocessable(format!(
                "the video runs past the server's limit of {max} s"
            )));
        }
        Ok(())
    }

    /// Publishes what the muxers closed; the master once every rung has a
    /// segment (players may start then).
    fn publish(&mut self) -> Result<(), Error> {
        let mut bytes = 0;
        for o in self
            .outs
            .iter_mut()
            .chain(self.group.iter_mut().map(|g| &mut g.out))
        {
            bytes += o.publisher.poll()?;
        }
        if bytes > 0 {
            self.events.published(bytes)?;
        }
        let all = self.outs.iter().chain(self.group.iter().map(|g| &g.out));
        if self.master_bytes.is_none() && all.clone().all(|o| o.publisher.has_segment()) {
            // The master names the rungs' playlists: they first.
            self.publishing.flush()?;
            let n = self.write_master(&[])?;
            self.events.published(n)?;
            self.master_bytes = Some(n);
        }
        Ok(())
    }

    /// Writes the master: the rungs, and the caption tracks (this job's
    /// and those uploaded meanwhile), under the video's master lock.
    /// Its size.
    pub(super) fn write_master(&self, iframes: &[Option<IFrames>]) -> Result<u64, Error> {
        let has_audio = !matches!(self.audio, Audio::None);
        let rungs: Vec<_> = self.outs.iter().map(RungOutput::summary).collect();
        let mut m = master::playlist(&rungs, has_audio, f64::from(self.timing.fps), iframes);
        super::group::add_to_master(&mut m, &self.group);
        let ctx = self.ctx;
        let _lock = ctx.store.master_lock(ctx.id);
        let mut captions = self.captions.clone();
        captions.extend(self.events.uploaded_captions());
        master::add_captions(&mut m, &captions);
        let text = m.to_string();
        ctx.store.write(ctx.id, names::PLAYLIST, text.as_bytes())?;
        Ok(text.len() as u64)
    }

    /// Tells the job's owner how far each rung has got.
    pub(super) fn report(&mut self) {
        let rungs: Vec<RungProgress> = self
            .outs
            .iter()
            .map(|o| RungProgress {
                playlist: o.publisher.rel(names::PLAYLIST),
                name: o.plan.name.clone(),
                width: o.plan.width,
                height: o.plan.height,
                copied: o.plan.copy,
                seconds: o.position,
            })
            .collect();
        self.events.progress(&rungs);
        self.events.dropped(self.video.decode_errors);
    }
}

/// How far the slowest of `outs` has got, seconds.
pub(super) fn slowest(outs: &[super::outputs::RungOutput]) -> f64 {
    outs.iter()
        .map(|o| o.position)
        .fold(f64::INFINITY, f64::min)
}
