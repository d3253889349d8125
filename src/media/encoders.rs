//! The video chain's encoders: one libx264 per encoded rung, and the
//! packets each gives its rung's muxer (with real frame durations).

use super::outputs::RungOutput;
use super::Settings;
use crate::Error;
use ffmpeg_next::{encoder, frame, Packet, Rational};
use std::collections::HashMap;

fn media_err(what: &str) -> impl Fn(ffmpeg_next::Error) -> Error + '_ {
    move |e| Error::from_av(e, what)
}

/// One encoded rung: its encoder and the timing it needs.
pub(crate) struct RungEncoder {
    /// Index of the rung's output.
    pub out: usize,
    pub(super) encoder: encoder::Video,
    /// Real duration of each frame sent to the encoder, by pts (the gap to
    /// the next frame): libx264 leaves packet durations at 0, and the hls
    /// muxer sums them for the last EXTINF, so VFR needs the true values.
    /// Entries leave when their packet does (bounded by the encoder delay).
    durations: HashMap<i64, i64>,
    /// Pts of the last frame sent to the encoder.
    last_encoded_pts: Option<i64>,
    /// Frames encoded.
    pub frames: u64,
    /// Presentation end of the last encoded frame, seconds.
    pub position: f64,
}

/// One libx264 encoder per encoded rung (`(output index, plan)` pairs).
pub(super) fn open_encoders(
    encoded: Vec<(usize, &super::ladder::RungPlan)>,
    tb: Rational,
    fps: Rational,
    keyint: u32,
    settings: &Settings,
) -> Result<Vec<RungEncoder>, Error> {
    let mut encoders = Vec::with_capacity(encoded.len());
    for (out, r) in encoded {
        let encoder = super::x264::open_encoder(
            r.width,
            r.height,
            tb,
            fps,
            keyint,
            r.maxrate_kbps,
            settings,
        )?;
        encoders.push(RungEncoder {
            out,
            encoder,
            durations: HashMap::new(),
            last_encoded_pts: None,
            frames: 0,
            position: 0.0,
        });
    }
    Ok(encoders)
}

impl RungEncoder {
    pub(super) fn send_frame(
        &mut self,
        f: &frame::Video,
        tb: Rational,
        frame_dur: i64,
    ) -> Result<(), Error> {
        let pts = f.pts().unwrap_or(0);
        // Only while the previous frame's packet is still to come: an
        // entry whose packet already left must not be re-added (leak).
        if let Some(d) = self
            .last_encoded_pts
            .and_then(|p| self.durations.get_mut(&p).map(|d| (d, p)))
        {
            *d.0 = pts - d.1;
        }
        self.durations.insert(pts, frame_dur);
        self.last_encoded_pts = Some(pts);
        self.encoder
            .send_frame(f)
            .map_err(media_err("video encoder"))?;
        self.frames += 1;
        self.position = (pts + frame_dur) as f64 * f64::from(tb);
        Ok(())
    }

    pub(super) fn receive_packets(
        &mut self,
        tb: Rational,
        frame_dur: i64,
        outs: &mut [RungOutput],
    ) -> Result<(), Error> {
        let mut packet = Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            let real = packet.pts().and_then(|p| self.durations.remove(&p));
            if packet.duration() <= 0 {
                packet.set_duration(real.unwrap_or(frame_dur));
            }
            let out = outs
                .get_mut(self.out)
                .ok_or_else(|| Error::Internal("rung output vanished".into()))?;
            out.write_video(&mut packet, tb)?;
        }
        Ok(())
    }
}
