//! The spool: an upload written to disk as it arrives, and a blocking
//! `Read + Seek` view of it that waits for bytes not yet written.
//!
//! The writer (the HTTP ingest task) appends with [`SpoolWriter::append`];
//! each append wakes readers. The reader ([`SpoolReader`]) is handed to
//! libavformat through `StreamIo::from_read_seek` on a job thread, so it must
//! block (never `WouldBlock`) and must never panic (it runs under an
//! `extern "C"` callback; a panic there aborts the process).
//!
//! How the reader answers "where is the end?" decides whether a container
//! streams (see `shared/LIBAV-NOTES.md`): with the exact declared size when
//! the ingest knows it, an error ("unknown") while the size is unknown, and
//! the real size once the upload has finished. It never reports the bytes
//! written so far, and never blocks in `End` longer than it takes the first
//! few MP4 box headers to arrive (to tell an index at the end, which needs
//! the larger of two possible sizes, from one at the start).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// What the writer has told readers so far. Guarded by `Shared::state`.
#[derive(Debug, Default)]
struct State {
    /// Bytes durably handed to the file (readable with `pread`).
    written: u64,
    /// The size the upload declared for the file, when the ingest can tell,
    /// and how much larger it may turn out (a multipart body's optional
    /// final CRLF).
    expected: Option<(u64, u64)>,
    /// The upload ended normally: `written` is the final size.
    finished: bool,
    /// The upload was cut off, rejected or cancelled: reads fail from now on.
    aborted: bool,
}

/// State shared by the writer and every reader of one spool.
#[derive(Debug)]
struct Shared {
    /// A std mutex: it is held only for a few field updates, never across I/O.
    state: Mutex<State>,
    /// Signalled on every append, finish and abort.
    grew: Condvar,
    /// Nanoseconds readers have spent waiting for bytes to arrive.
    waited_ns: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked while holding it;
        // the counters inside are still consistent (plain field stores).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A handle that can end the spool from anywhere (job cancel, HTTP abort).
#[derive(Debug, Clone)]
pub(crate) struct SpoolControl {
    shared: Arc<Shared>,
}

impl SpoolControl {
    /// Marks the spool aborted and wakes any blocked reader, which then fails
    /// with an I/O error. Idempotent; a finished spool stays finished.
    pub(crate) fn abort(&self) {
        let mut st = self.shared.lock();
        if !st.finished {
            st.aborted = true;
        }
        drop(st);
        self.shared.grew.notify_all();
    }

    /// True once the upload ended normally.
    pub(crate) fn is_finished(&self) -> bool {
        self.shared.lock().finished
    }

    /// True once the upload was aborted.
    pub(crate) fn is_aborted(&self) -> bool {
        self.shared.lock().aborted
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.shared.lock().written
    }

    /// Time readers have spent waiting for the upload to catch up: a job's
    /// wall time minus this is its own work.
    pub(crate) fn waited(&self) -> Duration {
        Duration::from_nanos(
            self.shared
                .waited_ns
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

/// The writing end, owned by the ingest task.
#[derive(Debug)]
pub(crate) struct SpoolWriter {
    file: File,
    control: SpoolControl,
    /// Bytes written after `written` that readers may not see yet (a
    /// chunk whose checksum is still to be checked).
    hidden: u64,
}

/// Creates the spool file at `path` (which must not exist yet) and returns
/// its writer. Readers are made with [`SpoolWriter::reader`].
pub(crate) fn create(path: &Path) -> io::Result<SpoolWriter> {
    let file = File::options().write(true).create_new(true).open(path)?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        grew: Condvar::new(),
        waited_ns: std::sync::atomic::AtomicU64::new(0),
    });
    Ok(SpoolWriter {
        file,
        control: SpoolControl { shared },
        hidden: 0,
    })
}

/// Reopens the spool of a resumable upload to go on from `len` bytes
/// (what the client was told): anything after them is cut, and a new
/// writer appends from there. Readers see the `len` bytes at once.
pub(crate) fn reopen(path: &Path, len: u64) -> io::Result<SpoolWriter> {
    let file = File::options().write(true).open(path)?;
    file.set_len(len)?;
    let mut writer = SpoolWriter {
        file,
        control: SpoolControl {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    written: len,
                    ..State::default()
                }),
                grew: Condvar::new(),
                waited_ns: std::sync::atomic::AtomicU64::new(0),
            }),
        },
        hidden: 0,
    };
    writer.file.seek(SeekFrom::Start(len))?;
    Ok(writer)
}

