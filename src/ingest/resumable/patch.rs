//! One `PATCH` of a resumable upload: bytes appended at the offset the
//! client names, under the body guard, the size limits and the quota,
//! checked against `Upload-Checksum` when it is sent, made durable, then
//! answered with the new offset.
//!
//! The work runs in its own task: a client that goes away mid-request
//! still gets what it sent kept (made durable, offset recorded), as tus
//! asks. A newer `PATCH` of the same upload cuts an older one (tusd does
//! the same) instead of both writing to the spool.

use super::{over_quota, Inner, Running, Session, Sessions};
use crate::catalog::{Change, Resumable, Status};
use crate::ingest::guard::{BodyGuard, GuardState};
use crate::spool::{self, SpoolWriter};
use crate::storage::{names, VideoId};
use crate::Error;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha1::Digest;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// `Upload-Checksum`: the algorithm and the expected digest.
#[derive(Debug, Clone)]
pub(crate) enum Checksum {
    Sha1(Vec<u8>),
    Sha256(Vec<u8>),
}

/// A running digest of a chunk.
enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Checksum {
    fn hasher(&self) -> Hasher {
        match self {
            Checksum::Sha1(_) => Hasher::Sha1(sha1::Sha1::new()),
            Checksum::Sha256(_) => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    fn matches(&self, h: Hasher) -> bool {
        let got: Vec<u8> = match h {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        };
        let want = match self {
            Checksum::Sha1(d) | Checksum::Sha256(d) => d,
        };
        got == *want
    }
}

impl Hasher {
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(b),
            Hasher::Sha256(h) => h.update(b),
        }
    }
}

/// What a `PATCH` says besides its bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Patch {
    /// `Upload-Offset`.
    pub offset: u64,
    /// `Upload-Length`, for an upload that deferred it.
    pub length: Option<u64>,
    pub checksum: Option<Checksum>,
}

/// How the body's reading ended.
enum Ended {
    /// All of it.
    Whole,
    /// Cut short (client gone, guard, newer request, deletion, a limit, a
    /// checksum mismatch): what came is kept unless it was hidden (a
    /// checksum could not be checked), and this is the answer.
    Cut(Error),
}

/// What `receive` got: how it ended, and the bytes it appended.
type Received = (Ended, u64);

