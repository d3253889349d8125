//! Where a video's durable files live, behind one small interface: a
//! folder on this machine ([`FileObjects`], the single-box default) or an
//! S3-compatible bucket ([`super::s3::S3Objects`], issue 15).
//!
//! Keys are slash-separated, relative to the store's root (`<id>/<rel>`,
//! built from [`super::names`]); the caller never sees whether a key is a
//! path or an object name. Every call blocks: callers are job threads or
//! `spawn_blocking` tasks, never tokio workers. The two backends pass the
//! same contract test (`tests/s3_objects.rs`: a folder, and a real S3
//! server).

use super::fsio;
use std::io;
use std::path::{Path, PathBuf};

/// What the serving path's reads return: a future that holds no thread
/// while the network answers.
pub type Fut<T> = std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<T>> + Send>>;

/// A store of whole objects under string keys.
pub trait Objects: Send + Sync + std::fmt::Debug {
    /// The bytes of `key` (`NotFound` when missing).
    fn get(&self, key: &str) -> io::Result<Vec<u8>>;
    /// Writes `key` whole, replacing it; durable when this returns.
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()>;
    /// Writes `key` only if nothing is there yet (`AlreadyExists` if so).
    fn put_new(&self, key: &str, bytes: &[u8]) -> io::Result<()>;
    /// The bytes of `key` and its version tag (an S3 ETag; `None` where
    /// the backend has none).
    fn get_tagged(&self, key: &str) -> io::Result<(Vec<u8>, Option<String>)> {
        self.get(key).map(|b| (b, None))
    }
    /// Writes `key` only if it is still the version `tag` (`None`: only if
    /// it does not exist); `AlreadyExists` when another writer came first.
    /// Returns the new version's tag. A folder has one writer (this
    /// process, under the catalog's lock), so there it is a plain write.
    fn put_if(&self, key: &str, bytes: &[u8], tag: Option<&str>) -> io::Result<Option<String>> {
        let _ = tag;
        self.put(key, bytes).map(|_| None)
    }
    /// Stores the local file `from` as `key`; returns its size.
    fn upload(&self, key: &str, from: &Path) -> io::Result<u64>;
    /// The size of `key`, `None` when it is missing.
    fn size_of(&self, key: &str) -> io::Result<Option<u64>>;
    /// Every object under `prefix/`, named relative to it, with its size,
    /// in name order.
    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>>;
    /// The names of the folders directly under `prefix/` (`""`: the top).
    fn children(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// Size and last change of `key`, `None` when it is missing.
    fn stat(&self, key: &str) -> io::Result<Option<(u64, std::time::SystemTime)>>;
    /// `len` bytes of `key` from `start`.
    fn get_range(&self, key: &str, start: u64, len: u64) -> io::Result<Vec<u8>>;
    /// Removes `key` (a missing one is fine).
    fn delete(&self, key: &str) -> io::Result<()>;
    /// Removes every object under `prefix/`; returns how many there were.
    fn delete_all(&self, prefix: &str) -> io::Result<usize>;

    /// [`Objects::stat`] as a future that holds no thread while it waits
    /// (`None`: a local read, which `Store` runs on the blocking pool).
    fn stat_async(&self, key: &str) -> Option<Fut<Option<(u64, std::time::SystemTime)>>> {
        let _ = key;
        None
    }
    /// [`Objects::get`] as a future, like [`Objects::stat_async`].
    fn get_async(&self, key: &str) -> Option<Fut<Vec<u8>>> {
        let _ = key;
        None
    }
    /// [`Objects::get_range`] as a future, like [`Objects::stat_async`].
    fn get_range_async(&self, key: &str, start: u64, len: u64) -> Option<Fut<Vec<u8>>> {
        let _ = (key, start, len);
        None
    }

    // What differs between backends, asked by `Store` when it opens them
    // (never by type, and never by its callers).

    /// The folder on this machine whose files the objects are (`None`: a
    /// bucket, across the network).
    fn folder(&self) -> Option<&Path> {
        None
    }
    /// True when other nodes write these objects too (a shared bucket):
    /// records must be read again, and the store listed as a whole.
    fn shared(&self) -> bool {
        false
    }
    /// A URL that lets its holder GET `key` for `expires`, signed offline
    /// (`None`: the backend has none, a folder).
    fn presign_get(&self, key: &str, expires: std::time::Duration) -> Option<io::Result<String>> {
        let _ = (key, expires);
        None
    }
    /// Whether a second create of one key is refused (probed with `probe`,
    /// leaving nothing behind); a folder has one writer, this process.
    fn conditional_writes(&self, probe: &str) -> io::Result<bool> {
        let _ = probe;
        Ok(true)
    }
}

/// Objects as files under a folder, written atomically and durably.
#[derive(Debug, Clone)]
pub struct FileObjects {
    root: PathBuf,
    /// A write may make its key's top folder. The videos' own folder store
    /// says no: a video's folder is made only when the video is created,
    /// so a write that comes after its deletion fails instead of bringing
    /// it back. (A bucket has no folders; a folder standing in for one
    /// makes them.)
    make_top: bool,
}

impl FileObjects {
    /// Objects under `root` (created if needed), any key writable.
    pub fn open(root: &Path) -> io::Result<FileObjects> {
        std::fs::create_dir_all(root)?;
        Ok(FileObjects {
            root: root.to_path_buf(),
            make_top: true,
        })
    }

