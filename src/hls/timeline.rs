//! Keeping a stream's timestamps moving forward whatever the source does.
//! Sources jump backwards (spliced files, damaged fragments), repeat a
//! timestamp, overlap (an audio packet that starts before the previous one
//! ended, as some Matroska muxers write), or leap far ahead. Encoders and
//! the muxer need increasing timestamps, and players need audio and video
//! to stay together, so:
//! - video: a repeat or a small step back becomes one tick after the last
//!   frame; a jump back (more than two frames) or a leap ahead (more than
//!   [`MAX_GAP_SECS`]) is a discontinuity: the stream goes on one frame
//!   after its last frame, and every later timestamp moves with it;
//! - audio: the samples are the truth. A frame that starts before the
//!   previous one ended, or leaps more than [`MAX_GAP_SECS`] ahead, is
//!   placed right after it (continuous); a small gap ahead stays (the
//!   resampler fills it with silence). Audio that jumps back further than
//!   [`BIG_BACK_SECS`] while the video goes on is audio sent again: the
//!   stretch it repeats is trimmed ([`Timeline::audio_trimmed`], as the
//!   ffmpeg CLI's output does); the audio chain decides which of the two a
//!   jump is by whether the video jumped too.

/// A leap ahead longer than this is a discontinuity, not a pause.
pub(crate) const MAX_GAP_SECS: f64 = 10.0;

/// Audio starting this much before the previous frame ended is a jump
/// back, not a muxer's rounding (which overlaps by a few ms a frame).
pub(crate) const BIG_BACK_SECS: f64 = 0.2;

/// One stream's timeline, in its own time base.
#[derive(Debug)]
pub(crate) struct Timeline {
    /// Added to every source timestamp (grows at each discontinuity).
    shift: i64,
    /// Video: the last pts out; audio: where the next frame should start.
    last: Option<i64>,
    /// Video: a nominal frame; audio: unused.
    step: i64,
    /// Video: the last frame's timestamp repeated (or fell just behind)
    /// the one before; it was nudged one tick on.
    collided: bool,
    max_gap: i64,
    /// [`BIG_BACK_SECS`] in ticks.
    big_back: i64,
    /// Video: discontinuities so far.
    jumps: u32,
}

impl Timeline {
    /// For a stream whose time base has `per_sec` ticks a second and whose
    /// frames last `step` ticks (video).
    pub(crate) fn new(per_sec: f64, step: i64) -> Self {
        Timeline {
            shift: 0,
            last: None,
            step: step.max(1),
            collided: false,
            max_gap: (MAX_GAP_SECS * per_sec) as i64,
            big_back: (BIG_BACK_SECS * per_sec) as i64,
            jumps: 0,
        }
    }

    /// The output pts of a video frame shown at `pts`: strictly increasing.
    pub(crate) fn video(&mut self, pts: i64) -> i64 {
        let p = pts.saturating_add(self.shift);
        self.collided = false;
        let out = match self.last {
            None => p,
            Some(last) if p <= last - 2 * self.step || p > last.saturating_add(self.max_gap) => {
                let to = last + self.step;
                self.shift += to - p;
                self.jumps += 1;
                to
            }
            Some(last) if p <= last => {
                self.collided = true;
                last + 1
            }
            Some(_) => p,
        };
        self.last = Some(out);
        out
    }

    /// Moves this frame and every later one `by` ticks later.
    pub(crate) fn delay(&mut self, by: i64) {
        self.shift += by;
        if let Some(l) = self.last.as_mut() {
            *l += by;
        }
    }

    /// A video frame's nominal duration.
    pub(crate) fn step(&self) -> i64 {
        self.step
    }

    /// How many times the video's timestamps jumped (back or far ahead).
    pub(crate) fn jumps(&self) -> u32 {
        self.jumps
    }

    /// True when the last video frame's timestamp had to be nudged.
    pub(crate) fn collided(&self) -> bool {
        self.collided
    }

