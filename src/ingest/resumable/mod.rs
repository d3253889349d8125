//! Resumable uploads (tus 1.0): one video whose bytes come in many
//! requests, into the same spool a multipart upload writes, read by the
//! same pipeline while they arrive.
//!
//! What the client is told is durable: the record's [`Resumable`] holds
//! the offset answered, written only after the spool's bytes are fsynced;
//! after a crash the spool is cut back to it ([`crate::spool::reopen`]).
//!
//! A job runs only while bytes come: a resumable upload with no request
//! for `--body-idle-timeout-secs` is *parked* (its job stopped, record and
//! spool kept), so a paused client holds no thread, no encoder and no
//! `--max-pending` place; the next bytes start the job again from the
//! spool, as the next generation of file names. Unfinished uploads past
//! their expiry are removed by [`Sessions::sweep`].

mod patch;

pub(crate) use patch::{Checksum, Patch};

use crate::catalog::{Catalog, Grant, Lifecycle, Record, Resumable, SourceInfo, Status};
use crate::jobs::{JobHandle, Jobs};
use crate::spool::SpoolWriter;
use crate::storage::{names, Quota, VideoId};
use crate::Error;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What resumable uploads need from the server.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub jobs: Arc<Jobs>,
    /// Every change of a video goes through here.
    pub videos: Arc<Lifecycle>,
    pub quota: Arc<Quota>,
    pub max_upload_bytes: u64,
    /// Each request's body guard (idle timeout, minimum rate).
    pub limits: super::guard::Limits,
    /// A job with no request this long is parked.
    pub park_after: Duration,
}

/// A new resumable upload, as its creation request describes it.
#[derive(Debug, Default)]
pub(crate) struct Creation {
    pub file_name: Option<String>,
    pub title: Option<String>,
    pub encrypt: bool,
    pub codecs: crate::config::Codecs,
    /// `Upload-Length`; `None` when deferred.
    pub length: Option<u64>,
    pub metadata: Option<String>,
    pub expires_at: u64,
    pub grant: Option<Grant>,
}

/// Every resumable upload with a session in this process.
#[derive(Debug)]
pub(crate) struct Sessions {
    env: Env,
    map: Mutex<HashMap<VideoId, Arc<Session>>>,
}

/// One resumable upload's live side.
#[derive(Debug)]
pub(crate) struct Session {
    id: VideoId,
    /// Bumped by every PATCH that starts: the one in flight stops.
    turn: watch::Sender<u64>,
    inner: tokio::sync::Mutex<Inner>,
    /// When a request last touched it.
    last: Mutex<Instant>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The job and the spool's writer, while bytes come.
    running: Option<Running>,
    /// The probe's verdict for the running job.
    probe: Option<SourceInfo>,
    /// A job ran in this process (the next one is a new generation).
    started: bool,
}

#[derive(Debug)]
struct Running {
    writer: Option<SpoolWriter>,
    handle: JobHandle,
}

impl Env {
    fn catalog(&self) -> &Arc<Catalog> {
        self.videos.catalog()
    }
}

