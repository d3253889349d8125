//! A live kept nowhere (`record: false`) lets go of what its job has read
//! (`spool::window`: the spool's disk blocks behind its readers are
//! freed), so it holds about 64 MiB (a quarter of `--max-upload-bytes`
//! when that is less) on disk and in the quota however long it runs,
//! plus what its job has not read yet, instead of being cut once it
//! has sent that much (issue 27: a 24/7 stream at 3 Mbit/s was cut after
//! three hours). What it holds, not what it sent, is what the size limit
//! counts. A live that is kept needs every byte and lets go of none.
//!
//! The broadcast marks where a demuxer can start again (an FLV video
//! keyframe tag, an audio tag of a broadcast without video, an MPEG-TS
//! chunk); the first frame ends the head that is never let go of (the FLV
//! header and the stream configurations), and releases end at marks,
//! so the copy fast path's second pass, which starts over, reads a valid
//! stream: the head, then what was kept.

use crate::ingest::Upload;
use crate::Error;
use std::collections::VecDeque;

/// Bytes held at most before a release is tried (less under a small
/// `--max-upload-bytes`: a quarter of it).
const EVERY_MAX: u64 = 64 << 20;
/// Marks kept at most (the oldest go first).
const MARKS: usize = 1024;
/// Marks closer than this to the last one are not kept.
const MARK_EVERY: u64 = 64 << 10;

/// Where a live kept nowhere may let go of its spool.
#[derive(Debug)]
pub(super) struct Window {
    /// Where the head ends: the first frame (the head holds the FLV
    /// header and the configurations, never a frame: a reader that skips
    /// to a mark has every stream start there).
    head: Option<u64>,
    marks: VecDeque<u64>,
    /// Bytes held from which a release is tried.
    every: u64,
}

impl Window {
    pub(super) fn new(max_upload_bytes: u64) -> Window {
        Window {
            head: None,
            marks: VecDeque::new(),
            every: (max_upload_bytes / 4).clamp(1, EVERY_MAX),
        }
    }

    /// A frame (or an MPEG-TS chunk) at offset `at` of the spool; `start`:
    /// a demuxer can start again there. The first one ends the head.
    pub(super) fn frame(&mut self, at: u64, start: bool) {
        let head = *self.head.get_or_insert(at);
        if start {
            self.mark(head, at);
        }
    }

    fn mark(&mut self, head: u64, at: u64) {
        let last = self.marks.back().copied().unwrap_or(head);
        if at == head || at < last + MARK_EVERY {
            return;
        }
        if self.marks.len() == MARKS {
            self.marks.pop_front();
        }
        self.marks.push_back(at);
    }

    /// The last mark at or below `limit` (marks up to it are used up).
    fn pick(&mut self, limit: u64) -> Option<u64> {
        let mut last = None;
        while let Some(&m) = self.marks.front().filter(|&&m| m <= limit) {
            last = Some(m);
            self.marks.pop_front();
        }
        last
    }
}