    /// The output pts of a video frame with no timestamp: one frame on.
    pub(crate) fn video_untimed(&mut self) -> i64 {
        self.collided = false;
        let out = self.last.map_or(0, |l| l + self.step);
        self.last = Some(out);
        out
    }

    /// The output pts of an audio frame with no timestamp: right after the
    /// last one.
    pub(crate) fn audio_untimed(&mut self, dur: i64) -> i64 {
        let out = self.last.unwrap_or(0);
        self.last = Some(out + dur.max(0));
        out
    }

    /// The output pts of an audio frame at `pts` lasting `dur` ticks.
    pub(crate) fn audio(&mut self, pts: i64, dur: i64) -> i64 {
        let p = pts.saturating_add(self.shift);
        let out = match self.last {
            Some(next) if p < next || p > next.saturating_add(self.max_gap) => {
                self.shift += next - p;
                next
            }
            _ => p,
        };
        self.last = Some(out + dur.max(0));
        out
    }

    /// True when an audio frame at `pts` starts well before the previous
    /// one ended ([`BIG_BACK_SECS`]).
    pub(crate) fn audio_jumps_back(&self, pts: i64) -> bool {
        let p = pts.saturating_add(self.shift);
        self.last.is_some_and(|next| p < next - self.big_back)
    }

    /// Like [`Timeline::audio`] for audio sent again: a frame wholly
    /// before the previous one's end is dropped (`None`), one that ends
    /// after it is placed right after it.
    pub(crate) fn audio_trimmed(&mut self, pts: i64, dur: i64) -> Option<i64> {
        let p = pts.saturating_add(self.shift);
        match self.last {
            Some(next) if p.saturating_add(dur.max(0)) <= next => None,
            _ => Some(self.audio(pts, dur)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_repeats_and_jumps_keep_moving_forward() {
        let mut t = Timeline::new(1000.0, 40);
        let out: Vec<i64> = [0, 40, 80, 80, 120, 40, 80, 100_000, 100_040]
            .iter()
            .map(|p| t.video(*p))
            .collect();
        // A repeat is nudged; a jump back and a leap ahead continue one
        // frame on, and the frames after them follow.
        assert_eq!(out, [0, 40, 80, 81, 120, 160, 200, 240, 280]);
    }

    #[test]
    fn audio_follows_its_samples_through_overlaps_and_jumps() {
        let mut t = Timeline::new(1000.0, 1);
        // 20 ms frames stamped 19 ms apart (overlap), then a jump back.
        let out: Vec<i64> = [0, 19, 38, 57, 10, 30, 50]
            .iter()
            .map(|p| t.audio(*p, 20))
            .collect();
        assert_eq!(out, [0, 20, 40, 60, 80, 100, 120]);
        // A small gap ahead stays (80 ms of silence after the frame that
        // ended at source time 70); a huge leap does not.
        assert_eq!(t.audio(150, 20), 220);
        assert_eq!(t.audio(5_000_000, 20), 240);
    }

    #[test]
    fn audio_sent_again_is_trimmed_to_what_is_new() {
        // Ticks of 10 ms: a jump back is more than 20 ticks.
        let mut t = Timeline::new(100.0, 1);
        for p in [0, 20, 40, 60, 80] {
            t.audio(p, 20);
        }
        // A rounding overlap is no jump; a restart at 0 is.
        assert!(!t.audio_jumps_back(90));
        assert!(t.audio_jumps_back(0));
        // The repeated stretch goes, a frame across the end is placed
        // after it, and what is new stays where its timestamps say.
        let out: Vec<Option<i64>> = [0, 40, 80, 90, 110, 130]
            .iter()
            .map(|p| t.audio_trimmed(*p, 20))
            .collect();
        assert_eq!(out, [None, None, None, Some(100), Some(120), Some(140)]);
    }

    #[test]
    fn video_jumps_are_counted() {
        let mut t = Timeline::new(1000.0, 40);
        for p in [0, 40, 80, 0, 40] {
            t.video(p);
        }
        assert_eq!(t.jumps(), 1);
    }
}