/// Opens an already complete spool (a restart re-reading a finished upload).
pub(crate) fn open_finished(path: &Path) -> io::Result<SpoolReader> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            written: len,
            expected: Some((len, 0)),
            finished: true,
            aborted: false,
        }),
        grew: Condvar::new(),
        waited_ns: std::sync::atomic::AtomicU64::new(0),
    });
    Ok(SpoolReader {
        file,
        pos: 0,
        control: SpoolControl { shared },
        hook: None,
    })
}

impl SpoolWriter {
    /// A control handle for aborting or inspecting the spool.
    pub(crate) fn control(&self) -> SpoolControl {
        self.control.clone()
    }

    /// Opens an independent reader positioned at 0.
    pub(crate) fn reader(&self, path: &Path) -> io::Result<SpoolReader> {
        Ok(SpoolReader {
            file: File::open(path)?,
            pos: 0,
            control: self.control.clone(),
            hook: None,
        })
    }

    /// Declares the final size of the file, when the ingest can compute
    /// it: `size`, or up to `slack` bytes more.
    pub(crate) fn set_expected(&self, size: u64, slack: u64) {
        self.control.shared.lock().expected = Some((size, slack));
    }

    /// Writes `data` at the end of the file and wakes readers. Blocking: call
    /// it from `spawn_blocking`, never on a tokio worker directly.
    pub(crate) fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        let mut st = self.control.shared.lock();
        st.written += data.len() as u64;
        drop(st);
        self.control.shared.grew.notify_all();
        Ok(())
    }

    /// Writes `data` at the end of the file without showing it to readers
    /// until [`SpoolWriter::reveal`] (or dropping it with
    /// [`SpoolWriter::drop_hidden`]). Blocking.
    pub(crate) fn append_hidden(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.hidden += data.len() as u64;
        Ok(())
    }

    /// Shows the hidden bytes to readers.
    pub(crate) fn reveal(&mut self) {
        let mut st = self.control.shared.lock();
        st.written += std::mem::take(&mut self.hidden);
        drop(st);
        self.control.shared.grew.notify_all();
    }

    /// Cuts the hidden bytes off the file. Blocking.
    pub(crate) fn drop_hidden(&mut self) -> io::Result<()> {
        let written = self.control.shared.lock().written;
        self.hidden = 0;
        self.file.set_len(written)?;
        self.file.seek(SeekFrom::Start(written))?;
        Ok(())
    }

    /// Bytes readers can see.
    pub(crate) fn written(&self) -> u64 {
        self.control.written()
    }

    /// Makes what readers can see durable (fsync). Blocking.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.sync_data()
    }

    /// Marks the upload complete: readers see EOF at the final size. The
    /// bytes are on disk (fsync) when this returns.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.sync_data()?;
        let mut st = self.control.shared.lock();
        if !st.aborted {
            st.finished = true;
        }
        drop(st);
        self.control.shared.grew.notify_all();
        Ok(())
    }
}

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
pub(crate) const YIELD_AFTER: Duration = Duration::from_millis(500);

