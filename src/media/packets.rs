//! What a [`Job`] does with a packet besides decoding it: the frame-rate
//! guard, the copied top rung's video, and the audio (encoded, or copied
//! into every rung).

use super::job::{Audio, Job, MAX_FPS};
use super::timing::shift;
use crate::Error;
use ffmpeg_next::Packet;

impl Job<'_> {
    /// The next packet to process: read, then moved past a live's
    /// publishers coming back (see `restart`); `None` at the end.
    pub(super) fn next_packet(&mut self) -> Result<Option<Packet>, Error> {
        loop {
            if let Some(p) = self.restarts.pop() {
                return Ok(Some(p));
            }
            let placed = match self.read_packet()? {
                Some(p) => self.restarts.take(p),
                None => match self.restarts.flush() {
                    Some(at) => Some(at),
                    None => return Ok(None),
                },
            };
            if let Some(at) = placed {
                self.video.key_at(at);
                for o in &mut self.outs {
                    o.publisher.discontinuity_at(at);
                }
                for g in &mut self.group {
                    g.out.publisher.discontinuity_at(at);
                }
            }
        }
    }

    /// Refuses more than [`MAX_FPS`] packets a second of source time, so
    /// frames are bounded by `--max-duration-secs` × [`MAX_FPS`] whatever
    /// the timestamps say.
    pub(super) fn check_frame_rate(&mut self, packet: &Packet) -> Result<(), Error> {
        let t = &self.timing;
        if let Some(pts) = packet.pts() {
            let secs = (pts - t.offset) as f64 * f64::from(t.tb);
            self.latest_secs = self.latest_secs.max(secs);
        }
        // A quarter second of slack: reordered first packets, a still.
        if self.video_packets as f64 > MAX_FPS * (self.latest_secs.max(0.0) + 0.25) {
            return Err(Error::Unprocessable(format!(
                "the video shows more than {MAX_FPS} frames a second (its timestamps are \
                 broken, or its frame rate is not one players can show)"
            )));
        }
        Ok(())
    }

    /// Writes a source packet into the copied rung (the top of its group).
    pub(super) fn copy_video_packet(&mut self, packet: &Packet) -> Result<(), Error> {
        if !self.video_copy.check(packet)? {
            return Ok(());
        }
        let t = &self.timing;
        let mut p = packet.clone();
        shift(&mut p, t.offset);
        if p.duration() <= 0 {
            p.set_duration(t.frame_dur);
        }
        let Some(pts) = p.pts() else {
            return Err(Error::CopyFallback(
                "a video packet has no timestamp".into(),
            ));
        };
        if let Some(c) = self.cadence.as_mut() {
            c.packet(pts as f64 * f64::from(t.tb), p.is_key())
                .map_err(Error::CopyFallback)?;
        }
        match self.outs.iter_mut().find(|o| o.plan.copy) {
            Some(out) => out.write_video(&mut p, t.tb),
            None => Ok(()),
        }
    }

    pub(super) fn on_audio_packet(&mut self, packet: &Packet) -> Result<(), Error> {
        let clock = self.clock();
        let position = clock.secs;
        let max_secs = self.ctx.settings.max_duration_secs as f64;
        match &mut self.audio {
            Audio::None => Ok(()),
            Audio::Encode(a) => a.send_packet(packet, &mut self.outs, clock),
            Audio::Copy {
                tb, offset, check, ..
            } => {
                if !check.check(packet)? {
                    return Ok(());
                }
                let mut p = packet.clone();
                shift(&mut p, *offset);
                let secs = f64::from(*tb);
                if let Some(pts) = p.pts() {
                    let (t, d) = (pts as f64 * secs, p.duration() as f64 * secs);
                    // Audio from before the video is dropped, and audio far
                    // ahead of it (a timestamp jump) or past the limit.
                    let limit = (position + super::audio::MAX_AUDIO_LEAD_SECS).min(max_secs);
                    if t + d <= 0.0 || t > limit {
                        return Ok(());
                    }
                }
                let tb = *tb;
                self.outs.iter_mut().try_for_each(|o| o.write_audio(&p, tb))
            }
        }
    }
}