impl Sessions {
    pub(crate) fn new(env: Env) -> Arc<Self> {
        Arc::new(Sessions {
            env,
            map: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<VideoId, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates the video (record `receiving` with its upload state, folder,
    /// empty spool) and reserves its length in the quota. No job yet: it
    /// starts with the first bytes.
    pub(crate) async fn create(&self, c: Creation) -> Result<VideoId, Error> {
        let id = VideoId::random();
        let mut record = self.env.catalog().new_record(id, c.file_name);
        record.encrypted = c.encrypt;
        record.codecs = c.codecs.names();
        if let Some(t) = c.title {
            record.title = t;
        }
        record.upload = Some(Resumable {
            offset: 0,
            length: c.length,
            expires_at: c.expires_at,
            metadata: c.metadata,
            grant: c.grant,
        });
        let videos = self.env.videos.clone();
        tokio::task::spawn_blocking(move || {
            // Announced at once: its client has its URL from now on.
            videos.create(record, true)?;
            let path = videos.store().path(id, names::SOURCE_FILE);
            crate::failpoint!("tus.create.after_record");
            crate::spool::create(&path).map(drop).map_err(|e| {
                let _ = videos.tombstone(id).and_then(|_| videos.remove(id));
                Error::from(e)
            })
        })
        .await??;
        if self.env.quota.reserve(id, c.length.unwrap_or(0)).is_err() {
            self.remove(id).await;
            return Err(over_quota(&self.env.quota));
        }
        self.lock().insert(id, Session::new(id));
        Ok(id)
    }

    /// The upload's state, for `HEAD` (and for checks before a request).
    pub(crate) fn state(&self, id: VideoId) -> Result<(Resumable, Status), Error> {
        let (upload, status) = self
            .env
            .catalog()
            .peek(id, |r| (r.upload.clone(), r.status))
            .ok_or(Error::NotFound)?;
        let upload = upload.ok_or(Error::NotFound)?;
        if status == Status::Deleting {
            return Err(Error::NotFound);
        }
        if !upload.is_complete() && self.env.catalog().clock().unix() > upload.expires_at {
            return Err(Error::UploadExpired);
        }
        Ok((upload, status))
    }

    /// The session of `id`, made (after a restart) from its record, whose
    /// remaining length then takes its place in the quota again.
    fn session(&self, id: VideoId) -> Result<Arc<Session>, Error> {
        let (upload, _) = self.state(id)?;
        let mut map = self.lock();
        if let Some(s) = map.get(&id) {
            return Ok(s.clone());
        }
        let left = upload.length.map_or(0, |l| l.saturating_sub(upload.offset));
        let _ = self.env.quota.reserve(id, left);
        let s = Session::new(id);
        map.insert(id, s.clone());
        Ok(s)
    }

    /// Forgets `id`'s session (the video is being deleted).
    pub(crate) fn forget(&self, id: VideoId) {
        self.lock().remove(&id);
    }

    /// Removes every trace of an upload (session, record, files, quota)
    /// through its tombstone (`video.deleted` tells its end).
    async fn remove(&self, id: VideoId) {
        let videos = self.env.videos.clone();
        let _ = tokio::task::spawn_blocking(move || {
            videos.tombstone(id)?;
            videos.remove(id)
        })
        .await;
        self.forget(id);
    }

    /// Parks the jobs of uploads nobody has sent to for a while and
    /// removes unfinished uploads past their expiry. Run every few
    /// seconds by the server.
    pub(crate) async fn sweep(&self) {
        let sessions: Vec<Arc<Session>> = self.lock().values().cloned().collect();
        for s in sessions {
            if s.last().elapsed() < self.env.park_after {
                continue;
            }
            let Ok(mut inner) = s.inner.try_lock() else {
                continue;
            };
            if inner.running.is_some() {
                self.park(s.id, &mut inner).await;
            }
        }
        let catalog = self.env.catalog();
        let now = catalog.clock().unix();
        let expired: Vec<VideoId> = catalog
            .ids()
            .into_iter()
            .filter(|id| catalog.peek(*id, |r| expired(r, now)) == Some(true))
            .collect();
        for id in expired {
            self.expire(id).await;
        }
    }

    /// Stops a quiet upload's job. What the job had reserved goes back:
    /// the video then holds what is on disk plus the length still to come.
    async fn park(&self, id: VideoId, inner: &mut Inner) {
        tracing::info!(id = %id, "resumable upload quiet: its job is parked");
        self.env.jobs.park(id).await;
        inner.running = None;
        inner.probe = None;
        let store = self.env.catalog().store().clone();
        let size = tokio::task::spawn_blocking(move || store.size(id))
            .await
            .unwrap_or(0);
        self.env.quota.settle(id, size);
        if let Ok((u, _)) = self.state(id) {
            let left = u.length.map_or(0, |l| l.saturating_sub(u.offset));
            let _ = self.env.quota.reserve(id, left);
        }
    }

    /// Removes an upload that expired unfinished: checked again once no
    /// request of it runs (one that completed it meanwhile was answered,
    /// and the upload stays).
    async fn expire(&self, id: VideoId) {
        let session = self.lock().get(&id).cloned();
        if let Some(s) = &session {
            s.turn.send_modify(|t| *t += 1);
        }
        let _guard = match &session {
            Some(s) => Some(s.inner.lock().await),
            None => None,
        };
        let now = self.env.catalog().clock().unix();
        if self.env.catalog().peek(id, |r| expired(r, now)) != Some(true) {
            return;
        }
        tracing::info!(id = %id, "resumable upload expired unfinished: removed");
        crate::failpoint!("expire.checked");
        let videos = self.env.videos.clone();
        let _ = videos.delete(id, Duration::MAX).await;
        self.forget(id);
    }
}

/// True for an unfinished resumable upload past its expiry.
fn expired(r: &Record, now: u64) -> bool {
    r.status == Status::Receiving
        && r.upload
            .as_ref()
            .is_some_and(|u| !u.is_complete() && now > u.expires_at)
}

fn over_quota(quota: &Quota) -> Error {
    Error::QuotaExceeded {
        limit: quota.limit().unwrap_or(0),
    }
}

impl Session {
    fn new(id: VideoId) -> Arc<Self> {
        Arc::new(Session {
            id,
            turn: watch::Sender::new(0),
            inner: tokio::sync::Mutex::new(Inner::default()),
            last: Mutex::new(Instant::now()),
        })
    }

    fn last(&self) -> Instant {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
}
