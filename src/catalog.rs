//! Video records: kept in memory, persisted as `storage/<id>/meta.json` with
//! atomic writes (temp file + rename), rebuilt from disk at start.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where a video is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The upload is still arriving (segments may already exist).
    Receiving,
    /// Fully received, waiting for a job slot.
    Queued,
    /// Fully received, being transcoded.
    Processing,
    /// Done: the playlist is VOD with ENDLIST.
    Ready,
    /// Gave up; `error` says why.
    Failed,
}

impl Status {
    /// True while a job may still change the outputs.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Status::Receiving | Status::Queued | Status::Processing
        )
    }
}

/// What the probe learnt about the uploaded file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// libavformat's demuxer name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub container: String,
    /// Seconds, when the container says.
    pub duration: Option<f64>,
    pub video: VideoInfo,
    pub audio: Option<AudioInfo>,
}

/// The source's video stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoInfo {
    pub codec: String,
    /// Coded size, before rotation.
    pub width: u32,
    pub height: u32,
    /// Average frame rate, when known.
    pub fps: Option<f64>,
    /// Display rotation in degrees clockwise (0, 90, 180, 270).
    pub rotation: u32,
    pub pixel_format: String,
}

/// The source's audio stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioInfo {
    pub codec: String,
    pub channels: u16,
    pub sample_rate: u32,
    /// Channel layout as libav names it (`stereo`, `5.1`, …).
    #[serde(default)]
    pub layout: String,
}

/// What the transcode produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputInfo {
    /// Displayed size: rotation applied, square pixels, even.
    pub width: u32,
    pub height: u32,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub segments: usize,
    /// Video frames encoded.
    #[serde(default)]
    pub frames: u64,
    /// Seconds of media in the playlist.
    pub duration: f64,
    pub segment_seconds: u32,
    /// Wall time of the job's own work (decode, encode, mux), seconds: time
    /// spent waiting for a streaming upload to arrive is not counted.
    #[serde(default)]
    pub processing_seconds: f64,
}

/// One rendition (rung of the ladder).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    /// Playlist path relative to `/play/{id}/`.
    pub playlist: String,
    pub width: u32,
    pub height: u32,
    /// `720p`: its folder under the video's.
    #[serde(default)]
    pub name: String,
    /// Measured peak segment bit rate, bit/s (the master's `BANDWIDTH`).
    #[serde(default)]
    pub bandwidth: u64,
    /// Measured average bit rate, bit/s.
    #[serde(default)]
    pub average_bandwidth: u64,
    /// RFC 6381 codecs (`avc1.64001f,mp4a.40.2`).
    #[serde(default)]
    pub codecs: String,
    #[serde(default)]
    pub frame_rate: f64,
    /// Made by copying the source's packets, not encoding.
    #[serde(default)]
    pub copied: bool,
    /// 0..1 while processing.
    #[serde(default)]
    pub progress: f64,
    /// Its I-frame-only playlist, relative to `/play/{id}/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iframe_playlist: Option<String>,
}

/// Why a video failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

/// One video, as `GET /videos/{id}` shows it and `meta.json` stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub status: Status,
    /// 0..1, processing progress.
    pub progress: f64,
    pub bytes_received: u64,
    /// The client's file name, sanitised; never used as a path.
    pub file_name: Option<String>,
    /// A human title: the file name without extension unless changed.
    #[serde(default)]
    pub title: String,
    /// Bytes on disk in the video's folder (updated when a job ends).
    #[serde(default)]
    pub storage_bytes: u64,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix milliseconds: orders the library (newest first) within a second.
    #[serde(default)]
    pub created_ms: u64,
    pub updated_at: u64,
    pub source: Option<SourceInfo>,
    pub output: Option<OutputInfo>,
    #[serde(default)]
    pub renditions: Vec<Rendition>,
    /// Segments are AES-128 encrypted; keys at `/keys/{id}/…`.
    #[serde(default)]
    pub encrypted: bool,
    /// The top rendition is the source's own packets (copy fast path).
    #[serde(default)]
    pub copied: bool,
    /// Why the source was not copied (when it was not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_note: Option<String>,
    pub error: Option<ErrorInfo>,
}

