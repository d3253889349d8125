//! The clip's video, packet by packet: encoded where it must be (all of
//! it, or the head and tail around a copy), copied where the plan allows.
//!
//! Timestamps out are the source's less `shift`: the clip's start, less
//! the source's reordering delay at the first copied IDR, so that copied
//! packets keep their decoding times and those stay after the encoded
//! head's (encoded without B-frames, each decoded `delay` before it is
//! shown, as the copied IDR is). The audio is moved by the same delay.

use super::chains::{Trim, VideoCut, VideoIn};
use super::plan::{Bound, Plan};
use crate::Error;
use ffmpeg_next::Packet;

enum Stage {
    /// Encoding until the packet of the IDR at `until` (if any) comes;
    /// `lag`: decoding times are set this far before the shown ones.
    Encode {
        chain: VideoCut,
        until: Option<i64>,
        lag: Option<i64>,
    },
    Copy,
}

/// The video side of a cut.
pub(super) struct Video {
    vin: VideoIn,
    /// What the muxer is told of the stream (the first encoder's).
    params: (Option<ffmpeg_next::Codec>, ffmpeg_next::codec::Parameters),
    plan: Option<Plan>,
    end: i64,
    shift: i64,
    stage: Stage,
}

impl Video {
    /// Cuts `[start, end)` (stream time base), copying as `plan` says.
    pub(super) fn new(
        vin: VideoIn,
        start: i64,
        end: i64,
        plan: Option<Plan>,
    ) -> Result<Video, Error> {
        let (trim, until, lag) = match &plan {
            None => (
                Trim {
                    start,
                    end,
                    shift: start,
                    b_frames: true,
                },
                None,
                None,
            ),
            Some(p) => {
                let shift = start - p.first.delay;
                let trim = Trim {
                    start,
                    end: p.first.pts,
                    shift,
                    b_frames: false,
                };
                (trim, Some(p.first.pts), Some(p.first.delay))
            }
        };
        let chain = VideoCut::new(&vin, trim)?;
        let params = (
            chain.enc.codec(),
            ffmpeg_next::codec::Parameters::from(&chain.enc),
        );
        Ok(Video {
            params,
            shift: trim.shift,
            stage: Stage::Encode { chain, until, lag },
            vin,
            plan,
            end,
        })
    }

    pub(super) fn index(&self) -> usize {
        self.vin.index
    }

    /// The time base of every packet out (the source stream's).
    pub(super) fn time_base(&self) -> ffmpeg_next::Rational {
        self.vin.tb
    }

    pub(super) fn codec(&self) -> Option<ffmpeg_next::Codec> {
        self.params.0
    }

    pub(super) fn parameters(&self) -> &ffmpeg_next::codec::Parameters {
        &self.params.1
    }

    /// How much later than the source the clip's video starts (stream
    /// time base): the reordering delay kept for the copied packets.
    pub(super) fn delay(&self) -> i64 {
        self.plan.as_ref().map_or(0, |p| p.first.delay)
    }

    /// The packets out for one packet in.
    pub(super) fn send(&mut self, p: &Packet) -> Result<Vec<Packet>, Error> {
        let at = |b: Bound| p.is_key() && p.pts() == Some(b.pts);
        let mut out = Vec::new();
        if let Stage::Encode { until: Some(k), .. } = self.stage {
            if p.is_key() && p.pts() == Some(k) {
                out = self.finish()?;
                self.stage = Stage::Copy;
            }
        }
        if let (Stage::Copy, Some(plan)) = (&self.stage, &self.plan) {
            if !at(plan.last) {
                out.push(self.copied(plan, p)?);
                return Ok(out);
            }
            let trim = Trim {
                start: plan.last.pts,
                end: self.end,
                shift: self.shift,
                b_frames: false,
            };
            let chain = VideoCut::new(&self.vin, trim)?;
            let lag = Some(plan.last.delay);
            self.stage = Stage::Encode {
                chain,
                until: None,
                lag,
            };
        }
        if let Stage::Encode { chain, lag, .. } = &mut self.stage {
            out.extend(lagged(chain.send(p)?, *lag));
        }
        Ok(out)
    }

    /// What is left once the source's packets are in.
    pub(super) fn finish(&mut self) -> Result<Vec<Packet>, Error> {
        match &mut self.stage {
            Stage::Encode { chain, lag, .. } => Ok(lagged(chain.finish()?, *lag)),
            Stage::Copy => Ok(Vec::new()),
        }
    }

    /// A packet copied: Annex B, moved by `shift`.
    fn copied(&self, plan: &Plan, p: &Packet) -> Result<Packet, Error> {
        let data = plan
            .avcc
            .annex_b(p.data().unwrap_or_default())
            .ok_or_else(|| Error::Media("a copied packet of the clip does not parse".into()))?;
        let mut out = Packet::copy(&data);
        out.set_pts(p.pts().map(|t| t - self.shift));
        out.set_dts(p.dts().map(|t| t - self.shift));
        out.set_duration(p.duration());
        out.set_flags(p.flags());
        Ok(out)
    }
}

/// Encoded packets (no B-frames: decoded as shown) decoded `lag` earlier.
fn lagged(mut packets: Vec<Packet>, lag: Option<i64>) -> Vec<Packet> {
    if let Some(lag) = lag {
        for p in &mut packets {
            let dts = p.pts().map(|t| t - lag);
            p.set_dts(dts);
        }
    }
    packets
}
