//! A live's publisher back within `--live-reconnect-secs`: the broadcast
//! marks in the spool where its bytes begin (`SpoolControl::mark_restart`),
//! and from the first packet read there on, every packet is moved so that
//! the new publisher's first video frame falls on the next cut of the
//! rungs' grid after what came (a segment's length; a part's, at low
//! latency). Every rung starts a segment there (the frame is a keyframe:
//! the source's when it is copied, else forced, see
//! `VideoChain::key_at`), so every playlist says `EXT-X-DISCONTINUITY`
//! before the same segment (`Publisher::discontinuity_at`). What lies
//! between is a pause (the last picture held, silence), shorter than one
//! grid step. The timestamps stay increasing across it whatever the new
//! publisher's clock says (SRT's MPEG-TS restarts it), so a copied rung
//! goes on being copied.
//!
//! The new publisher's packets read before its first video frame (its
//! audio, its configuration) wait for it (at most [`MAX_HELD`]), so that
//! the frame, not its audio, lands on the cut; its audio that would start
//! before the audio already written ends is dropped.
//!
//! The marks are in memory: a broadcast made again from its spool after a
//! restart of the server (recovery) has no discontinuity, one continuous
//! timeline as before.

use super::timing::{rescale, MICROS};
use crate::spool::SpoolControl;
use ffmpeg_next::{Packet, Rational};
use std::collections::VecDeque;

/// Packets of a new publisher held while its first video frame is awaited.
const MAX_HELD: usize = 512;
/// More than a tick of any time base a timestamp is rounded into (90 kHz).
const NUDGE_US: i64 = 20;

/// Where the job is with its source's restarts.
pub(crate) struct Restarts {
    spool: Option<SpoolControl>,
    /// Restarts reached so far.
    reached: usize,
    /// Added to every packet's timestamps, microseconds.
    shift_us: i64,
    /// The instant that is output time 0.
    origin_us: i64,
    /// The rungs' cuts are at the multiples of this, microseconds.
    grid_us: i64,
    video_index: usize,
    /// Each stream's time base, and where its packets end so far (output
    /// microseconds).
    tbs: Vec<Rational>,
    ends: Vec<i64>,
    /// Below these (per stream) a new publisher's packets are dropped.
    floors: Vec<i64>,
    /// The new publisher's packets read before its first video frame.
    held: VecDeque<Packet>,
    ready: VecDeque<Packet>,
}

impl Restarts {
    /// For a source read from `spool` whose streams have time bases `tbs`.
    pub(crate) fn new(
        spool: Option<SpoolControl>,
        tbs: Vec<Rational>,
        video_index: usize,
        origin_us: i64,
        grid_secs: f64,
    ) -> Self {
        let n = tbs.len();
        Restarts {
            spool,
            reached: 0,
            shift_us: 0,
            origin_us,
            grid_us: ((grid_secs * 1e6).round() as i64).max(1),
            video_index,
            tbs,
            ends: vec![i64::MIN; n],
            floors: vec![i64::MIN; n],
            held: VecDeque::new(),
            ready: VecDeque::new(),
        }
    }

    /// Where the job is with `source`'s restarts: its rungs cut on the
    /// grid of segments (of the muxer's parts, at low latency).
    pub(crate) fn of(
        source: &super::input::Source,
        origin_us: i64,
        settings: &super::Settings,
        fps: f64,
    ) -> Self {
        let tbs = source.ictx.streams().map(|s| s.time_base()).collect();
        let grid = match settings.live_low {
            true => crate::hls::lowlat::part_seconds(fps),
            false => f64::from(settings.segment_seconds),
        };
        let spool = source.spool.clone();
        Restarts::new(spool, tbs, source.video_index, origin_us, grid)
    }

    /// The next packet to process, when one is ready.
    pub(crate) fn pop(&mut self) -> Option<Packet> {
        self.ready.pop_front()
    }

