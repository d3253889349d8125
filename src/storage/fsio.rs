//! Durable file operations. A write that a client may later rely on goes
//! through [`write_atomic`]: a temporary file in the same folder, `fsync`,
//! `rename` over the destination, `fsync` of the folder. A reader then sees
//! the old file or the new one, never half of one, and after a power cut
//! the new one is there if the call returned.

use super::names::TMP_SUFFIX;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Makes every temporary name unique within the process (two writers of
/// the same file, or two `/readyz` probes, never share one).
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary path beside `path` (ends in [`TMP_SUFFIX`]).
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{n}{TMP_SUFFIX}", std::process::id()));
    path.with_file_name(name)
}

/// Replaces `path` with `bytes` through a temporary name, so `path` never
/// holds half of them; not durable (the caller makes it so, or need not).
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Writes `bytes` to `path` atomically and durably (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    let written = (|| {
        let mut f = File::options().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_parent(path)
}

/// `fsync` of a folder: makes the names created or removed in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `fsync` of the folder holding `path`.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

/// `fsync` of a file's data (a segment before a playlist lists it).
pub fn sync_file(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Creates a folder (its parent must exist) and makes it durable.
pub fn create_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir(path)?;
    sync_parent(path)
}

/// Removes a folder and everything in it; a missing folder is not an error.
pub fn remove_dir_all(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes a folder and everything in it, the file named `last` last of
/// all (a video's record: a crash part-way leaves the record, and the
/// deletion it says is under way is finished at the next start, instead
/// of files without a record). A missing folder is not an error.
pub fn remove_dir_all_but_last(path: &Path, last: &str) -> io::Result<()> {
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        if e.file_name() == last {
            continue;
        }
        if e.file_type()?.is_dir() {
            std::fs::remove_dir_all(e.path())?;
        } else {
            remove_file(&e.path())?;
        }
    }
    sync_dir(path)?;
    remove_file(&path.join(last))?;
    std::fs::remove_dir(path)?;
    sync_parent(path)
}

/// Removes a file; a missing file is not an error.
pub fn remove_file(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Bytes in the files under `dir` (not following links).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| {
            let m = e.path().symlink_metadata().ok()?;
            Some(if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            })
        })
        .sum()
}

/// Removes `*.tmp` files under `dir` and its sub-folders (half-written
/// segments, playlists, records a crash left); returns how many.
pub fn remove_tmp_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            n += remove_tmp_files(&e.path());
        } else if e.file_name().to_string_lossy().ends_with(TMP_SUFFIX)
            && std::fs::remove_file(e.path()).is_ok()
        {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
        assert_ne!(tmp_path(&p), tmp_path(&p));
        assert!(tmp_path(&p).to_string_lossy().ends_with(".tmp"));
    }

    #[test]
    fn sizes_and_sweeps_go_into_sub_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("720p")).unwrap();
        std::fs::write(dir.path().join("a"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("720p/b.ts"), [0u8; 5]).unwrap();
        std::fs::write(dir.path().join("720p/c.ts.tmp"), [0u8; 7]).unwrap();
        assert_eq!(dir_size(dir.path()), 22);
        assert_eq!(remove_tmp_files(dir.path()), 1);
        assert_eq!(dir_size(dir.path()), 15);
        remove_dir_all(&dir.path().join("720p")).unwrap();
        remove_dir_all(&dir.path().join("720p")).unwrap();
        assert_eq!(dir_size(dir.path()), 10);
    }
}