    /// The videos' folder store under `root`: a key's top folder (a
    /// video's) must exist for a write under it to succeed.
    pub fn for_videos(root: &Path) -> io::Result<FileObjects> {
        Ok(FileObjects {
            make_top: false,
            ..FileObjects::open(root)?
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(key.split('/').filter(|s| !s.is_empty()));
        p
    }

    /// The path of `key` with its folder made (durably) if missing, but
    /// never its top folder (a video's: only its creation makes it, so a
    /// write that comes after a deletion cannot bring the video back).
    fn path_in_made_dir(&self, key: &str) -> io::Result<PathBuf> {
        let path = self.path(key);
        let top = key.split('/').find(|s| !s.is_empty()).unwrap_or("");
        if !self.make_top && key.contains('/') && !self.root.join(top).is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{top} does not exist (deleted?)"),
            ));
        }
        if let Some(parent) = path.parent() {
            if !parent.is_dir() {
                std::fs::create_dir_all(parent)?;
                fsio::sync_parent(parent)?;
            }
        }
        Ok(path)
    }
}

impl Objects for FileObjects {
    fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(key))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        fsio::write_atomic(&self.path_in_made_dir(key)?, bytes)
    }

    fn put_new(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path_in_made_dir(key)?;
        // Written aside, then linked: the name appears whole, and only once.
        let tmp = fsio::tmp_path(&path);
        std::fs::write(&tmp, bytes)?;
        let linked = fsio::sync_file(&tmp).and_then(|_| std::fs::hard_link(&tmp, &path));
        let _ = std::fs::remove_file(&tmp);
        linked?;
        fsio::sync_parent(&path)
    }

    fn upload(&self, key: &str, from: &Path) -> io::Result<u64> {
        let path = self.path_in_made_dir(key)?;
        if path != from {
            let tmp = fsio::tmp_path(&path);
            std::fs::copy(from, &tmp)?;
            fsio::sync_file(&tmp)?;
            std::fs::rename(&tmp, &path)?;
            fsio::sync_parent(&path)?;
        } else {
            fsio::sync_file(&path)?;
        }
        Ok(std::fs::metadata(&path)?.len())
    }

    fn size_of(&self, key: &str) -> io::Result<Option<u64>> {
        Ok(self.stat(key)?.map(|(n, _)| n))
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        walk(&self.path(prefix), "", &mut out);
        out.sort();
        Ok(out)
    }

    fn children(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.path(prefix))? {
            let e = e?;
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(e.file_name().to_str().map(str::to_owned));
            }
        }
        out.sort();
        Ok(out)
    }

    fn stat(&self, key: &str) -> io::Result<Option<(u64, std::time::SystemTime)>> {
        match std::fs::symlink_metadata(self.path(key)) {
            Ok(m) if m.is_file() => Ok(Some((m.len(), m.modified()?))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn get_range(&self, key: &str, start: u64, len: u64) -> io::Result<Vec<u8>> {
        use std::io::{Read, Seek};
        let mut f = std::fs::File::open(self.path(key))?;
        f.seek(io::SeekFrom::Start(start))?;
        let mut out = Vec::new();
        f.take(len).read_to_end(&mut out)?;
        Ok(out)
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        fsio::remove_file(&self.path(key))
    }

    fn delete_all(&self, prefix: &str) -> io::Result<usize> {
        let n = self.list(prefix)?.len();
        fsio::remove_dir_all_but_last(&self.path(prefix), super::names::META_FILE)?;
        Ok(n)
    }

    fn folder(&self) -> Option<&Path> {
        Some(&self.root)
    }
}

/// Files under `dir` (not following links), named from `base`.
fn walk(dir: &Path, base: &str, out: &mut Vec<(String, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Some(name) = e.file_name().to_str().map(|n| format!("{base}{n}")) else {
            continue;
        };
        match e.path().symlink_metadata() {
            Ok(m) if m.is_dir() => walk(&e.path(), &format!("{name}/"), out),
            Ok(m) if m.is_file() => out.push((name, m.len())),
            _ => {}
        }
    }
}
