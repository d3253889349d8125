//! The blocking, seekable view of a spool handed to the demuxer.

use super::SpoolControl;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Duration;

/// Told when a reader waits long for bytes that are not there yet, and
/// when they arrive (a job gives its transcode slot back meanwhile).
pub(crate) trait WaitHook: Send + Sync {
    /// The reader has waited [`YIELD_AFTER`] for the upload.
    fn waiting(&self);
    /// Bytes arrived after [`WaitHook::waiting`]; `false` stops the reader
    /// (the job was cancelled while it waited to go on).
    fn resumed(&self) -> bool;
}

/// How long a reader waits for the upload before its [`WaitHook`] hears.
pub(super) const YIELD_AFTER: Duration = Duration::from_millis(500);

/// The blocking, seekable view handed to the demuxer.
pub(crate) struct SpoolReader {
    pub(super) file: File,
    /// The logical position; may run ahead of what is written (a seek to a
    /// `moov` atom at the end), in which case the next read waits.
    pub(super) pos: u64,
    pub(super) control: SpoolControl,
    pub(super) hook: Option<Arc<dyn WaitHook>>,
    /// Where it reads, shared with the writer (`window`), from its first
    /// read or seek.
    pub(super) tracked: Option<Arc<super::window::Tracked>>,
}

impl std::fmt::Debug for SpoolReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolReader")
            .field("pos", &self.pos)
            .finish()
    }
}

/// How long one wait on the condvar lasts before re-checking state. Wakeups
/// come from notifications; the timeout only bounds a missed one.
const WAIT_SLICE: Duration = Duration::from_millis(250);

fn aborted_error() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "upload aborted")
}

impl SpoolReader {
    /// A control handle sharing this reader's spool.
    pub(crate) fn control(&self) -> SpoolControl {
        self.control.clone()
    }

    /// Another reader of the same spool, positioned at 0 (reads are
    /// positional, so the two never disturb each other).
    pub(crate) fn try_clone(&self) -> io::Result<SpoolReader> {
        Ok(SpoolReader {
            file: self.file.try_clone()?,
            pos: 0,
            control: self.control.clone(),
            hook: self.hook.clone(),
            tracked: None,
        })
    }

    /// Sets who hears of long waits.
    pub(crate) fn set_wait_hook(&mut self, hook: Arc<dyn WaitHook>) {
        self.hook = Some(hook);
    }
}

impl SpoolReader {
    /// Blocks until bytes past offset `at` are written; returns how many
    /// are there (0: the upload ended at or before `at`).
    fn wait_past(&self, at: u64) -> io::Result<u64> {
        let started = std::time::Instant::now();
        let mut yielded = false;
        let mut st = self.control.shared.lock();
        loop {
            if st.aborted {
                return Err(aborted_error());
            }
            if st.written > at || st.finished {
                let n = st.written.saturating_sub(at);
                drop(st);
                if yielded && !self.hook.as_ref().is_none_or(|h| h.resumed()) {
                    return Err(aborted_error());
                }
                return Ok(n);
            }
            if !yielded && started.elapsed() >= YIELD_AFTER {
                if let Some(h) = &self.hook {
                    drop(st);
                    h.waiting();
                    yielded = true;
                    st = self.control.shared.lock();
                    continue;
                }
            }
            let t = std::time::Instant::now();
            st = match self.control.shared.grew.wait_timeout(st, WAIT_SLICE) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
            let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.control
                .shared
                .waited_ns
                .fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Reads `buf.len()` bytes at `at`, waiting for them; `false` if the
    /// upload ended first.
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<bool> {
        let end = at + buf.len() as u64;
        if end > 0 && self.wait_past(end - 1)? == 0 {
            return Ok(false);
        }
        self.file.read_exact_at(buf, at)?;
        Ok(true)
    }

    /// True when the spool is an MP4/MOV whose `mdat` box comes before its
    /// `moov` box (a phone file whose index is at the end). Walks the first
    /// few top-level box headers, waiting for them as they arrive.
    fn mdat_before_moov(&self) -> io::Result<bool> {
        let mut at = 0u64;
        for _ in 0..8 {
            let mut head = [0u8; 16];
            if !self.read_exact_at(&mut head[..8], at)? {
                return Ok(false);
            }
            let size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
            match &head[4..8] {
                b"mdat" => return Ok(true),
                b"moov" => return Ok(false),
                b"ftyp" | b"free" | b"skip" | b"wide" | b"uuid" | b"pdin" => {}
                _ => return Ok(false),
            }
            let size = match size {
                // A 64-bit size follows the type.
                1 => {
                    if !self.read_exact_at(&mut head[8..16], at + 8)? {
                        return Ok(false);
                    }
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&head[8..16]);
                    u64::from_be_bytes(b)
                }
                // A box to the end of the file is the last one.
                0 => return Ok(false),
                n => n,
            };
            if size < 8 {
                return Ok(false);
            }
            at = at.saturating_add(size);
        }
        Ok(false)
    }

    /// The answer to "where is the end?" while the upload is arriving: the
    /// declared size; when the file may be up to `slack` bytes longer and
    /// is an MP4 whose index is at its end, the larger size (too large only
    /// makes the demuxer wait for the end, which that layout needs anyway;
    /// too small would cut its index — LIBAV-NOTES.md).
    fn declared_end(&self, (size, slack): (u64, u64)) -> io::Result<u64> {
        if slack > 0 && self.mdat_before_moov()? {
            Ok(size + slack)
        } else {
            Ok(size)
        }
    }
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let gap = self.tracked().gap;
        let at = super::window::physical(gap, self.pos);
        let available = self.wait_past(at)?;
        if available == 0 {
            return Ok(0);
        }
        let mut want = buf
            .len()
            .min(usize::try_from(available).unwrap_or(usize::MAX));
        if gap.1 > gap.0 && self.pos < gap.0 {
            // The head ends where the gap begins.
            want = want.min(usize::try_from(gap.0 - self.pos).unwrap_or(usize::MAX));
        }
        let n = self.file.read_at(&mut buf[..want], at)?;
        self.moved(self.pos + n as u64);
        Ok(n)
    }
}

impl Seek for SpoolReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base_plus = |base: u64, off: i64| -> io::Result<u64> {
            base.checked_add_signed(off)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))
        };
        // Before the state's lock (the window's lock comes first).
        let gap = self.tracked().gap;
        let new = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(off) => base_plus(self.pos, off)?,
            SeekFrom::End(off) => {
                let known = {
                    let st = self.control.shared.lock();
                    if st.aborted {
                        return Err(aborted_error());
                    }
                    if st.finished {
                        Some((view_end(gap, st.written), 0))
                    } else {
                        st.expected
                    }
                };
                match known {
                    Some(declared) => base_plus(self.declared_end(declared)?, off)?,
                    None => {
                        return Err(io::Error::new(
                            io::ErrorKind::Unsupported,
                            "size not known while the upload is arriving",
                        ))
                    }
                }
            }
        };
        self.moved(new);
        Ok(new)
    }
}

/// The end of a view with `gap` of a file `end` bytes long.
fn view_end((from, to): (u64, u64), end: u64) -> u64 {
    match to > from && end >= to {
        true => end - (to - from),
        false => end,
    }
}
