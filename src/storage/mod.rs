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
    /// The objects are in this bucket (shared by several nodes), and
    /// `root` is only this node's scratch: spools, the muxers' files.
    s3: Option<std::sync::Arc<s3::S3Objects>>,
    /// `s3` is set.
    shared: bool,
    /// The bucket refuses a conditional write that lost (see
    /// [`Store::conditional_writes`]); claims between nodes need it.
    exclusive: bool,
    /// Complete uploads are copied to the bucket (`--keep-source always`
    /// with a bucket: another node can then redo a lost node's job).
    keep_uploads: bool,
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
        let objects = objects::FileObjects::for_videos(root)?;
        Ok(Store {
            root: root.to_path_buf(),
            objects: std::sync::Arc::new(objects),
            s3: None,
            shared: false,
            exclusive: true,
            keep_uploads: false,
            epochs: Default::default(),
            master_locks: Default::default(),
            captions_locks: Default::default(),
        })
    }

    /// Videos in an S3-compatible bucket, `scratch` (created if needed)
    /// for this node's working files.
    pub fn open_s3(scratch: &Path, settings: &s3::S3Settings) -> io::Result<Store> {
        std::fs::create_dir_all(scratch)?;
        let bucket = std::sync::Arc::new(s3::S3Objects::open(settings)?);
        Ok(Store {
            root: scratch.to_path_buf(),
            objects: bucket.clone(),
            s3: Some(bucket),
            shared: true,
            exclusive: true,
            keep_uploads: false,
            epochs: Default::default(),
            master_locks: Default::default(),
            captions_locks: Default::default(),
        })
    }

    /// A store shared like a bucket, its objects `objects` (unit tests of
    /// what several nodes see).
    #[cfg(test)]
    pub(crate) fn open_shared_on(
        scratch: &Path,
        objects: std::sync::Arc<dyn objects::Objects>,
    ) -> io::Result<Store> {
        let mut store = Store::open(scratch)?;
        store.objects = objects;
        store.shared = true;
        Ok(store)
    }

    /// True when complete uploads are copied to the bucket.
    pub fn keeps_uploads(&self) -> bool {
        self.keep_uploads
    }

    /// Records whether the bucket's conditional writes hold (its probe).
    pub fn with_exclusive_writes(mut self, exclusive: bool) -> Store {
        self.exclusive = exclusive;
        self
    }

    /// True when a conditional write that lost is refused (always, for a
    /// folder with its one writer).
    pub fn exclusive_writes(&self) -> bool {
        self.exclusive
    }

    /// Copies complete uploads to the bucket too (see `keep_uploads`).
    pub fn keeping_uploads(mut self, keep: bool) -> Store {
        self.keep_uploads = keep && self.shared;
        self
    }

    /// Marks video `id`'s spool complete at `len` bytes (durably), and with
    /// a bucket that keeps uploads, puts the upload there first.
    pub fn mark_upload_done(&self, id: VideoId, len: u64) -> io::Result<()> {
        let mark = len.to_string();
        if self.keep_uploads {
            let spool = self.path(id, names::SOURCE_FILE);
            self.objects.upload(&key(id, names::SOURCE_FILE), &spool)?;
            self.objects
                .put(&key(id, names::SOURCE_DONE), mark.as_bytes())?;
        }
        self.write_local(id, names::SOURCE_DONE, mark.as_bytes())
    }

    /// A URL that opens `rel` of video `id` for `expires` straight from
    /// the bucket; `None` when the store is a folder.
    pub fn presign_get(
        &self,
        id: VideoId,
        rel: &str,
        expires: std::time::Duration,
    ) -> Option<String> {
        let url = self.s3.as_ref()?.presign_get(&key(id, rel), expires);
        url.map_err(|e| tracing::warn!(error = %e, "cannot presign a URL"))
            .ok()
    }

    /// Whether the objects' store answers (a bucket: one small request).
    pub fn reachable(&self) -> io::Result<()> {
        self.objects.size_of("_probe/reachable").map(|_| ())
    }

    /// Whether the store refuses a second create of one key (see
    /// [`s3::S3Objects::conditional_writes`]); a folder has one writer.
    pub fn conditional_writes(&self, probe: &str) -> io::Result<bool> {
        match &self.s3 {
            Some(s3) => s3.conditional_writes(probe),
            None => Ok(true),
        }
    }

    /// True when videos live in a bucket several nodes may share (the
    /// storage folder is then only this node's scratch).
    pub fn is_shared(&self) -> bool {
        self.shared
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
        if self.shared {
            let names = self.objects.children("")?;
            return Ok(names.iter().filter_map(|n| VideoId::parse(n)).collect());
        }
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

    /// Removes the spool of video `id` and its completion mark (files of
    /// this node, wherever the videos live).
    pub fn remove_source(&self, id: VideoId) -> io::Result<()> {
        self.changed(id);
        fsio::remove_file(&self.path(id, names::SOURCE_FILE))?;
        fsio::remove_file(&self.path(id, names::SOURCE_DONE))
    }

    /// Writes `rel` of video `id` on this node only (the muxers' key-info
    /// files); the same as [`Store::write`] when the store is a folder.
    pub fn write_local(&self, id: VideoId, rel: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(id, rel);
        if let Some(parent) = path.parent() {
            self.make_dir_in(id, parent)?;
        }
        fsio::write_atomic(&path, bytes)
    }

    /// Makes folder `rel` inside video `id`'s folder on this node (a
    /// rung's, for its muxer). The video's own folder is never made here:
    /// only [`Store::create`] (and, on a bucket node, [`Store::make_scratch`])
    /// make it, so nothing written after a deletion brings a video back.
    pub fn make_dir(&self, id: VideoId, rel: &str) -> io::Result<()> {
        self.make_dir_in(id, &self.path(id, rel))
    }

    fn make_dir_in(&self, id: VideoId, dir: &Path) -> io::Result<()> {
        if !self.dir(id).is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("video {id} has no folder here (deleted?)"),
            ));
        }
        std::fs::create_dir_all(dir)
    }

    /// Makes this node's working folder of video `id` on a bucket node (a
    /// video taken over from another node); nothing with a folder store.
    pub fn make_scratch(&self, id: VideoId) -> io::Result<()> {
        match self.shared {
            true => std::fs::create_dir_all(self.dir(id)),
            false => Ok(()),
        }
    }

    /// Writes `rel` of video `id` where players read it and, when that is
    /// a bucket, on this node too (keys: served from the bucket, read by
    /// the muxer from here).
    pub fn write_both(&self, id: VideoId, rel: &str, bytes: &[u8]) -> io::Result<()> {
        self.write(id, rel, bytes)?;
        match self.shared {
            true => self.write_local(id, rel, bytes),
            false => Ok(()),
        }
    }

    /// Copies `rel` of video `id` to the local file `to` (durably), a
    /// part at a time; returns its length.
    pub fn download(&self, id: VideoId, rel: &str, to: &Path) -> io::Result<u64> {
        use std::io::Write;
        const PART: u64 = 8 << 20;
        let (len, _) = self.stat(id, rel)?.ok_or(io::ErrorKind::NotFound)?;
        if let Some(dir) = to.parent() {
            self.make_dir_in(id, dir)?;
        }
        let mut f = std::fs::File::create(to)?;
        let mut at = 0;
        while at < len {
            let part = self.read_range(id, rel, at, PART.min(len - at))?;
            if part.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            f.write_all(&part)?;
            at += part.len() as u64;
        }
        f.sync_all()?;
        fsio::sync_parent(to)?;
        Ok(len)
    }

    /// Size and last change of `rel` in video `id` (`None`: missing).
    pub fn stat(&self, id: VideoId, rel: &str) -> io::Result<Option<(u64, std::time::SystemTime)>> {
        self.objects.stat(&key(id, rel))
    }

    /// `len` bytes of `rel` in video `id` from `start`.
    pub fn read_range(&self, id: VideoId, rel: &str, start: u64, len: u64) -> io::Result<Vec<u8>> {
        self.objects.get_range(&key(id, rel), start, len)
    }

    /// Every file of video `id` under `dir` (`""`: all), named relative to
    /// it, with its size.
    pub fn list_files(&self, id: VideoId, dir: &str) -> io::Result<Vec<(String, u64)>> {
        let prefix = match dir {
            "" => id.to_string(),
            d => key(id, d),
        };
        self.objects.list(&prefix)
    }

    /// The bytes of `rel` in video `id`.
    pub fn read(&self, id: VideoId, rel: &str) -> io::Result<Vec<u8>> {
        self.objects.get(&key(id, rel))
    }

    /// The bytes of `rel` in video `id` and their version tag (a bucket's
    /// ETag; `None` in a folder).
    pub fn read_tagged(&self, id: VideoId, rel: &str) -> io::Result<(Vec<u8>, Option<String>)> {
        self.objects.get_tagged(&key(id, rel))
    }

    /// Writes `rel` in video `id` only if it is still version `tag` (see
    /// [`objects::Objects::put_if`]); returns the new version's tag.
    pub fn write_if(
        &self,
        id: VideoId,
        rel: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> io::Result<Option<String>> {
        let written = self.objects.put_if(&key(id, rel), bytes, tag);
        self.changed(id);
        written
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
        if self.shared {
            let uploaded = self.objects.upload(&key(id, rel), tmp).map(|_| ());
            let _ = std::fs::remove_file(tmp);
            self.changed(id);
            return uploaded;
        }
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

    /// Removes video `id` entirely, its record last (missing is fine).
    pub fn remove_video(&self, id: VideoId) -> io::Result<()> {
        let mut removed = fsio::remove_dir_all_but_last(&self.dir(id), names::META_FILE);
        if self.shared {
            // The record last: a crash part-way leaves it to finish with.
            let gone = self.list_files(id, "").and_then(|files| {
                for (name, _) in files.iter().filter(|(n, _)| n != names::META_FILE) {
                    self.objects.delete(&key(id, name))?;
                }
                self.objects.delete_all(id.as_str()).map(|_| ())
            });
            removed = removed.and(gone);
        }
        self.changed(id);
        removed
    }

    /// Bytes stored for video `id`.
    pub fn size(&self, id: VideoId) -> u64 {
        let listed = self.objects.list(id.as_str());
        let objects: u64 = listed.map_or(0, |l| l.iter().map(|(_, n)| n).sum());
        // A bucket's video also holds this node's spool while it has one.
        let spool = || std::fs::metadata(self.path(id, names::SOURCE_FILE)).map_or(0, |m| m.len());
        objects + if self.shared { spool() } else { 0 }
    }

    /// Bytes each video holds, from one listing of the store.
    pub fn sizes(&self) -> io::Result<std::collections::HashMap<VideoId, u64>> {
        let mut out = std::collections::HashMap::new();
        for (name, len) in self.objects.list("")? {
            let id = name.split('/').next().and_then(VideoId::parse);
            if let Some(id) = id {
                *out.entry(id).or_insert(0) += len;
            }
        }
        Ok(out)
    }

    /// Bytes stored under the root, all videos included (a folder; a
    /// bucket is measured by [`Store::sizes`]).
    pub fn total_size(&self) -> u64 {
        fsio::dir_size(&self.root)
    }

    /// Removes what earlier generations of video `id` left once generation
    /// `generation` is published: generated files (segments, init
    /// segments, keys) of older generations, and rung folders not in `keep`.
    pub fn remove_stale(&self, id: VideoId, generation: u32, keep: &[&str]) {
        sweep(&self.dir(id), generation, Some(keep));
        if self.shared {
            let files = self.list_files(id, "").unwrap_or_default();
            for name in stale(files.iter().map(|(n, _)| n.as_str()), generation, keep) {
                let _ = self.objects.delete(&key(id, name));
            }
        }
        self.changed(id);
    }

    /// Removes this node's working files of video `id` once its outputs
    /// are in a bucket (the spool stays when `keep_spool`); nothing when
    /// the store is a folder (they are the outputs).
    pub fn clear_scratch(&self, id: VideoId, keep_spool: bool) {
        if self.shared {
            clear_dir(&self.dir(id), keep_spool, &[]);
        }
    }

    /// Removes everything of video `id` but its record (its spool when
    /// `keep_spool`, and the folders in `keep`: uploaded caption tracks),
    /// temporary files of those included: an upload may still be
    /// finishing its spool while its job fails.
    pub fn remove_outputs(&self, id: VideoId, keep_spool: bool, keep: &[&str]) {
        self.changed(id);
        clear_dir(&self.dir(id), keep_spool, keep);
        if self.shared {
            for (name, _) in self.list_files(id, "").unwrap_or_default() {
                let spool = name.starts_with(names::SOURCE_FILE);
                let kept = name.split_once('/').is_some_and(|(d, _)| keep.contains(&d));
                if !(name.starts_with(names::META_FILE) || (keep_spool && spool) || kept) {
                    let _ = self.objects.delete(&key(id, &name));
                }
            }
        }
    }

    /// The highest generation of names any file of video `id` has, where
    /// its outputs live (a bucket's listing, or the folder): a video
    /// transcoded again takes the one after it and the record's, so no
    /// name is ever given other bytes, even when the record was lost.
    pub fn highest_generation(&self, id: VideoId) -> u32 {
        let files = self.list_files(id, "").unwrap_or_default();
        files
            .iter()
            .filter_map(|(n, _)| names::generation_of(n.rsplit('/').next().unwrap_or(n)))
            .max()
            .unwrap_or(0)
    }
}

/// Removes everything in a video's folder but its record (its spool when
/// `keep_spool`, the folders in `keep`), temporary files included.
fn clear_dir(dir: &Path, keep_spool: bool, keep: &[&str]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let spool = name.starts_with(names::SOURCE_FILE);
        if name.starts_with(names::META_FILE) || (keep_spool && spool) || keep.contains(&&*name) {
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

/// The files of a listing (names relative to the video) that
/// [`Store::remove_stale`] removes: the same rules as [`sweep`].
fn stale<'a>(files: impl Iterator<Item = &'a str>, generation: u32, keep: &[&str]) -> Vec<&'a str> {
    files
        .filter(|name| {
            let (dir, file) = name.split_once('/').unwrap_or(("", name));
            let rung = names::is_rung_name(dir);
            let old = || {
                file.split('/').count() == 1
                    && names::generation_of(file).is_some_and(|g| g < generation)
            };
            (rung && !keep.contains(&dir))
                || ((dir.is_empty() || rung || dir == names::KEYS_DIR) && old())
        })
        .collect()
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
        store.remove_outputs(id, true, &[]);
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
