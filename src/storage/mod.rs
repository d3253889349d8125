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
mod reads;
mod removal;
pub mod s3;

pub use id::{VideoId, ID_LEN};
pub use quota::{OverQuota, Quota};

use std::io;
use std::path::{Path, PathBuf};

/// The videos' storage: one folder per video, whose durable files
/// (records, playlists, segments, keys, images) are reached through
/// [`objects::Objects`]: the folder `root` itself ([`objects::FileObjects`])
/// or a bucket ([`s3::S3Objects`]), while the files only this machine
/// works on (the spool, the muxers' working files) are paths under `root`.
/// Callers see one interface; what differs between backends is in
/// [`Traits`], asked of the backend once, here.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    objects: std::sync::Arc<dyn objects::Objects>,
    traits: Traits,
    /// Complete uploads are copied to the bucket (`--keep-source always`
    /// with a bucket: another node can then redo a lost node's job).
    keep_uploads: bool,
    /// A counter per video, bumped by every write or removal through the
    /// store: a reader's cache of a video's files is valid while it holds.
    epochs: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<VideoId, u64>>>,
    /// Striped locks for master playlist rebuilds ([`Store::master_lock`]).
    master_locks: std::sync::Arc<[std::sync::Mutex<()>; 16]>,
}

/// What the store's backend is (see [`Store::traits`]): the only
/// differences between a folder and a bucket its callers may ask about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traits {
    /// Other nodes write the videos too (a bucket several nodes share):
    /// the catalog reads their records again and lists the store.
    pub shared: bool,
    /// The videos are not the files under `root` but across the network
    /// (a bucket): `root` is only this node's scratch, files are served
    /// from the objects (or linked to them), and the store is measured by
    /// listing it.
    pub remote: bool,
    /// A conditional write that lost is refused (always, for a folder and
    /// its one writer; a bucket's probe says), which claims between nodes
    /// need.
    pub exclusive_writes: bool,
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
        Store::on(root, std::sync::Arc::new(objects))
    }

    /// Videos in an S3-compatible bucket, `scratch` (created if needed)
    /// for this node's working files.
    pub fn open_s3(scratch: &Path, settings: &s3::S3Settings) -> io::Result<Store> {
        let bucket = s3::S3Objects::open(settings)?;
        Store::on(scratch, std::sync::Arc::new(bucket))
    }

    /// Videos in `objects`, `scratch` (created if needed) for this node's
    /// working files (the same folder when `objects` are its files).
    pub fn on(scratch: &Path, objects: std::sync::Arc<dyn objects::Objects>) -> io::Result<Store> {
        std::fs::create_dir_all(scratch)?;
        let traits = Traits {
            shared: objects.shared(),
            remote: objects.folder() != Some(scratch),
            exclusive_writes: true,
        };
        Ok(Store {
            root: scratch.to_path_buf(),
            objects,
            traits,
            keep_uploads: false,
            epochs: Default::default(),
            master_locks: Default::default(),
        })
    }

    /// What the backend is.
    pub fn traits(&self) -> Traits {
        self.traits
    }

    /// True when complete uploads are copied to the bucket.
    pub fn keeps_uploads(&self) -> bool {
        self.keep_uploads
    }

    /// Probes (with the key `probe`, left behind nowhere) whether the
    /// backend refuses a second create of one key, and records it.
    pub fn probe_writes(mut self, probe: &str) -> io::Result<Store> {
        self.traits.exclusive_writes = self.objects.conditional_writes(probe)?;
        Ok(self)
    }

    /// Copies complete uploads to the bucket too (see `keep_uploads`).
    pub fn keeping_uploads(mut self, keep: bool) -> Store {
        self.keep_uploads = keep && self.traits.remote;
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
        let url = self.objects.presign_get(&key(id, rel), expires)?;
        url.map_err(|e| tracing::warn!(error = %e, "cannot presign a URL"))
            .ok()
    }

    /// Whether the objects' store answers (a bucket: one small request).
    pub fn reachable(&self) -> io::Result<()> {
        self.objects.size_of("_probe/reachable").map(|_| ())
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
        let names = self.objects.children("")?;
        Ok(names.iter().filter_map(|n| VideoId::parse(n)).collect())
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
        match self.traits.remote {
            true => std::fs::create_dir_all(self.dir(id)),
            false => Ok(()),
        }
    }

    /// Writes `rel` of video `id` where players read it and, when that is
    /// a bucket, on this node too (keys: served from the bucket, read by
    /// the muxer from here).
    pub fn write_both(&self, id: VideoId, rel: &str, bytes: &[u8]) -> io::Result<()> {
        self.write(id, rel, bytes)?;
        match self.traits.remote {
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
        if self.traits.remote {
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

    /// True when `rel` exists in video `id`.
    pub fn exists(&self, id: VideoId, rel: &str) -> bool {
        self.objects
            .size_of(&key(id, rel))
            .is_ok_and(|s| s.is_some())
    }
}

/// The object key of `rel` in video `id`.
fn key(id: VideoId, rel: &str) -> String {
    format!("{id}/{rel}")
}

#[cfg(test)]
mod tests;