impl Sessions {
    /// Appends a `PATCH`'s body to upload `id`; returns the new offset
    /// (durable). The body must yield its bytes as they arrive.
    pub(crate) async fn patch<S, E>(
        self: &Arc<Self>,
        id: VideoId,
        p: Patch,
        body: S,
    ) -> Result<u64, Error>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let session = self.session(id)?;
        let mut turn = session.turn.subscribe();
        session.turn.send_modify(|t| *t += 1);
        turn.borrow_and_update();
        session.touch();
        let sessions = self.clone();
        let task = tokio::spawn(async move {
            let mut inner = session.inner.lock().await;
            // This request writes the spool: a deletion cuts it (a newer
            // turn) and waits for it to leave.
            let (videos, cut) = (sessions.env.videos.clone(), session.clone());
            let stop = Arc::new(move || cut.turn.send_modify(|t| *t += 1));
            let _writes = tokio::task::spawn_blocking(move || videos.enter(id, stop)).await??;
            let result = sessions
                .patch_locked(&session, &mut inner, p, body, turn)
                .await;
            session.touch();
            result
        });
        task.await?
    }

    async fn patch_locked<S, E>(
        self: &Arc<Self>,
        session: &Session,
        inner: &mut Inner,
        p: Patch,
        body: S,
        turn: tokio::sync::watch::Receiver<u64>,
    ) -> Result<u64, Error>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let id = session.id;
        if turn.has_changed().unwrap_or(true) {
            // A newer request came while this one waited.
            return Err(Error::Aborted);
        }
        let (mut upload, status) = self.state(id)?;
        check_status(self, id, status)?;
        if p.offset != upload.offset {
            return Err(Error::OffsetMismatch {
                offset: upload.offset,
            });
        }
        if let Some(len) = p.length {
            self.set_length(id, &mut upload, len).await?;
        }
        if upload.is_complete() {
            return Ok(upload.offset);
        }
        if inner.running.is_none() {
            self.start(id, &upload, inner).await?;
        }
        let guard = Arc::new(GuardState::default());
        guard.file_started();
        let body = BodyGuard::new(body, self.env.limits, guard.clone());
        let received = self
            .receive(id, &upload, inner, &p, body, turn, &guard)
            .await;
        let hidden = p.checksum.is_some();
        self.commit(id, upload, inner, received, hidden).await
    }

    /// Sets a deferred `Upload-Length` (refused when it cannot be right).
    async fn set_length(&self, id: VideoId, u: &mut Resumable, len: u64) -> Result<(), Error> {
        match u.length {
            Some(l) if l == len => return Ok(()),
            Some(_) => return Err(Error::BadRequest("Upload-Length cannot change".into())),
            None => {}
        }
        let max = limit_of(&self.env, u);
        if len > max {
            return Err(Error::TooLarge { limit: max });
        }
        if len < u.offset {
            return Err(Error::BadRequest(
                "Upload-Length is below the bytes already received".into(),
            ));
        }
        if self.env.quota.reserve(id, len - u.offset).is_err() {
            return Err(over_quota(&self.env.quota));
        }
        u.length = Some(len);
        let videos = self.env.videos.clone();
        tokio::task::spawn_blocking(move || videos.apply(id, Change::Length(len))).await??;
        Ok(())
    }

    /// Starts the upload's job, reading the spool from its start (the
    /// spool is cut back to the offset told). A job that ran before (in
    /// this process or the last) writes the next generation of names.
    async fn start(&self, id: VideoId, u: &Resumable, inner: &mut Inner) -> Result<(), Error> {
        let permit = self.env.jobs.try_reserve().ok_or(Error::Busy)?;
        let (videos, offset, length) = (self.env.videos.clone(), u.offset, u.length);
        let again = inner.started || offset > 0;
        let (writer, reader) = tokio::task::spawn_blocking(move || {
            if again {
                videos.apply(id, Change::Restarted)?;
            }
            let path = videos.store().path(id, names::SOURCE_FILE);
            let writer = spool::reopen(&path, offset)?;
            if let Some(l) = length {
                writer.set_expected(l, 0);
            }
            let reader = writer.reader(&path)?;
            Ok::<_, Error>((writer, reader))
        })
        .await??;
        let handle = self.env.jobs.start_resumable(id, reader, permit)?;
        inner.running = Some(Running {
            writer: Some(writer),
            handle,
        });
        inner.probe = None;
        inner.started = true;
        Ok(())
    }

    /// Reads the body into the spool until it ends or is cut; a probe that
    /// refuses the file fails the whole upload.
    #[allow(clippy::too_many_arguments)]
    async fn receive<S>(
        &self,
        id: VideoId,
        u: &Resumable,
        inner: &mut Inner,
        p: &Patch,
        mut body: S,
        mut turn: tokio::sync::watch::Receiver<u64>,
        guard: &GuardState,
    ) -> Result<Received, Error>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    {
        let limit = u.length.unwrap_or_else(|| limit_of(&self.env, u));
        let mut hasher = p.checksum.as_ref().map(Checksum::hasher);
        let mut got = 0u64;
        let cut = |e: Error, got: u64| Ok((Ended::Cut(e), got));
        loop {
            let running = inner.running.as_mut().ok_or(Error::Aborted)?;
            let chunk = tokio::select! {
                verdict = &mut running.handle.probe, if inner.probe.is_none() => {
                    inner.probe = Some(crate::ingest::probe_verdict(verdict)?);
                    continue;
                }
                _ = turn.changed() => return cut(Error::Aborted, got),
                chunk = body.next() => chunk,
            };
            let chunk = match chunk {
                None => break,
                Some(Ok(c)) => c,
                Some(Err(_)) => return cut(guard.verdict().unwrap_or(Error::Aborted), got),
            };
            if u.offset + got + chunk.len() as u64 > limit {
                return cut(Error::TooLarge { limit }, got);
            }
            if self.env.quota.store(id, chunk.len() as u64).is_err() {
                return cut(over_quota(&self.env.quota), got);
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            let n = chunk.len() as u64;
            if let Err(e) = append(running, chunk, hasher.is_some()).await {
                self.env.quota.unstore(id, n);
                return cut(e, got);
            }
            got += n;
        }
        if let (Some(c), Some(h)) = (&p.checksum, hasher) {
            if !c.matches(h) {
                return cut(Error::ChecksumMismatch, got);
            }
        }
        Ok((Ended::Whole, got))
    }

    /// Makes what was received durable and records the new offset; a
    /// complete upload is handed to its job. Returns the answer.
    async fn commit(
        &self,
        id: VideoId,
        mut u: Resumable,
        inner: &mut Inner,
        received: Result<Received, Error>,
        hidden: bool,
    ) -> Result<u64, Error> {
        let (ended, got) = match received {
            Ok(r) => r,
            Err(e) => return Err(self.fail_upload(id, inner, e).await),
        };
        let running = inner.running.as_mut().ok_or(Error::Aborted)?;
        let mut writer = running.writer.take().ok_or(Error::Aborted)?;
        let keep = matches!(ended, Ended::Whole) || !hidden;
        if !keep {
            self.env.quota.unstore(id, got);
        }
        let (writer, offset) = tokio::task::spawn_blocking(move || {
            if keep {
                writer.reveal();
            } else {
                writer.drop_hidden()?;
            }
            writer.sync()?;
            let offset = writer.written();
            Ok::<_, std::io::Error>((writer, offset))
        })
        .await??;
        running.writer = Some(writer);
        u.offset = offset;
        self.record_offset(id, offset).await?;
        if u.is_complete() {
            self.complete(id, inner, offset).await?;
        }
        match ended {
            Ended::Whole => Ok(offset),
            Ended::Cut(e) => Err(e),
        }
    }

    async fn record_offset(&self, id: VideoId, offset: u64) -> Result<(), Error> {
        let videos = self.env.videos.clone();
        tokio::task::spawn_blocking(move || videos.apply(id, Change::Offset(offset))).await??;
        crate::failpoint!("tus.patch.after_offset");
        Ok(())
    }

    /// Every byte is in: the spool ends, the probe must have accepted the
    /// file, then the completion mark and the record are written.
    async fn complete(&self, id: VideoId, inner: &mut Inner, size: u64) -> Result<(), Error> {
        let running = inner.running.as_mut().ok_or(Error::Aborted)?;
        let mut writer = running.writer.take().ok_or(Error::Aborted)?;
        tokio::task::spawn_blocking(move || writer.finish()).await??;
        if inner.probe.is_none() {
            let verdict = crate::ingest::probe_verdict((&mut running.handle.probe).await);
            match verdict {
                Ok(info) => inner.probe = Some(info),
                Err(e) => return Err(self.fail_upload(id, inner, e).await),
            }
        }
        let running = inner.running.take().ok_or(Error::Aborted)?;
        let videos = self.env.videos.clone();
        let started = running.handle.running.clone();
        tokio::task::spawn_blocking(move || {
            videos.store().mark_upload_done(id, size)?;
            crate::failpoint!("tus.complete.after_mark");
            let done = Change::Complete {
                bytes: size,
                running: started.load(Ordering::Acquire),
                title: None,
            };
            videos.apply(id, done)
        })
        .await??;
        self.env.quota.release(id);
        self.forget(id);
        tracing::info!(id = %id, bytes = size, "resumable upload received");
        Ok(())
    }

    /// The probe refused the file (or the job could not go on): nothing
    /// of the upload remains, and `e` is the answer.
    async fn fail_upload(&self, id: VideoId, inner: &mut Inner, e: Error) -> Error {
        if let Some(running) = inner.running.take() {
            if let Some(w) = &running.writer {
                w.control().abort();
            }
            let _ = running.handle.done.await;
        }
        self.remove(id).await;
        e
    }
}

