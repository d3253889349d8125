//! What a copied stream must keep, packet by packet, for its packets to go
//! to players as they are. A copy that breaks a rule stops the job with
//! [`Error::CopyFallback`]: it starts over, encoding every rung, where the
//! decoder conceals damage and [`crate::hls::timeline`] repairs timestamps.
//!
//! - Video: timestamps that increase; packets the demuxer marks discarded
//!   (an edit list's hidden pre-roll) are skipped only before the first
//!   kept frame, and the first kept frame must be a keyframe (else the
//!   pre-roll would be needed to decode it); with an AV1 group, keyframes
//!   every N frames and nowhere else; every packet must decode
//!   cleanly (the video chain decodes them strictly, see `video`); the
//!   parameter sets must not change ([`super::paramsets`]).
//! - Audio: decoded too (cheap), strictly: no decoding error, no change of
//!   format mid-stream, and timestamps that neither go back nor overlap.

use crate::ffi;
use crate::Error;
use ffmpeg_next::{codec, decoder, format, frame, Packet, Rational};

fn fallback(why: impl Into<String>) -> Error {
    Error::CopyFallback(why.into())
}

/// The copied video's rules.
#[derive(Debug)]
pub(crate) struct VideoCopy {
    last_dts: Option<i64>,
    /// The next kept packet must be a keyframe (at the start, and after a
    /// discarded pre-roll).
    need_key: bool,
    /// With an AV1 group: keyframes every this many frames and nowhere
    /// else (`copy::frame_grid`), and the frames copied so far.
    every: Option<u64>,
    copied: u64,
    sets: super::paramsets::ParamSets,
}

impl VideoCopy {
    /// The rules for `source`'s video (`every`: the AV1 group's grid, if any).
    pub(crate) fn of(every: Option<u64>, source: &super::input::Source) -> Self {
        Self::new(every, super::paramsets::of(source))
    }

    pub(crate) fn new(every: Option<u64>, sets: super::paramsets::ParamSets) -> Self {
        VideoCopy {
            last_dts: None,
            need_key: true,
            every,
            copied: 0,
            sets,
        }
    }

    /// `Ok(false)`: the packet is a discarded pre-roll, not to be copied.
    pub(crate) fn check(&mut self, p: &Packet) -> Result<bool, Error> {
        if ffi::packet_discarded(p) {
            if self.last_dts.is_some() {
                return Err(fallback("the source discards video frames mid-stream"));
            }
            return Ok(false);
        }
        if self.need_key && !p.is_key() {
            return Err(fallback(
                "the first frame shown is not a keyframe (an edit list's cut)",
            ));
        }
        self.need_key = false;
        let dts = p
            .dts()
            .or(p.pts())
            .ok_or_else(|| fallback("a video packet has no timestamp"))?;
        if self.last_dts.is_some_and(|l| dts <= l) {
            return Err(fallback("the source's video timestamps go back or repeat"));
        }
        self.last_dts = Some(dts);
        self.sets
            .check(p.data().unwrap_or_default())
            .map_err(fallback)?;
        if let Some(n) = self.every {
            if p.is_key() != self.copied.is_multiple_of(n) {
                return Err(fallback(format!(
                    "the source's keyframes leave the grid of {n} frames the AV1 group cuts on"
                )));
            }
            self.copied += 1;
        }
        Ok(true)
    }
}

/// The copied audio's rules, with a decoder that proves each packet.
pub(crate) struct AudioCopy {
    decoder: decoder::Audio,
    tb: Rational,
    /// (rate, channels) of the first frame.
    format: Option<(u32, u16)>,
    /// Where the next packet should start (stream time base).
    expected: Option<i64>,
    started: bool,
}

