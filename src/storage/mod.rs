//! The storage layout, owned here and nowhere else: the [`VideoId`], every
//! file name ([`names`]), every path, durable atomic writes ([`fsio`]),
//! sizes and removal.
//!
//! ```text
//! <root>/<id>/meta.json              the record
//! <root>/<id>/source, source.done    the spool, and its completion mark
//! <root>/<id>/video.m3u8             master (or the one media playlist)
//! <root>/<id>/<rung>/video.m3u8      a rung's media playlist, its segments,
//! <root>/<id>/<rung>/iframes.m3u8    its I-frame playlist
//! <root>/<id>/keys/                  AES-128 keys (served at /keys only)
//! <root>/<id>/poster.jpg, thumb.jpg
//! ```
//!
//! Callers that only need bytes go through [`Store`]'s small interface
//! (read, write atomically, list, remove, size), with paths relative to a
//! video's folder; the muxer, which must write real files, asks for a
//! folder with [`Store::dir`].

pub mod fsio;
mod id;
pub mod names;
pub mod objects;
mod quota;
pub mod s3;

pub use id::{VideoId, ID_LEN};
pub use quota::{OverQuota, Quota};

use std::io;
use std::path::{Path, PathBuf};

/// The videos' storage: one folder per video under `root`, whose durable
/// files (records, playlists, segments, keys, images) are reached through
/// [`objects::Objects`] (today the same folder, [`objects::FileObjects`];
/// an S3 bucket is the next step of issue 15), while the files only this
/// machine works on (the spool, the muxers' working files) are paths.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    objects: std::sync::Arc<dyn objects::Objects>,
    /// A counter per video, bumped by every write or removal through the
    /// store: a reader's cache of a video's files is valid while it holds.
    epochs: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<VideoId, u64>>>,
    /// Striped locks for master playlist rebuilds ([`Store::master_lock`]).
    master_locks: std::sync::Arc<[std::sync::Mutex<()>; 16]>,
    /// Striped locks for caption track changes ([`Store::captions_lock`]).
    captions_locks: std::sync::Arc<[std::sync::Mutex<()>; 16]>,
}

/// The lock of `locks` that stripe `id` falls in.
fn stripe(locks: &[std::sync::Mutex<()>], id: VideoId) -> std::sync::MutexGuard<'_, ()> {
    let i = id.as_str().bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    locks[i % locks.len()]
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

impl Store {
    /// Opens (creating if needed) the storage folder `root`.
    pub fn open(root: &Path) -> io::Result<Store> {
        let objects = objects::FileObjects::open(root)?;
        Ok(Store {
            root: root.to_path_buf(),
            objects: std::sync::Arc::new(objects),
            epochs: Default::default(),
            master_locks: Default::default(),
            captions_locks: Default::default(),
        })
    }

    /// The change counter of video `id` (see [`Store::epochs`]).
    pub fn epoch(&self, id: VideoId) -> u64 {
        let e = self.epochs.lock().unwrap_or_else(|p| p.into_inner());
        e.get(&id).copied().unwrap_or(0)
    }

    fn changed(&self, id: VideoId) {
        let mut e = self.epochs.lock().unwrap_or_else(|p| p.into_inner());
        *e.entry(id).or_insert(0) += 1;
    }

    /// The storage folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of video `id`.
    pub fn dir(&self, id: VideoId) -> PathBuf {
        self.root.join(id.as_str())
    }

    /// The path of `rel` (slash-separated, built from [`names`]) in video
    /// `id`'s folder.
    pub fn path(&self, id: VideoId, rel: &str) -> PathBuf {
        let mut p = self.dir(id);
        p.extend(rel.split('/'));
        p
    }

    /// Every video folder (by id); other entries are ignored.
    pub fn list(&self) -> io::Result<Vec<VideoId>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if let Some(id) = entry.file_name().to_str().and_then(VideoId::parse) {
                if is_dir {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    /// Creates video `id`'s folder (durably); fails if it exists.
    pub fn create(&self, id: VideoId) -> io::Result<()> {
        fsio::create_dir(&self.dir(id))
    }

    /// The bytes of `rel` in video `id`.
    pub fn read(&self, id: VideoId, rel: &str) -> io::Result<Vec<u8>> {
        self.objects.get(&key(id, rel))
    }

    /// Writes `rel` in video `id` atomically and durably, creating its
    /// folder if needed.
    pub fn write(&self, id: VideoId, rel: &str, bytes: &[u8]) -> io::Result<()> {
        let written = self.objects.put(&key(id, rel), bytes);
        self.changed(id);
        written
    }

    /// Makes a file the muxer wrote at `rel` durable before anything lists
    /// it; returns its size. (An object store uploads it here.)
    pub fn publish_file(&self, id: VideoId, rel: &str) -> io::Result<u64> {
        self.objects.upload(&key(id, rel), &self.path(id, rel))
    }

    /// Renames a finished temporary file of video `id` to `rel`, durably
    /// (the file, then the rename, reach the disk).
    pub fn rename_into(&self, id: VideoId, tmp: &Path, rel: &str) -> io::Result<()> {
        fsio::sync_file(tmp)?;
        let path = self.path(id, rel);
        std::fs::rename(tmp, &path)?;
        // The folder that now holds the name.
        fsio::sync_parent(&path)?;
        self.changed(id);
        Ok(())
    }

    /// A lock held while a video's master playlist is rebuilt (the job and
    /// the captions API both write it; neither may lose the other's part).
    pub fn master_lock(&self, id: VideoId) -> std::sync::MutexGuard<'_, ()> {
        stripe(&self.master_locks[..], id)
    }

    /// A lock held from choosing a caption track's next version to
    /// publishing it (uploads, deletions and the job's refit of one video
    /// never pick the same version). Taken before [`Store::master_lock`].
    pub fn captions_lock(&self, id: VideoId) -> std::sync::MutexGuard<'_, ()> {
        stripe(&self.captions_locks[..], id)
    }