    /// Takes a packet just read. When it completes a restart, returns
    /// where the new publisher's video begins (output seconds).
    pub(crate) fn take(&mut self, p: Packet) -> Option<f64> {
        // Held packets wait for the new publisher's first video frame.
        if self.held.is_empty() && !self.crossed(&p) {
            self.release(p);
            return None;
        }
        let video = p.stream() == self.video_index && p.pts().or(p.dts()).is_some();
        self.held.push_back(p);
        if !video && self.held.len() < MAX_HELD {
            return None;
        }
        Some(self.place())
    }

    /// At the end of the input: places what waits, if anything does.
    pub(crate) fn flush(&mut self) -> Option<f64> {
        (!self.held.is_empty()).then(|| self.place())
    }

    /// True when `p` is the first packet read at or after the next mark.
    fn crossed(&mut self, p: &Packet) -> bool {
        let (Some(spool), Ok(pos)) = (&self.spool, u64::try_from(p.position())) else {
            return false;
        };
        let mut crossed = false;
        while spool.restart(self.reached).is_some_and(|at| pos >= at) {
            self.reached += 1;
            crossed = true;
        }
        crossed
    }

    /// Moves the held packets so the last one (the video frame, or the
    /// first held when none came) starts on the grid after everything so
    /// far; returns that instant.
    fn place(&mut self) -> f64 {
        let end = self.ends.iter().copied().max().unwrap_or(0).max(0);
        let cut = end.div_euclid(self.grid_us) * self.grid_us;
        let cut = if cut < end { cut + self.grid_us } else { cut };
        let anchor = self.held.back().filter(|p| p.stream() == self.video_index);
        if let Some(at) = anchor.or(self.held.front()).and_then(|p| self.own_us(p)) {
            // (Held packets are not moved yet.) A hair late rather than
            // early: the rounding into its time base must not put the
            // frame before the cut, where no muxer would cut.
            self.shift_us += cut - (at + self.shift_us) + NUDGE_US;
        }
        self.floors.clone_from(&self.ends);
        while let Some(p) = self.held.pop_front() {
            self.release(p);
        }
        cut as f64 / 1e6
    }

    /// Where `p` starts by its own timestamps (output microseconds).
    fn own_us(&self, p: &Packet) -> Option<i64> {
        let tb = *self.tbs.get(p.stream())?;
        let t = p.pts().or(p.dts())?;
        Some(rescale(t, tb, MICROS) - self.origin_us)
    }

    /// Moves `p` by the shift and hands it on (or drops a new publisher's
    /// packet that would start inside what came before).
    fn release(&mut self, mut p: Packet) {
        let i = p.stream();
        let Some(tb) = self.tbs.get(i).copied() else {
            self.ready.push_back(p);
            return;
        };
        if self.shift_us != 0 {
            let by = floor_ticks(self.shift_us, tb);
            p.set_pts(p.pts().map(|t| t + by));
            p.set_dts(p.dts().map(|t| t + by));
        }
        if let Some(start) = self.own_us(&p) {
            if i != self.video_index && start < self.floors[i] {
                return;
            }
            let end = start + rescale(p.duration().max(0), tb, MICROS);
            self.ends[i] = self.ends[i].max(end);
        }
        self.ready.push_back(p);
    }
}

