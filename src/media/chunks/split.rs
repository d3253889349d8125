//! Where one chunk ends and the next begins, decided packet by packet in
//! the order the source is read (decoding order), from timestamps alone.
//!
//! A boundary is a point `G` of the keyframe grid (every encoded rung makes
//! an IDR on the first frame shown at or after it, chunked or not), at
//! least a chunk's length after the chunk's start, or sooner when the chunk
//! has taken [`Splitter`]'s byte budget. It is decided at the first packet
//! shown at or after `G`: every packet before it is shown before `G`. From
//! there:
//! - the new chunk gets the packets from the last source keyframe (the
//!   caller keeps them) and everything after; it decodes from that
//!   keyframe and drops the frames shown before `G`;
//! - the old chunk still gets the packets decoded before `G` (B-frames
//!   shown before `G` that follow in decoding order), and its end once a
//!   packet is decoded at or after `G` (then none shown before `G` can
//!   follow).
//!
//! Only a regular stream is split: every packet timed, decoding times
//! increasing by less than a jump, no shown time repeated. After anything
//! else (which the chain's timeline would move) the chunk being fed takes
//! the rest of the video, so timestamps moved inside a chunk never meet a
//! later one.

use std::collections::VecDeque;

/// A leap in decoding time this long (ticks are converted by the caller)
/// makes the stream irregular.
pub(super) const MAX_GAP_SECS: f64 = crate::hls::timeline::MAX_GAP_SECS;

/// Shown times remembered to catch a repeat.
const RECENT: usize = 32;

/// A source video packet as the splitter sees it (output ticks: the
/// stream's time base, less the job's offset).
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub pts: Option<i64>,
    pub dts: Option<i64>,
    pub key: bool,
    pub bytes: usize,
}

/// What to do with one packet.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Route {
    /// A new chunk starts at this output time: it gets the packets kept
    /// since the last keyframe (none when this packet is one), then this.
    pub start: Option<i64>,
    /// The previous chunk takes this packet too.
    pub to_previous: bool,
    /// The previous chunk has everything it needs (before this packet).
    pub close_previous: bool,
}

/// The boundary decisions of one job.
pub(super) struct Splitter {
    /// Grid step, chunk length and jump, in ticks.
    step: i64,
    len: i64,
    gap: i64,
    /// A chunk that has taken this many bytes ends at the next grid point.
    budget: usize,
    /// The grid's first point (the first frame shown), once known.
    anchor: Option<i64>,
    /// The current chunk's start, and the bytes it has taken.
    start: Option<i64>,
    bytes: usize,
    /// The last boundary, while the previous chunk still takes packets.
    closing: Option<i64>,
    regular: bool,
    last_dts: Option<i64>,
    max_pts: Option<i64>,
    recent: VecDeque<i64>,
    /// Packets since the last keyframe can start a chunk (not too many
    /// were kept, see [`Splitter::too_many_kept`]).
    kept_ok: bool,
}

impl Splitter {
    /// For a grid of `step` ticks, chunks of `len` ticks or `budget`
    /// bytes, in a time base of `per_sec` ticks a second.
    pub(super) fn new(step: i64, len: i64, budget: usize, per_sec: f64) -> Self {
        Splitter {
            step: step.max(1),
            len: len.max(1),
            gap: (MAX_GAP_SECS * per_sec) as i64,
            budget,
            anchor: None,
            start: None,
            bytes: 0,
            closing: None,
            regular: true,
            last_dts: None,
            max_pts: None,
            recent: VecDeque::with_capacity(RECENT),
            kept_ok: false,
        }
    }

    /// The grid's first point, once the first chunk knows it.
    pub(super) fn set_anchor(&mut self, at: i64) {
        self.anchor.get_or_insert(at);
    }

    /// True until the anchor is set.
    pub(super) fn needs_anchor(&self) -> bool {
        self.anchor.is_none()
    }

    /// The packets kept since the last keyframe are too many to start a
    /// chunk from (the caller dropped them); none can start before the
    /// next keyframe.
    pub(super) fn too_many_kept(&mut self) {
        self.kept_ok = false;
    }

