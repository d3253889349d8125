//! Video records: kept in memory, persisted as `storage/<id>/meta.json` with
//! atomic writes (temp file + rename), rebuilt from disk at start.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where a video is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Seconds of media in the playlist.
    pub duration: f64,
    pub segment_seconds: u32,
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
    /// Unix seconds.
    pub created_at: u64,
    pub updated_at: u64,
    pub source: Option<SourceInfo>,
    pub output: Option<OutputInfo>,
    pub error: Option<ErrorInfo>,
}

/// Unix time in seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Record {
    /// A fresh record for an upload that just started.
    pub fn new(id: String, file_name: Option<String>) -> Self {
        let t = now();
        Record {
            id,
            status: Status::Receiving,
            progress: 0.0,
            bytes_received: 0,
            file_name,
            created_at: t,
            updated_at: t,
            source: None,
            output: None,
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
    /// Loads every record under `root`. Records left active by a previous
    /// process (it died or was stopped) are marked failed: no record may say
    /// `processing` with no job behind it. Folders without a readable record
    /// are left alone but not listed.
    pub fn open(root: &Path) -> std::io::Result<Catalog> {
        std::fs::create_dir_all(root)?;
        let cat = Catalog {
            root: root.to_path_buf(),
            records: Mutex::new(HashMap::new()),
            persist: Mutex::new(()),
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
            let Ok(mut rec) = serde_json::from_slice::<Record>(&bytes) else {
                continue;
            };
            if rec.status.is_active() {
                rec.status = Status::Failed;
                rec.error = Some(ErrorInfo {
                    code: "interrupted".into(),
                    message: "the server stopped before this video was finished".into(),
                });
                cat.write_record(&rec)?;
            }
            lock(&cat.records).insert(id.to_owned(), rec);
        }
        Ok(cat)
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
        if persist {
            self.write_record(&copy)?;
        }
        Ok(Some(copy))
    }

    /// Forgets a record (its files are the caller's to remove).
    pub fn forget(&self, id: &str) -> Option<Record> {
        let _w = lock(&self.persist);
        lock(&self.records).remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_restart_and_active_ones_become_failed() {
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
        assert_eq!(b.status, Status::Failed);
        assert_eq!(b.error.unwrap().code, "interrupted");
        assert!(!dir
            .path()
            .join("aaaaaaaaaaaaaaaaaaaaa/meta.json.tmp")
            .exists());
    }
}