/// `us` microseconds in ticks of `tb`, rounded down (so a nudge of a
/// few microseconds later always lands at or after the instant).
fn floor_ticks(us: i64, tb: Rational) -> i64 {
    let num = i128::from(us) * i128::from(tb.denominator());
    let den = 1_000_000 * i128::from(tb.numerator());
    if den <= 0 {
        return 0;
    }
    i64::try_from(num.div_euclid(den)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet of stream `i` at `t` (its own time base), `dur` long,
    /// read from byte `pos`.
    fn packet(i: usize, t: i64, dur: i64, pos: isize) -> Packet {
        let mut p = Packet::new(1);
        p.set_stream(i);
        p.set_pts(Some(t));
        p.set_dts(Some(t));
        p.set_duration(dur);
        p.set_position(pos);
        p
    }

    fn drain(r: &mut Restarts) -> Vec<(usize, i64)> {
        std::iter::from_fn(|| r.pop())
            .map(|p| (p.stream(), p.pts().unwrap_or(-1)))
            .collect()
    }

    #[test]
    fn a_publisher_back_starts_its_video_on_the_next_cut_and_its_audio_after_the_old() {
        ffmpeg_next::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let w = crate::spool::create(&dir.path().join("s")).unwrap();
        // Video in ms, audio at 48 kHz; output 0 is 0.
        let tbs = vec![Rational(1, 1000), Rational(1, 48_000)];
        let mut r = Restarts::new(Some(w.control()), tbs, 0, 0, 2.0);
        for (n, t) in [0i64, 40, 80].iter().enumerate() {
            assert_eq!(r.take(packet(0, *t, 40, n as isize * 100)), None);
        }
        assert_eq!(r.take(packet(1, 0, 6000, 400)), None); // audio to 125 ms
        assert_eq!(drain(&mut r), [(0, 0), (0, 40), (0, 80), (1, 0)]);
        // Back at byte 1000 with its clock restarted: audio first (one
        // frame that starts 10 ms before its video), then the keyframe.
        w.control().mark_restart(1000);
        assert_eq!(r.take(packet(1, 480, 1024, 1000)), None);
        assert_eq!(r.take(packet(1, 1504, 1024, 1100)), None);
        assert_eq!(r.take(packet(0, 20, 40, 1200)), Some(2.0));
        // The video lands on 2 s; the audio moves with it, its first
        // frame (which would start at 1.99 s) kept, as it starts after the
        // old audio's end.
        let got = drain(&mut r);
        assert_eq!(got, [(1, 95_520), (1, 96_544), (0, 2000)]);
        assert_eq!(r.take(packet(0, 60, 40, 1300)), None);
        assert_eq!(drain(&mut r), [(0, 2040)]);
        assert_eq!(r.flush(), None);
    }

    #[test]
    fn audio_of_a_publisher_back_that_would_overlap_is_dropped() {
        ffmpeg_next::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let w = crate::spool::create(&dir.path().join("s")).unwrap();
        let tbs = vec![Rational(1, 1000), Rational(1, 1000)];
        let mut r = Restarts::new(Some(w.control()), tbs, 0, 0, 0.2);
        r.take(packet(0, 0, 40, 0));
        r.take(packet(1, 0, 190, 10)); // audio to 190 ms
        drain(&mut r);
        w.control().mark_restart(100);
        // Its video lands on 200 ms; audio 20 ms before it would start
        // inside the old audio (180 < 190) and goes; the next stays.
        assert_eq!(r.take(packet(1, 1000, 20, 100)), None);
        assert_eq!(r.take(packet(1, 1020, 20, 110)), None);
        assert_eq!(r.take(packet(0, 1020, 40, 120)), Some(0.2));
        assert_eq!(drain(&mut r), [(1, 200), (0, 200)]);
    }

    #[test]
    fn at_90_khz_the_frame_lands_on_the_cut_or_just_after() {
        ffmpeg_next::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let w = crate::spool::create(&dir.path().join("s")).unwrap();
        let tb = Rational(1, 90_000);
        for first in [1, 7, 126_001, 1_234_567] {
            let mut r = Restarts::new(Some(w.control()), vec![tb], 0, 0, 0.2);
            r.take(packet(0, 3003, 3003, 0));
            drain(&mut r);
            w.control().mark_restart(1);
            assert_eq!(r.take(packet(0, first, 3003, 1)), Some(0.2));
            let got = drain(&mut r)[0].1;
            assert!((18_000..18_003).contains(&got), "{first}: {got}");
            // (Each test's mark is behind the next's first packet.)
            let _ = r;
        }
    }

    #[test]
    fn without_marks_packets_go_through_untouched() {
        ffmpeg_next::init().unwrap();
        let mut r = Restarts::new(None, vec![Rational(1, 1000)], 0, 0, 2.0);
        for t in [0, 40, 5000, 10] {
            assert_eq!(r.take(packet(0, t, 40, -1)), None);
        }
        assert_eq!(drain(&mut r), [(0, 0), (0, 40), (0, 5000), (0, 10)]);
    }
}
