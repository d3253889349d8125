//! Removing a video's files: one file, a whole video (its record last),
//! what a failure or a restart leaves (outputs, scratch), and what older
//! generations left once a new one is published; and measuring what a
//! video holds.

use super::{fsio, key, names, Store, VideoId};
use std::io;
use std::path::Path;

impl Store {
    /// Removes one file of video `id` (missing is fine).
    pub fn remove(&self, id: VideoId, rel: &str) -> io::Result<()> {
        self.changed(id);
        self.objects.delete(&key(id, rel))
    }

    /// Removes video `id` entirely, its record last (missing is fine).
    pub fn remove_video(&self, id: VideoId) -> io::Result<()> {
        let mut removed = fsio::remove_dir_all_but_last(&self.dir(id), names::META_FILE);
        if self.traits.remote {
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
        objects + if self.traits.remote { spool() } else { 0 }
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
        if self.traits.remote {
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
        if self.traits.remote {
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
        if self.traits.remote {
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