impl Upload<'_> {
    /// Lets go of the spool up to the last mark every reader is past,
    /// once the broadcast holds `window.every` bytes.
    pub(super) async fn slide(&mut self, window: &mut Window) -> Result<(), Error> {
        let Some(head) = window.head else {
            return Ok(());
        };
        if self.received - self.released < window.every {
            return Ok(());
        }
        let limit = self.abort.spool.releasable(head);
        let Some(to) = window.pick(limit) else {
            return Ok(());
        };
        let mut writer = self.writer.take().ok_or(Error::Aborted)?;
        let (writer, freed) = tokio::task::spawn_blocking(move || {
            let freed = writer.release(head, to, crate::ffi::punch_hole);
            (writer, freed)
        })
        .await?;
        self.writer = Some(writer);
        let freed = freed?;
        self.released += freed;
        self.ctx.quota.drop_stored(self.id, freed);
        tracing::debug!(id = %self.id, to, freed, "live kept nowhere: spool let go of");
        crate::failpoint!("window.after_release");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::MARGIN;
    use std::io::{Read, Seek, SeekFrom};

    #[test]
    fn marks_are_spaced_bounded_and_used_up_to_a_limit() {
        assert_eq!(Window::new(4 << 30).every, 64 << 20);
        let mut w = Window::new(4 << 20);
        assert_eq!(w.every, 1 << 20);
        w.frame(13, false);
        w.frame(13 + 1000, true);
        assert!(w.marks.is_empty(), "the head, then one too close");
        w.frame(13 + 2 * MARK_EVERY, false);
        assert!(w.marks.is_empty(), "not a start");
        for i in 1..=2000u64 {
            w.frame(13 + i * MARK_EVERY, true);
        }
        assert_eq!(w.marks.len(), MARKS);
        assert_eq!(w.marks.front(), Some(&(13 + 977 * MARK_EVERY)));
        assert_eq!(w.pick(13 + 976 * MARK_EVERY), None);
        assert_eq!(
            w.pick(13 + 1000 * MARK_EVERY + 5),
            Some(13 + 1000 * MARK_EVERY)
        );
        assert_eq!(w.marks.front(), Some(&(13 + 1001 * MARK_EVERY)));
        assert_eq!(w.head, Some(13));
    }

    /// Byte `i` of the window tests' spool.
    fn pattern(i: u64) -> u8 {
        (i % 251) as u8
    }

    #[test]
    fn spool_released_bytes_free_their_blocks_and_new_readers_skip_them() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source");
        let mut w = crate::spool::create(&path).unwrap();
        let mut spare = w.reader(&path).unwrap();
        let mut early = w.reader(&path).unwrap();
        let all: Vec<u8> = (0..3u64 << 20).map(pattern).collect();
        w.append(&all).unwrap();
        // A reader that read only the head holds everything after it.
        let mut head = [0u8; 50];
        early.read_exact(&mut head).unwrap();
        assert_eq!(w.control().releasable(100), 0);
        assert_eq!(w.release(100, 1 << 20, crate::ffi::punch_hole).unwrap(), 0);
        drop(early);
        let mut r = w.reader(&path).unwrap();
        let mut first = vec![0u8; 2 << 20];
        r.read_exact(&mut first).unwrap();
        let limit = w.control().releasable(100);
        assert_eq!(limit, (2 << 20) - MARGIN);
        // Not past what the reader may still read; then up to a chosen place.
        assert_eq!(
            w.release(100, limit + 1, crate::ffi::punch_hole).unwrap(),
            0
        );
        let blocks = std::fs::metadata(&path).unwrap().blocks();
        assert_eq!(
            w.release(100, 1 << 20, crate::ffi::punch_hole).unwrap(),
            (1 << 20) - 100
        );
        let freed = (blocks - std::fs::metadata(&path).unwrap().blocks()) * 512;
        assert!(freed >= (1 << 20) - 8192, "{freed} bytes freed");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 << 20);
        // The reader goes on; a spare made before, used after, and a new one
        // see the head, then what was kept.
        let mut rest = Vec::new();
        w.finish().unwrap();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, &all[2 << 20..]);
        for mut later in [spare.try_clone().unwrap(), w.reader(&path).unwrap()] {
            let mut seen = Vec::new();
            later.read_to_end(&mut seen).unwrap();
            assert_eq!(&seen[..100], &all[..100]);
            assert_eq!(&seen[100..], &all[1 << 20..]);
            assert_eq!(later.seek(SeekFrom::End(0)).unwrap(), seen.len() as u64);
        }
        // A second release goes on from the first (the same head); a spare
        // reader never used holds nothing, and skips the whole gap.
        let to = (3 << 20) - MARGIN;
        assert_eq!(
            w.release(7, to, crate::ffi::punch_hole).unwrap(),
            0,
            "another head"
        );
        assert_eq!(
            w.release(100, to, crate::ffi::punch_hole).unwrap(),
            to - (1 << 20)
        );
        let mut seen = Vec::new();
        spare.read_to_end(&mut seen).unwrap();
        assert_eq!(&seen[..100], &all[..100]);
        assert_eq!(&seen[100..], &all[to as usize..]);
    }
}