/// Appends a chunk off the tokio workers (hidden until the checksum is
/// checked when there is one).
async fn append(running: &mut Running, chunk: Bytes, hidden: bool) -> Result<(), Error> {
    let mut writer = running.writer.take().ok_or(Error::Aborted)?;
    if writer.control().is_aborted() {
        // Deleted while arriving, or the job ended.
        return Err(Error::Aborted);
    }
    let writer = tokio::task::spawn_blocking(move || {
        if hidden {
            writer.append_hidden(&chunk)?;
        } else {
            writer.append(&chunk)?;
        }
        Ok::<SpoolWriter, std::io::Error>(writer)
    })
    .await??;
    running.writer = Some(writer);
    Ok(())
}

/// The most bytes upload `u` may have when it has not said its length.
fn limit_of(env: &super::Env, u: &Resumable) -> u64 {
    let grant = u.grant.as_ref().map_or(u64::MAX, |g| g.max_size);
    env.max_upload_bytes.min(grant)
}

/// A `PATCH` is refused for a video that is no longer receiving (failed:
/// its error; ready or processing: all bytes came already).
fn check_status(s: &Sessions, id: VideoId, status: Status) -> Result<(), Error> {
    match status {
        Status::Receiving | Status::Queued | Status::Processing | Status::Ready => Ok(()),
        Status::Deleting => Err(Error::NotFound),
        Status::Live => Err(Error::Conflict(
            "a live broadcast takes its bytes from its publisher".into(),
        )),
        Status::Failed => {
            let msg = s
                .env
                .catalog()
                .peek(id, |r| r.error.as_ref().map(|e| e.message.clone()))
                .flatten()
                .unwrap_or_default();
            Err(Error::Unprocessable(msg))
        }
    }
}
