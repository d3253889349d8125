//! A bounded in-memory cache of the files players fetch, so a hot segment
//! or playlist costs no disk I/O and no blocking-pool hop. Entries are
//! keyed by path and carry the video's store epoch when they were read:
//! any write through the store to that video (a new playlist, a poster,
//! a removal) makes them stale. Segments and keys are immutable by name
//! (generations), so a stale entry can only be a playlist or a poster.
//! Least recently used entries go first when the byte budget is full.

use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// A file as served: its bytes and validators.
#[derive(Debug)]
pub(crate) struct CachedFile {
    pub bytes: Bytes,
    pub modified: SystemTime,
    /// Strong validator: length and modification time.
    pub etag: String,
    /// Its gzip encoding, made once when asked for.
    pub gzip: OnceLock<Option<Bytes>>,
}

impl CachedFile {
    pub(crate) fn new(bytes: Bytes, modified: SystemTime) -> Self {
        let nanos = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        CachedFile {
            etag: format!("\"{:x}-{nanos:x}\"", bytes.len()),
            bytes,
            modified,
            gzip: OnceLock::new(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    file: Arc<CachedFile>,
    epoch: u64,
    /// Key of this entry in `Inner::order`.
    used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<PathBuf, Entry>,
    /// Entries by last use (oldest first).
    order: BTreeMap<u64, PathBuf>,
    bytes: usize,
    clock: u64,
}

/// The cache (a budget of 0 turns it off).
#[derive(Debug)]
pub(crate) struct FileCache {
    budget: usize,
    /// Files larger than this are streamed, never cached.
    pub max_file: usize,
    inner: Mutex<Inner>,
}

impl FileCache {
    pub(crate) fn new(budget: usize) -> Self {
        FileCache {
            budget,
            max_file: (budget / 4).min(16 << 20),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The file at `path` if cached at `epoch`.
    pub(crate) fn get(&self, path: &Path, epoch: u64) -> Option<Arc<CachedFile>> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *guard;
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.map.get_mut(path)?;
        if entry.epoch != epoch {
            return None;
        }
        let path = inner.order.remove(&entry.used)?;
        entry.used = now;
        let file = entry.file.clone();
        inner.order.insert(now, path);
        Some(file)
    }

    /// Keeps `file` (read at `epoch`), evicting the least recently used.
    pub(crate) fn put(&self, path: PathBuf, epoch: u64, file: Arc<CachedFile>) {
        let size = file.bytes.len();
        if size > self.max_file || size > self.budget {
            return;
        }
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *guard;
        if let Some(old) = inner.map.remove(&path) {
            inner.order.remove(&old.used);
            inner.bytes -= old.file.bytes.len();
        }
        while inner.bytes + size > self.budget {
            let Some((_, victim)) = inner.order.pop_first() else {
                break;
            };
            if let Some(e) = inner.map.remove(&victim) {
                inner.bytes -= e.file.bytes.len();
            }
        }
        inner.clock += 1;
        let used = inner.clock;
        inner.order.insert(used, path.clone());
        inner.bytes += size;
        inner.map.insert(path, Entry { file, epoch, used });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: usize) -> Arc<CachedFile> {
        Arc::new(CachedFile::new(
            Bytes::from(vec![0u8; n]),
            SystemTime::UNIX_EPOCH,
        ))
    }

    #[test]
    fn stale_epochs_miss_and_the_least_recently_used_go_first() {
        let c = FileCache::new(1000);
        let names: Vec<PathBuf> = (0..6).map(|i| PathBuf::from(i.to_string())).collect();
        for n in &names[..5] {
            c.put(n.clone(), 1, file(200));
        }
        assert!(c.get(&names[0], 1).is_some());
        assert!(c.get(&names[0], 2).is_none());
        // `1` is the oldest use now; one more entry pushes it out.
        c.put(names[5].clone(), 1, file(200));
        assert!(c.get(&names[1], 1).is_none());
        assert!(c.get(&names[0], 1).is_some() && c.get(&names[5], 1).is_some());
        // Too large for the cache at all.
        c.put(PathBuf::from("huge"), 1, file(251));
        assert!(c.get(Path::new("huge"), 1).is_none());
        assert_eq!(file(5).etag, "\"5-0\"");
    }
}