/// Unix time in seconds.
pub fn now() -> u64 {
    now_ms() / 1000
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Record {
    /// A fresh record for an upload that just started.
    pub fn new(id: String, file_name: Option<String>) -> Self {
        let ms = now_ms();
        let t = ms / 1000;
        let title = file_name
            .as_deref()
            .map(|n| match n.rsplit_once('.') {
                Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
                _ => n.to_owned(),
            })
            .unwrap_or_default();
        Record {
            id,
            status: Status::Receiving,
            progress: 0.0,
            bytes_received: 0,
            file_name,
            title,
            storage_bytes: 0,
            created_at: t,
            created_ms: ms,
            updated_at: t,
            source: None,
            output: None,
            renditions: Vec::new(),
            encrypted: false,
            copied: false,
            copy_note: None,
            error: None,
        }
    }
}

/// The file holding a video's record.
pub const META_FILE: &str = "meta.json";

/// All records, with their persistence.
#[derive(Debug)]
pub struct Catalog {
    /// The data root (`--storage`).
    root: PathBuf,
    /// Records by id. A std mutex: never held across I/O or `.await`.
    records: Mutex<HashMap<String, Record>>,
    /// Serialises writes of `meta.json`, so a file never goes back in time
    /// when two threads update the same record.
    persist: Mutex<()>,
    /// Bumped on every change; event streams wait on it.
    changed: tokio::sync::watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes `bytes` to `path` atomically: a reader sees the old or the new
/// file, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl Catalog {
    /// Loads every readable record under `root`, as it was left. What to do
    /// with records a dead process left active is `recovery`'s business.
    pub fn open(root: &Path) -> std::io::Result<Catalog> {
        std::fs::create_dir_all(root)?;
        let cat = Catalog {
            root: root.to_path_buf(),
            records: Mutex::new(HashMap::new()),
            persist: Mutex::new(()),
            changed: tokio::sync::watch::channel(0).0,
        };
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(id) = name.to_str().filter(|s| crate::http::paths::is_video_id(s)) else {
                continue;
            };
            let Ok(bytes) = std::fs::read(entry.path().join(META_FILE)) else {
                continue;
            };
            let Ok(rec) = serde_json::from_slice::<Record>(&bytes) else {
                continue;
            };
            if rec.id == id {
                lock(&cat.records).insert(id.to_owned(), rec);
            }
        }
        Ok(cat)
    }

    /// Ids of every record.
    pub fn ids(&self) -> Vec<String> {
        lock(&self.records).keys().cloned().collect()
    }

    /// Records newest first (ties by id), optionally of one status, starting
    /// after `cursor`, at most `limit`. Returns the page and the next cursor.
    /// A cursor is `<created_ms>.<id>` of the last record of a page, so a
    /// page still resumes at the right place if that record was deleted.
    pub fn list(
        &self,
        status: Option<Status>,
        cursor: Option<&str>,
        limit: usize,
    ) -> (Vec<Record>, Option<String>) {
        let key = |r: &Record| (std::cmp::Reverse(r.created_ms), r.id.clone());
        let mut all: Vec<Record> = lock(&self.records)
            .values()
            .filter(|r| status.is_none_or(|s| r.status == s))
            .cloned()
            .collect();
        all.sort_by_key(key);
        let after = cursor.and_then(|c| {
            let (t, id) = c.split_once('.')?;
            Some((std::cmp::Reverse(t.parse::<u64>().ok()?), id.to_owned()))
        });
        let start = match &after {
            Some(a) => all.partition_point(|r| key(r) <= *a),
            None => 0,
        };
        let page: Vec<Record> = all.iter().skip(start).take(limit).cloned().collect();
        let next = if start + page.len() < all.len() {
            page.last().map(|r| format!("{}.{}", r.created_ms, r.id))
        } else {
            None
        };
        (page, next)
    }

    /// How many records have each status (without copying any record).
    pub fn count_by_status(&self) -> HashMap<Status, u64> {
        let mut counts = HashMap::new();
        for r in lock(&self.records).values() {
            *counts.entry(r.status).or_insert(0) += 1;
        }
        counts
    }

    /// A receiver that sees a new value after every change of any record.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of video `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn write_record(&self, rec: &Record) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
        write_atomic(&self.dir(&rec.id).join(META_FILE), &json)
    }

    /// A copy of one record.
    pub fn get(&self, id: &str) -> Option<Record> {
        lock(&self.records).get(id).cloned()
    }

    /// Adds a record (its folder must exist) and persists it.
    pub fn insert(&self, rec: Record) -> std::io::Result<()> {
        let _w = lock(&self.persist);
        self.write_record(&rec)?;
        lock(&self.records).insert(rec.id.clone(), rec);
        self.notify();
        Ok(())
    }

    /// Changes a record in memory; persists it when `persist` is true.
    /// Returns the updated copy, or `None` if the id is unknown.
    pub fn update(
        &self,
        id: &str,
        persist: bool,
        f: impl FnOnce(&mut Record),
    ) -> std::io::Result<Option<Record>> {
        let _w = persist.then(|| lock(&self.persist));
        let copy = {
            let mut map = lock(&self.records);
            let Some(rec) = map.get_mut(id) else {
                return Ok(None);
            };
            f(rec);
            rec.updated_at = now();
            rec.clone()
        };
        self.notify();
        if persist {
            self.write_record(&copy)?;
        }
        Ok(Some(copy))
    }

    /// Forgets a record (its files are the caller's to remove).
    pub fn forget(&self, id: &str) -> Option<Record> {
        let _w = lock(&self.persist);
        let rec = lock(&self.records).remove(id);
        self.notify();
        rec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_restart_and_list_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path()).unwrap();
        for (id, status) in [
            ("aaaaaaaaaaaaaaaaaaaaa", Status::Ready),
            ("bbbbbbbbbbbbbbbbbbbbb", Status::Processing),
        ] {
            std::fs::create_dir(cat.dir(id)).unwrap();
            let mut r = Record::new(id.into(), Some("x.mp4".into()));
            r.status = status;
            cat.insert(r).unwrap();
        }
        cat.update("aaaaaaaaaaaaaaaaaaaaa", true, |r| r.progress = 1.0)
            .unwrap();
        drop(cat);
        let cat = Catalog::open(dir.path()).unwrap();
        let a = cat.get("aaaaaaaaaaaaaaaaaaaaa").unwrap();
        assert_eq!((a.status, a.progress), (Status::Ready, 1.0));
        let b = cat.get("bbbbbbbbbbbbbbbbbbbbb").unwrap();
        assert_eq!(b.status, Status::Processing);
        assert_eq!(a.title, "x");
        assert!(!dir
            .path()
            .join("aaaaaaaaaaaaaaaaaaaaa/meta.json.tmp")
            .exists());
        cat.update("bbbbbbbbbbbbbbbbbbbbb", false, |r| r.created_ms += 10_000)
            .unwrap();
        let (page, next) = cat.list(None, None, 1);
        assert_eq!(page[0].id, "bbbbbbbbbbbbbbbbbbbbb");
        // The cursor still works after the record it names is gone.
        cat.forget("bbbbbbbbbbbbbbbbbbbbb");
        let (page2, next2) = cat.list(None, next.as_deref(), 1);
        assert_eq!(page2[0].id, "aaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(next2, None);
        let (ready, _) = cat.list(Some(Status::Ready), None, 10);
        assert_eq!(ready.len(), 1);
    }
}
