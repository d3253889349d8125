//! A spool whose past is let go: a live kept nowhere (`record: false`)
//! never needs what its readers have read, so its writer frees those
//! bytes' disk blocks ([`SpoolWriter::release`], a hole punched in the
//! file) and the broadcast holds a bounded amount of disk however long
//! it runs (issue 27: a 24/7 live was cut at `--max-upload-bytes`).
//!
//! The file keeps its offsets (the hole reads as zeros), so readers that
//! were reading go on as before. A reader that begins after a release
//! (the copy fast path's second pass, starting over) sees the file with
//! the released range cut out: the head `[0, from)` (the container's
//! header and stream configurations) followed at once by what was kept
//! from `to` on, `to` being a place where a demuxer can start again (an
//! FLV keyframe tag, an MPEG-TS packet): its *gap*, fixed when it first
//! reads or seeks. Each reader's position is shared with the writer,
//! which releases only below what every reader may still read.

use super::{Shared, SpoolControl, SpoolReader, SpoolWriter};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// Bytes kept behind the slowest reader: a demuxer may seek back within
/// what its I/O buffers just read.
pub(crate) const MARGIN: u64 = 256 << 10;

/// Frees the disk blocks of `len` bytes of a file from an offset.
pub(super) type Punch = fn(&std::fs::File, u64, u64) -> io::Result<()>;

/// A reader's share of the window: where it reads next in the file, and
/// the gap it skips.
#[derive(Debug)]
pub(super) struct Tracked {
    at: AtomicU64,
    pub(super) gap: (u64, u64),
}

impl Tracked {
    /// The lowest offset past the head `[0, from)` this reader may still
    /// read: where it is, or where its gap takes it after the head.
    fn low(&self, from: u64) -> u64 {
        let at = self.at.load(Ordering::Acquire);
        let (f, t) = self.gap;
        match t > f {
            true if at < f => t,
            true => at,
            false => at.max(from),
        }
    }
}

/// The offset in the file of `pos` in a reader's view with `gap`.
pub(super) fn physical((from, to): (u64, u64), pos: u64) -> u64 {
    match to > from && pos >= from {
        true => pos + (to - from),
        false => pos,
    }
}

/// The lowest offset a live reader of `readers` may still read past
/// `[0, from)`.
fn lowest(readers: &[Weak<Tracked>], from: u64) -> Option<u64> {
    readers
        .iter()
        .filter_map(Weak::upgrade)
        .map(|t| t.low(from))
        .min()
}

impl Shared {
    fn readers(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Tracked>>> {
        self.readers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SpoolControl {
    /// The highest offset that could be released now with head `from`:
    /// [`MARGIN`] below every reader's next read, and below what is
    /// written.
    pub(crate) fn releasable(&self, from: u64) -> u64 {
        let low = {
            let mut readers = self.shared.readers();
            readers.retain(|r| r.strong_count() > 0);
            lowest(&readers, from)
        };
        let written = self.written();
        let low = low.unwrap_or(written);
        low.min(written).saturating_sub(MARGIN)
    }
}

impl SpoolWriter {
    /// Lets go of the file's bytes from `from` (or from the last release)
    /// up to `to`, a place a demuxer can start from; readers that begin
    /// from now on skip them. Refused (`Ok(0)`) if a reader may still
    /// read them. Returns the bytes let go. `punch` frees the disk blocks
    /// of a range of the file (`ffi::punch_hole`; the spool does not reach
    /// down to `ffi`). Blocking.
    pub(crate) fn release(&mut self, from: u64, to: u64, punch: Punch) -> io::Result<u64> {
        let shared = &self.control.shared;
        // Under the readers' lock: a reader that begins now sees the new
        // gap, or is counted.
        let readers = shared.readers();
        let mut st = shared.lock();
        let (f, t) = st.gap;
        let before = if t > f { t } else { from };
        let low = lowest(&readers, from).unwrap_or(st.written);
        if (t > f && f != from) || to <= before || to > low.min(st.written).saturating_sub(MARGIN) {
            return Ok(0);
        }
        st.gap = (from, to);
        drop((st, readers));
        const BLOCK: u64 = 4096;
        let (start, end) = (before.div_ceil(BLOCK) * BLOCK, to / BLOCK * BLOCK);
        if end > start {
            punch(&self.file, start, end - start)?;
        }
        Ok(to - before)
    }
}

impl SpoolReader {
    /// This reader's share of the window, made when it first reads or
    /// seeks (a spare reader kept for later does not hold the window).
    pub(super) fn tracked(&mut self) -> Arc<Tracked> {
        if let Some(t) = &self.tracked {
            return t.clone();
        }
        let shared = &self.control.shared;
        let mut readers = shared.readers();
        let gap = shared.lock().gap;
        let t = Arc::new(Tracked {
            at: AtomicU64::new(physical(gap, self.pos)),
            gap,
        });
        readers.push(Arc::downgrade(&t));
        drop(readers);
        self.tracked = Some(t.clone());
        t
    }

    /// Moves this reader to `pos` of its view (shared with the writer).
    pub(super) fn moved(&mut self, pos: u64) {
        self.pos = pos;
        let t = self.tracked();
        t.at.store(physical(t.gap, pos), Ordering::Release);
    }
}