impl AudioCopy {
    pub(crate) fn new(ist: &format::stream::Stream) -> Result<Self, Error> {
        let mut ctx = codec::context::Context::from_parameters(ist.parameters())
            .map_err(|e| Error::Unprocessable(format!("audio decoder: {e}")))?;
        ffi::set_strict_decoding(&mut ctx);
        let decoder = ctx
            .decoder()
            .audio()
            .map_err(|e| Error::Unprocessable(format!("audio decoder: {e}")))?;
        Ok(AudioCopy {
            decoder,
            tb: ist.time_base(),
            format: None,
            expected: None,
            started: false,
        })
    }

    /// `Ok(false)`: a discarded pre-roll packet, not to be copied.
    pub(crate) fn check(&mut self, p: &Packet) -> Result<bool, Error> {
        if ffi::packet_discarded(p) {
            if self.started {
                return Err(fallback("the source discards audio mid-stream"));
            }
            return Ok(false);
        }
        self.started = true;
        self.decoder
            .send_packet(p)
            .map_err(|e| fallback(format!("the source's audio does not decode cleanly ({e})")))?;
        let mut samples = 0i64;
        let mut f = frame::Audio::empty();
        loop {
            match self.decoder.receive_frame(&mut f) {
                Ok(()) => samples += self.frame(&f)?,
                Err(ffmpeg_next::Error::Eof) => break,
                Err(ffmpeg_next::Error::Other { errno }) if errno == libc::EAGAIN => break,
                Err(e) => {
                    return Err(fallback(format!(
                        "the source's audio does not decode cleanly ({e})"
                    )))
                }
            }
        }
        self.timing(p, samples)?;
        Ok(true)
    }

    /// Checks a decoded frame's format; returns its samples.
    fn frame(&mut self, f: &frame::Audio) -> Result<i64, Error> {
        let now = (f.rate(), f.channels());
        if *self.format.get_or_insert(now) != now {
            return Err(fallback("the source's audio format changes mid-stream"));
        }
        Ok(i64::try_from(f.samples()).unwrap_or(0))
    }

    /// Timestamps that neither go back nor overlap (within 1 ms).
    fn timing(&mut self, p: &Packet, samples: i64) -> Result<(), Error> {
        let (Some(pts), Some((rate, _))) = (p.pts(), self.format) else {
            return Ok(());
        };
        let per_sec = f64::from(self.tb.denominator()) / f64::from(self.tb.numerator().max(1));
        let tolerance = (per_sec / 1000.0).ceil() as i64;
        if self.expected.is_some_and(|e| pts + tolerance < e) {
            return Err(fallback("the source's audio timestamps go back or overlap"));
        }
        let dur = (samples as f64 * per_sec / f64::from(rate.max(1))).round() as i64;
        self.expected = Some(pts + dur);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(dts: i64, key: bool) -> Packet {
        let mut p = Packet::new(1);
        p.set_dts(Some(dts));
        p.set_pts(Some(dts));
        if key {
            p.set_flags(ffmpeg_next::packet::Flags::KEY);
        }
        p
    }

    fn off() -> crate::media::paramsets::ParamSets {
        crate::media::paramsets::ParamSets::new(ffmpeg_next::codec::Id::AV1, &[])
    }

    #[test]
    fn with_an_av1_group_keyframes_stay_on_their_grid() {
        let mut c = VideoCopy::new(Some(3), off());
        for (t, key) in [(0, true), (1, false), (2, false), (3, true), (4, false)] {
            assert!(c.check(&packet(t, key)).unwrap());
        }
        // A keyframe off the grid, or none where it falls: the copy stops.
        assert!(c.check(&packet(5, true)).is_err());
        let mut c = VideoCopy::new(Some(2), off());
        c.check(&packet(0, true)).unwrap();
        c.check(&packet(1, false)).unwrap();
        assert!(c.check(&packet(2, false)).is_err());
        // Without a group, keyframes may fall anywhere.
        let mut c = VideoCopy::new(None, off());
        for (t, key) in [(0, true), (1, true), (2, false), (3, true)] {
            assert!(c.check(&packet(t, key)).unwrap());
        }
    }
}