/// The blocking, seekable view handed to the demuxer.
pub(crate) struct SpoolReader {
    file: File,
    /// The logical position; may run ahead of what is written (a seek to a
    /// `moov` atom at the end), in which case the next read waits.
    pos: u64,
    control: SpoolControl,
    hook: Option<Arc<dyn WaitHook>>,
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
        let available = self.wait_past(self.pos)?;
        if available == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(available).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SpoolReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base_plus = |base: u64, off: i64| -> io::Result<u64> {
            base.checked_add_signed(off)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))
        };
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
                        Some((st.written, 0))
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
        self.pos = new;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn reader_waits_for_growth_and_sees_eof_after_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source");
        let mut w = create(&path).unwrap();
        let mut r = w.reader(&path).unwrap();
        let t = thread::spawn(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            all
        });
        for chunk in [&b"abc"[..], b"de", b"f"] {
            thread::sleep(Duration::from_millis(20));
            w.append(chunk).unwrap();
        }
        w.finish().unwrap();
        assert_eq!(t.join().unwrap(), b"abcdef");
    }

    #[test]
    fn abort_wakes_a_blocked_reader_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source");
        let mut w = create(&path).unwrap();
        w.append(b"xy").unwrap();
        let mut r = w.reader(&path).unwrap();
        let ctl = w.control();
        let t = thread::spawn(move || {
            let mut buf = [0u8; 8];
            assert_eq!(r.read(&mut buf).unwrap(), 2);
            r.read(&mut buf)
        });
        thread::sleep(Duration::from_millis(30));
        ctl.abort();
        let err = t.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn hidden_bytes_wait_for_reveal_and_reopen_cuts_to_the_told_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source");
        let mut w = create(&path).unwrap();
        w.append(b"abc").unwrap();
        w.append_hidden(b"XYZ").unwrap();
        let mut r = w.reader(&path).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        w.drop_hidden().unwrap();
        w.append_hidden(b"de").unwrap();
        w.reveal();
        assert_eq!(r.read(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"de");
        w.append(b"fgh").unwrap();
        drop((w, r));
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdefgh");
        let mut w = reopen(&path, 5).unwrap();
        w.append(b"!").unwrap();
        w.finish().unwrap();
        let mut all = String::new();
        w.reader(&path).unwrap().read_to_string(&mut all).unwrap();
        assert_eq!(all, "abcde!");
    }

    #[test]
    fn end_is_unknown_then_declared_then_final() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("source");
        let mut w = create(&path).unwrap();
        let mut r = w.reader(&path).unwrap();
        w.append(b"0123").unwrap();
        assert_eq!(
            r.seek(SeekFrom::End(0)).unwrap_err().kind(),
            io::ErrorKind::Unsupported
        );
        w.set_expected(10, 0);
        assert_eq!(r.seek(SeekFrom::End(-2)).unwrap(), 8);
        w.append(b"456").unwrap();
        w.finish().unwrap();
        assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), 7);
        // A seek past the end reads EOF once finished.
        r.seek(SeekFrom::Start(2)).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "23456");
    }

    #[test]
    fn an_mp4_with_its_index_at_the_end_gets_the_larger_size() {
        let dir = tempfile::tempdir().unwrap();
        let box_ = |kind: &[u8], len: u32| {
            let mut b = len.to_be_bytes().to_vec();
            b.extend_from_slice(kind);
            b.resize(len as usize, 0);
            b
        };
        for (first, want) in [(&b"mdat"[..], 1002), (&b"moov"[..], 1000)] {
            let path = dir.path().join(std::str::from_utf8(first).unwrap());
            let mut w = create(&path).unwrap();
            let mut r = w.reader(&path).unwrap();
            w.set_expected(1000, 2);
            w.append(&box_(b"ftyp", 24)).unwrap();
            w.append(&box_(first, 100)).unwrap();
            assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), want);
        }
        // Not an MP4: the declared size.
        let path = dir.path().join("mkv");
        let mut w = create(&path).unwrap();
        let mut r = w.reader(&path).unwrap();
        w.set_expected(1000, 2);
        w.append(&[0x1a, 0x45, 0xdf, 0xa3, 0, 0, 0, 0]).unwrap();
        assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), 1000);
    }
}
