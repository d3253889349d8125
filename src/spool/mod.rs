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
use std::io::{self, Seek, SeekFrom, Write};
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
    /// The range let go (`window`): readers that begin now skip it.
    gap: (u64, u64),
    /// Where a live's publisher came back (offsets of the first byte it
    /// sent), in order.
    restarts: Vec<u64>,
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
    /// Where each reader reads (`window`). Locked before `state`.
    readers: Mutex<Vec<std::sync::Weak<window::Tracked>>>,
    /// `State::restarts.len()`, read without the lock at every packet.
    restart_count: std::sync::atomic::AtomicUsize,
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

    /// A live's publisher came back: its bytes begin at offset `at` (the
    /// job starts a new stretch of its timeline there).
    pub(crate) fn mark_restart(&self, at: u64) {
        let mut st = self.shared.lock();
        st.restarts.push(at);
        let n = st.restarts.len();
        drop(st);
        self.shared
            .restart_count
            .store(n, std::sync::atomic::Ordering::Release);
    }

    /// The `n`th restart's offset (see [`SpoolControl::mark_restart`]);
    /// a lock is taken only when there is one.
    pub(crate) fn restart(&self, n: usize) -> Option<u64> {
        let count = self
            .shared
            .restart_count
            .load(std::sync::atomic::Ordering::Acquire);
        (n < count).then(|| self.shared.lock().restarts.get(n).copied())?
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
        readers: Mutex::default(),
        restart_count: Default::default(),
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
                readers: Mutex::default(),
                restart_count: Default::default(),
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
            ..State::default()
        }),
        grew: Condvar::new(),
        waited_ns: std::sync::atomic::AtomicU64::new(0),
        readers: Mutex::default(),
        restart_count: Default::default(),
    });
    Ok(SpoolReader {
        file,
        pos: 0,
        control: SpoolControl { shared },
        hook: None,
        tracked: None,
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
            tracked: None,
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

mod reader;
mod window;

pub(crate) use reader::{SpoolReader, WaitHook};
#[cfg(test)]
pub(crate) use window::MARGIN;

#[cfg(test)]
mod tests;