    /// Decides what happens to packet `p`.
    pub(super) fn route(&mut self, p: Seen) -> Route {
        self.check(p);
        if p.key {
            self.kept_ok = true;
        }
        let mut route = Route::default();
        if let (Some(g), Some(dts)) = (self.closing, p.dts) {
            if dts < g && self.regular {
                route.to_previous = true;
            } else {
                route.close_previous = true;
                self.closing = None;
            }
        }
        if let Some(g) = self.boundary(p) {
            route.start = Some(g);
            // (A previous chunk closed by this packet is closed first; the
            // chunk before the new one is then the one this packet ended.)
            route.to_previous = p.dts.is_some_and(|d| d < g);
            self.closing = Some(g);
            self.start = Some(g);
            self.bytes = 0;
        }
        if let Some(pts) = p.pts {
            self.max_pts = Some(self.max_pts.map_or(pts, |m| m.max(pts)));
            self.start.get_or_insert(pts);
        }
        self.bytes += p.bytes;
        route
    }

    /// The boundary `p` crosses, if it is one.
    fn boundary(&self, p: Seen) -> Option<i64> {
        let (anchor, start, pts) = (self.anchor?, self.start?, p.pts?);
        if !self.regular || !self.kept_ok || self.closing.is_some() {
            return None;
        }
        let target = if self.bytes >= self.budget {
            start + self.step
        } else {
            start + self.len
        };
        // Every packet before this one must be shown before the boundary.
        let floor = target.max(self.max_pts.map_or(target, |m| m + 1));
        let g = anchor + (floor - anchor + self.step - 1).div_euclid(self.step) * self.step;
        (pts >= g).then_some(g)
    }

    /// Marks the stream irregular for good when `p` is.
    fn check(&mut self, p: Seen) {
        let (Some(pts), Some(dts)) = (p.pts, p.dts) else {
            self.regular = false;
            return;
        };
        if let Some(last) = self.last_dts {
            if dts <= last || dts - last > self.gap {
                self.regular = false;
            }
        }
        if self.recent.contains(&pts) || pts < dts {
            self.regular = false;
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(pts);
        self.last_dts = Some(dts);
    }
}

#[cfg(test)]
mod tests {
    use super::{Route, Seen, Splitter};

    /// `n` frames of 1 tick in groups decoded X B B and shown B B X
    /// (X a keyframe every `gop` frames); decoding times lag by 2.
    fn stream(n: i64, gop: i64) -> Vec<Seen> {
        (0..n)
            .map(|i| {
                let g = i - i % 3;
                let pts = if i % 3 == 0 { g + 2 } else { g + i % 3 - 1 };
                Seen {
                    pts: Some(pts + 10),
                    dts: Some(i + 8),
                    key: i % gop == 0,
                    bytes: 10,
                }
            })
            .collect()
    }

    fn run(s: &mut Splitter, packets: &[Seen]) -> Vec<(usize, Route)> {
        s.set_anchor(10);
        packets
            .iter()
            .enumerate()
            .map(|(i, p)| (i, s.route(*p)))
            .filter(|(_, r)| *r != Route::default())
            .collect()
    }

    #[test]
    fn chunks_start_on_the_grid_and_the_old_one_takes_what_it_shows() {
        let mut s = Splitter::new(4, 20, usize::MAX, 1.0);
        let packets = stream(60, 12);
        let routes = run(&mut s, &packets);
        let starts: Vec<i64> = routes.iter().filter_map(|(_, r)| r.start).collect();
        // Grid 10, 14, 18, …: the first point 20 ticks after each start
        // (the first starts where its first packet is shown, 12).
        assert_eq!(starts, [34, 54]);
        for (i, r) in &routes {
            let p = packets[*i];
            if let Some(g) = r.start {
                // The first packet shown at or after g, none before it.
                assert!(p.pts.unwrap() >= g);
                assert!(packets[..*i].iter().all(|q| q.pts.unwrap() < g));
            }
            if r.to_previous {
                assert!(p.dts.unwrap() < 54);
            }
        }
        // The old chunk is closed after its last packet decoded before g.
        assert!(routes.iter().filter(|(_, r)| r.close_previous).count() >= 1);
    }