    /// True when `rel` exists in video `id`.
    pub fn exists(&self, id: VideoId, rel: &str) -> bool {
        self.objects
            .size_of(&key(id, rel))
            .is_ok_and(|s| s.is_some())
    }

    /// Removes one file of video `id` (missing is fine).
    pub fn remove(&self, id: VideoId, rel: &str) -> io::Result<()> {
        self.changed(id);
        self.objects.delete(&key(id, rel))
    }

    /// Removes video `id` entirely (missing is fine).
    pub fn remove_video(&self, id: VideoId) -> io::Result<()> {
        let removed = fsio::remove_dir_all(&self.dir(id));
        self.changed(id);
        removed
    }

    /// Bytes stored for video `id`.
    pub fn size(&self, id: VideoId) -> u64 {
        let listed = self.objects.list(id.as_str());
        listed.map_or(0, |l| l.iter().map(|(_, n)| n).sum())
    }

    /// Bytes stored under the root, all videos included.
    pub fn total_size(&self) -> u64 {
        fsio::dir_size(&self.root)
    }

    /// Removes what earlier generations of video `id` left once generation
    /// `generation` is published: generated files (segments, init
    /// segments, keys) of older generations, and rung folders not in `keep`.
    pub fn remove_stale(&self, id: VideoId, generation: u32, keep: &[&str]) {
        sweep(&self.dir(id), generation, Some(keep));
        self.changed(id);
    }

    /// Removes everything of video `id` but its record (and its spool when
    /// `keep_spool`), temporary files of those included: an upload may still
    /// be finishing its spool while its job fails.
    pub fn remove_outputs(&self, id: VideoId, keep_spool: bool) {
        self.changed(id);
        let Ok(entries) = std::fs::read_dir(self.dir(id)) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let spool = name.starts_with(names::SOURCE_FILE);
            if name.starts_with(names::META_FILE) || (keep_spool && spool) {
                continue;
            }
            let path = entry.path();
            let _ = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// The object key of `rel` in video `id`.
fn key(id: VideoId, rel: &str) -> String {
    format!("{id}/{rel}")
}

fn sweep(dir: &Path, generation: u32, keep_rungs: Option<&[&str]>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let rung = names::is_rung_name(name);
            if rung && keep_rungs.is_some_and(|k| !k.contains(&name)) {
                let _ = std::fs::remove_dir_all(&path);
            } else if rung || name == names::KEYS_DIR {
                sweep(&path, generation, None);
            }
        } else if names::generation_of(name).is_some_and(|g| g < generation) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_video_folder_round_trips() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let id = VideoId::random();
        store.create(id).unwrap();
        assert!(store.create(id).is_err());
        store.write(id, "720p/video.m3u8", b"#EXTM3U\n").unwrap();
        store.write(id, names::META_FILE, b"{}").unwrap();
        store.write(id, names::SOURCE_FILE, b"abc").unwrap();
        std::fs::create_dir(root.path().join("not-an-id")).unwrap();
        assert_eq!(store.list().unwrap(), vec![id]);
        assert_eq!(store.read(id, "720p/video.m3u8").unwrap(), b"#EXTM3U\n");
        assert_eq!(store.size(id), 8 + 2 + 3);
        store.remove_outputs(id, true);
        assert!(!store.exists(id, "720p/video.m3u8"));
        assert!(store.exists(id, names::SOURCE_FILE));
        store.remove_video(id).unwrap();
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn older_generations_are_swept() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let id = VideoId::random();
        store.create(id).unwrap();
        let all = [
            "720p/seg_00000.ts",
            "720p/g1_seg_00000.ts",
            "720p/video.m3u8",
            "700p/seg_00000.ts",
            "keys/key0_00000.key",
            "keys/g1_key0_00000.key",
            "poster.jpg",
        ];
        for rel in all {
            store.write(id, rel, b"x").unwrap();
        }
        store.remove_stale(id, 1, &["720p"]);
        let mut left = Vec::new();
        for rel in all {
            if store.exists(id, rel) {
                left.push(rel);
            }
        }
        assert_eq!(
            left,
            [
                "720p/g1_seg_00000.ts",
                "720p/video.m3u8",
                "keys/g1_key0_00000.key",
                "poster.jpg"
            ]
        );
    }
}
