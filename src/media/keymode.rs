//! Where the encoded rungs' IDR frames go: on a grid of time, where the
//! source has its keyframes (a copied rung's cut points), or every N
//! frames (SVT-AV1's only way); and the interval the encoders are told.

use super::Settings;

/// Where IDR frames go.
pub(super) enum KeyMode {
    /// Every `step` (stream time base) from the first frame.
    Grid {
        anchor: Option<i64>,
        step: i64,
        next: i64,
    },
    /// Where the source has a keyframe (the copied rung's cut points).
    Source,
    /// Every `every` frames from the first: SVT-AV1 can only place its
    /// keyframes so (it ignores a frame asked to be one), so with an AV1
    /// group every rung cuts there.
    Frames { every: u64, seen: u64 },
}

impl KeyMode {
    /// True when the frame shown at `pts` (`key`: a source keyframe) is
    /// to be an IDR. (The grid is updated on every frame, the first
    /// included.)
    pub(super) fn decide(&mut self, pts: i64, key: bool) -> bool {
        match self {
            KeyMode::Source => key,
            KeyMode::Frames { every, seen } => {
                *seen += 1;
                (*seen - 1).is_multiple_of(*every)
            }
            KeyMode::Grid { anchor, step, next } => {
                // Decided by timestamp, so VFR input still cuts cleanly
                // (LIBAV-NOTES.md).
                let a = *anchor.get_or_insert(pts);
                if pts >= *next {
                    *next = a + ((pts - a).div_euclid(*step) + 1) * *step;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// The grid's first point, once the first frame has set it.
    pub(super) fn anchor(&self) -> Option<i64> {
        match self {
            KeyMode::Grid { anchor, .. } => *anchor,
            _ => None,
        }
    }

    /// The first frame at or after `at` is an IDR and the grid starts
    /// again there (a live's publisher back). The source's keyframes
    /// already are one; SVT-AV1's frame grid cannot move.
    pub(super) fn restart_at(&mut self, at: i64) {
        if let KeyMode::Grid { anchor, next, .. } = self {
            *anchor = Some(at);
            *next = at;
        }
    }
}

/// Where keyframes go (see [`KeyMode`]) and the interval the encoders
/// are told, for a stream at `fps` with `per_sec` ticks a second;
/// `source_keys`: the source is copied (its keyframes are the cuts), and
/// with an AV1 group, every how many frames they are (see
/// `copy::frame_grid`).
pub(super) fn key_plan(
    fps: f64,
    per_sec: f64,
    ((source_keys, source_every), av1): ((bool, Option<u64>), bool),
    settings: &Settings,
) -> (super::x264::KeyInt, KeyMode) {
    let every = ((fps * settings.keyframe_seconds).round() as u64).max(1);
    let every = source_every.filter(|_| source_keys).unwrap_or(every);
    let max = if source_keys && !av1 {
        // Only our forced IDRs (the source's keyframes) may cut.
        (fps * f64::from(settings.segment_seconds) * 4.0).round() as u32
    } else {
        // Twice the grid, so x264 never adds one off the grid.
        every as u32 * 2
    };
    let keys = if av1 {
        KeyMode::Frames { every, seen: 0 }
    } else if source_keys {
        KeyMode::Source
    } else {
        KeyMode::Grid {
            anchor: None,
            step: ((settings.keyframe_seconds * per_sec).round() as i64).max(1),
            next: 0,
        }
    };
    let grid = av1.then_some(every as u32);
    (super::x264::KeyInt { max, grid }, keys)
}