    #[test]
    fn a_byte_budget_cuts_sooner() {
        let mut s = Splitter::new(4, 1000, 50, 1.0);
        let starts: Vec<i64> = run(&mut s, &stream(40, 12))
            .iter()
            .filter_map(|(_, r)| r.start)
            .collect();
        assert!(starts.len() >= 3, "{starts:?}");
    }

    #[test]
    fn an_irregular_stream_is_not_split_again() {
        let mut s = Splitter::new(4, 10, usize::MAX, 1.0);
        let mut packets = stream(60, 12);
        packets[15].dts = Some(3);
        let starts: Vec<usize> = run(&mut s, &packets)
            .iter()
            .filter(|(_, r)| r.start.is_some())
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(starts, [12]);
        let mut s = Splitter::new(4, 10, usize::MAX, 1.0);
        let mut packets = stream(60, 12);
        packets[2].pts = None;
        assert!(run(&mut s, &packets).is_empty());
    }

    #[test]
    fn no_chunk_starts_without_a_keyframe_or_an_anchor() {
        let packets = stream(60, 1000);
        let mut s = Splitter::new(4, 10, usize::MAX, 1.0);
        s.set_anchor(10);
        assert_eq!(s.route(packets[0]), Route::default());
        // The caller could not keep the packets since that keyframe.
        s.too_many_kept();
        assert!(packets[1..].iter().all(|p| s.route(*p).start.is_none()));
        let mut s = Splitter::new(4, 10, usize::MAX, 1.0);
        assert!(s.needs_anchor());
        assert!(packets.iter().all(|p| s.route(*p).start.is_none()));
    }

    /// Random streams (B-frame runs of 0-3, keyframes now and then,
    /// random sizes): every boundary is on the grid, crossed by the first
    /// packet shown at or after it, and the previous chunk takes exactly
    /// the packets decoded before it until it is closed.
    #[test]
    fn random_streams_keep_every_rule() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let mut packets = Vec::new();
            let mut t = 0i64;
            while packets.len() < 400 {
                let bs = rand(4) as i64;
                let key = rand(8) == 0;
                // Decoded: the anchor frame, then the B-frames before it.
                packets.push(Seen {
                    pts: Some(t + bs + 10),
                    dts: Some(packets.len() as i64),
                    key,
                    bytes: 1 + rand(100) as usize,
                });
                for b in 0..bs {
                    let dts = packets.len() as i64;
                    packets.push(Seen {
                        pts: Some(t + b + 10),
                        dts: Some(dts),
                        key: false,
                        bytes: 1 + rand(100) as usize,
                    });
                }
                t += bs + 1;
            }
            check(&packets, 1 + rand(6) as i64, 5 + rand(40) as i64);
        }
    }

    fn check(packets: &[Seen], step: i64, len: i64) {
        let mut s = Splitter::new(step, len, 2000, 1.0);
        s.set_anchor(10);
        let mut closing: Option<i64> = None;
        let mut last_start = i64::MIN;
        for (i, p) in packets.iter().enumerate() {
            let r = s.route(*p);
            let (pts, dts) = (p.pts.unwrap(), p.dts.unwrap());
            if let Some(g) = closing.take() {
                assert_eq!(r.close_previous, dts >= g, "packet {i}");
                if dts < g {
                    assert!(r.to_previous && r.start.is_none(), "packet {i}");
                    closing = Some(g);
                }
            }
            if let Some(g) = r.start {
                assert!(g > last_start && (g - 10) % step == 0, "{g}");
                assert!(pts >= g && packets[..i].iter().all(|q| q.pts.unwrap() < g));
                assert_eq!(r.to_previous, dts < g);
                closing = Some(g);
                last_start = g;
            }
        }
    }
}
