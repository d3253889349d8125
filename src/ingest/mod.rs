//! Ingest: an upload streamed into the spool as it arrives, under its
//! limits (size, quota, the body guard's timeouts and budgets), with early
//! refusal when the probe fails; the record says `receiving` until it ends.
//!
//! [`Upload`] is one video being received (record, spool, pipeline, quota
//! place); [`ingest`] feeds it from a multipart form ([`form`]) read through
//! a [`guard::BodyGuard`].

mod codecs;
pub(crate) mod form;
mod give_up;
pub(crate) mod guard;
pub(crate) mod import;
pub(crate) mod live;
pub(crate) mod resumable;

pub(crate) use codecs::{codecs_asked, codecs_in_json};

use crate::catalog::{Change, Record, SourceInfo};
use crate::jobs::{JobHandle, Jobs, PendingPermit, Start};
use crate::spool::{self, SpoolControl, SpoolWriter};
use crate::storage::{names, VideoId};
use crate::Error;
use bytes::Bytes;
use futures_util::TryStreamExt;
use give_up::{discard, give_up};
use guard::GuardState;
use std::sync::Arc;
use std::time::Duration;

/// How often the record follows the bytes received.
const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// What the ingest needs from the server.
pub(crate) struct IngestContext<'a> {
    pub jobs: &'a Arc<Jobs>,
    /// Every change of a video goes through here.
    pub videos: &'a Arc<crate::catalog::Lifecycle>,
    /// `--max-storage-bytes`: the upload reserves its declared size, or
    /// counts its bytes as they arrive.
    pub quota: &'a Arc<crate::storage::Quota>,
    pub max_upload_bytes: u64,
}

/// What an upload says about itself before its bytes come.
#[derive(Debug, Default)]
pub(crate) struct NewUpload {
    pub file_name: Option<String>,
    pub title: Option<String>,
    pub encrypt: bool,
    /// Its codec groups (see [`codecs_asked`]).
    pub codecs: crate::config::Codecs,
    /// The file's size when known, and how much larger it may still be.
    pub declared: Option<(u64, u64)>,
    /// An import's URL: the video is announced at once, and never erased
    /// for a failure (see `jobs::Start::Import`).
    pub import: Option<String>,
    /// An exact clip's source video and range: as an import.
    pub clip: Option<(VideoId, crate::catalog::ClipRange)>,
}

/// A successful upload.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub id: VideoId,
    pub record: Record,
}

/// Aborts the spool if the upload does not complete (client gone, error,
/// future dropped); the pipeline thread then removes what was written.
struct AbortOnDrop {
    spool: SpoolControl,
    armed: bool,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.spool.abort();
        }
    }
}

/// One video being received.
pub(crate) struct Upload<'a> {
    ctx: &'a IngestContext<'a>,
    pub id: VideoId,
    /// This upload writes the video's spool: a deletion stops it (the
    /// spool aborted) and waits for it to leave.
    _writes: crate::catalog::Writer,
    writer: Option<SpoolWriter>,
    handle: JobHandle,
    abort: AbortOnDrop,
    received: u64,
    /// Bytes let go of as they were read (a live kept nowhere, `window`).
    released: u64,
    last_persist: tokio::time::Instant,
    /// The probe's verdict, once it came.
    probe: Option<SourceInfo>,
    /// How its pipeline came to be: an import's failure is recorded, a
    /// live's refused publish leaves the live awaiting its publisher.
    how: Start,
}

impl<'a> Upload<'a> {
    /// Creates the video (record `receiving`, folder, spool), reserves its
    /// declared size in the quota and starts its pipeline.
    pub(crate) async fn start(
        ctx: &'a IngestContext<'a>,
        new: NewUpload,
        permit: PendingPermit,
    ) -> Result<Upload<'a>, Error> {
        let id = VideoId::random();
        let mut record = ctx.videos.catalog().new_record(id, new.file_name);
        record.encrypted = new.encrypt;
        record.codecs = new.codecs.names();
        if let Some(t) = new.title {
            record.title = t;
        }
        let import = new.import.is_some() || new.clip.is_some();
        let how = if import { Start::Import } else { Start::New };
        record.clipped_from = new.clip.map(|c| c.0);
        record.clip = new.clip.map(|c| c.1);
        record.import = new.import.map(|url| crate::catalog::ImportInfo {
            url,
            length: None,
            remote_status: None,
        });
        let videos = ctx.videos.clone();
        // Announced once it is accepted whole (`Change::Complete`); an
        // import at once (its client is answered now).
        let created = tokio::task::spawn_blocking(move || videos.create(record, import)).await?;
        if let Err(e) = created {
            discard(ctx, id).await;
            return Err(e);
        }
        Self::open(ctx, id, new.declared, how, permit).await
    }

    /// Takes up again an import the server stopped in the middle of
    /// (recovery emptied it, see `recovery`): a new spool and pipeline.
    pub(crate) async fn reopen_import(
        ctx: &'a IngestContext<'a>,
        id: VideoId,
        permit: PendingPermit,
    ) -> Result<Upload<'a>, Error> {
        Self::open(ctx, id, None, Start::Import, permit).await
    }

    /// A live's publisher begins (see `live`): a new spool and pipeline
    /// for the video the live made.
    pub(crate) async fn publish(
        ctx: &'a IngestContext<'a>,
        id: VideoId,
        permit: PendingPermit,
    ) -> Result<Upload<'a>, Error> {
        Self::open(ctx, id, None, Start::Live, permit).await
    }

    /// The spool, the quota's place and the pipeline of video `id`.
    async fn open(
        ctx: &'a IngestContext<'a>,
        id: VideoId,
        declared: Option<(u64, u64)>,
        how: Start,
        permit: PendingPermit,
    ) -> Result<Upload<'a>, Error> {
        let videos = ctx.videos.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let path = videos.store().path(id, names::SOURCE_FILE);
            let w = spool::create(&path)?;
            let r = w.reader(&path)?;
            let stop = w.control();
            let writes = videos.enter(id, std::sync::Arc::new(move || stop.abort()))?;
            Ok::<_, Error>((r, w, writes))
        })
        .await?;
        let (reader, writer, writes) = match opened {
            Ok(rw) => rw,
            Err(e) => return Err(give_up(ctx, id, how, e).await),
        };
        if let Some((size, slack)) = declared {
            writer.set_expected(size, slack);
        }
        // The declared size holds its place in the quota from now on; an
        // undeclared one is counted as it arrives.
        let reserve = declared.map_or(0, |(size, _)| size);
        if ctx.quota.reserve(id, reserve).is_err() {
            return Err(give_up(ctx, id, how, over_quota(ctx)).await);
        }
        let abort = AbortOnDrop {
            spool: writer.control(),
            armed: true,
        };
        let handle = match ctx.jobs.start(id, reader, permit, how) {
            Ok(h) => h,
            Err(e) => return Err(give_up(ctx, id, how, e).await),
        };
        Ok(Upload {
            ctx,
            id,
            _writes: writes,
            writer: Some(writer),
            handle,
            abort,
            received: 0,
            released: 0,
            last_persist: tokio::time::Instant::now(),
            probe: None,
            how,
        })
    }

    /// Appends a chunk to the spool (off the tokio workers) under the size
    /// limit and the quota; the record follows every second.
    pub(crate) async fn write(&mut self, chunk: Bytes) -> Result<(), Error> {
        self.received += chunk.len() as u64;
        let max = self.ctx.max_upload_bytes;
        if self.received - self.released > max {
            return Err(Error::TooLarge { limit: max });
        }
        if self.ctx.quota.store(self.id, chunk.len() as u64).is_err() {
            return Err(over_quota(self.ctx));
        }
        if self.abort.spool.is_aborted() {
            // Deleted while arriving, or the job was cancelled.
            return Err(Error::Aborted);
        }
        let persist = self.last_persist.elapsed() >= PERSIST_EVERY;
        if persist {
            self.last_persist = tokio::time::Instant::now();
        }
        let mut writer = self.writer.take().ok_or(Error::Aborted)?;
        let (videos, id, received) = (self.ctx.videos.clone(), self.id, self.received);
        let writer = tokio::task::spawn_blocking(move || {
            writer.append(&chunk)?;
            let noted = Change::Received {
                bytes: received,
                persist,
            };
            videos.apply(id, noted)?;
            Ok::<_, Error>(writer)
        })
        .await??;
        self.writer = Some(writer);
        Ok(())
    }

    /// Every change of this video goes through here.
    pub(crate) fn videos(&self) -> &Arc<crate::catalog::Lifecycle> {
        self.ctx.videos
    }

    /// True once the spool was aborted (a deletion, the job's failure).
    pub(crate) fn is_aborted(&self) -> bool {
        self.abort.spool.is_aborted()
    }

    /// An import's remote answered: its status and length, recorded; the
    /// length tells the demuxer the file's size (an MP4's reader asks for
    /// it, and would otherwise wait for the last byte).
    pub(crate) async fn note_import(&self, status: u16, length: Option<u64>) -> Result<(), Error> {
        if let (Some(n), Some(w)) = (length, &self.writer) {
            w.set_expected(n, 0);
        }
        let (videos, id) = (self.ctx.videos.clone(), self.id);
        let noted = Change::Imported { status, length };
        tokio::task::spawn_blocking(move || videos.apply(id, noted).map(drop)).await?
    }

    /// The probe's refusal, if it has come.
    fn refusal(&mut self) -> Option<Error> {
        if self.probe.is_some() {
            return None;
        }
        match self.handle.probe.try_recv() {
            Ok(Err(e)) => Some(e),
            Ok(Ok(info)) => {
                self.probe = Some(info);
                None
            }
            Err(_) => None,
        }
    }

    /// Waits for the probe's verdict (an error refuses the upload).
    async fn verdict(&mut self) -> Result<SourceInfo, Error> {
        if let Some(info) = &self.probe {
            return Ok(info.clone());
        }
        let info = probe_verdict((&mut self.handle.probe).await)?;
        self.probe = Some(info.clone());
        Ok(info)
    }

    /// The upload is complete: the spool is made durable, the probe must
    /// have accepted it, then the completion mark and the record are
    /// written (all before the 201).
    /// `title` is the form's, when it came after the file.
    pub(crate) async fn finish(mut self, title: Option<String>) -> Result<Accepted, Error> {
        let done = self.complete(title).await;
        match done {
            Ok(record) => {
                self.abort.armed = false;
                // What was reserved beyond its real size goes back.
                self.ctx.quota.release(self.id);
                tracing::info!(id = %self.id, bytes = record.bytes_received,
                    status = ?record.status, "upload received");
                Ok(Accepted {
                    id: self.id,
                    record,
                })
            }
            Err(e) => Err(self.abandon(e).await),
        }
    }

    async fn complete(&mut self, title: Option<String>) -> Result<Record, Error> {
        let mut writer = self.writer.take().ok_or(Error::Aborted)?;
        let writer =
            tokio::task::spawn_blocking(move || writer.finish().map(|()| writer)).await??;
        self.verdict().await?;
        let (videos, id, received) = (self.ctx.videos.clone(), self.id, self.received);
        let running = self.handle.running.clone();
        tokio::task::spawn_blocking(move || {
            drop(writer);
            videos.store().mark_upload_done(id, received)?;
            crate::failpoint!("upload.after_mark");
            let running = running.load(std::sync::atomic::Ordering::Acquire);
            let done = Change::Complete {
                bytes: received,
                running,
                title,
            };
            videos.apply(id, done)
        })
        .await?
    }

    /// Gives the upload up: stops the pipeline, waits until its thread has
    /// ended, then makes sure nothing of it remains (the thread may have
    /// ended on its own failure before the abort and kept a record).
    /// An import's is recorded instead: `failed` with `e`, its files gone.
    pub(crate) async fn abandon(mut self, e: Error) -> Error {
        self.abort.spool.abort();
        self.abort.armed = false;
        let _ = (&mut self.handle.done).await;
        give_up(self.ctx, self.id, self.how, e).await
    }
}

/// Streams the file of a multipart form into a new video and waits for
/// the probe. `expected` gives the file's size from the raw body, by field.
pub(crate) async fn ingest(
    ctx: &IngestContext<'_>,
    mut multipart: multer::Multipart<'static>,
    guard: &GuardState,
    (encrypt, allowed): (bool, &crate::config::Codecs),
    permit: PendingPermit,
    expected: impl Fn(&str) -> Option<(u64, u64)>,
) -> Result<Accepted, Error> {
    let (fields, part) = form::read_until_file(&mut multipart, guard).await?;
    let encrypt = encrypt || fields.encrypt;
    let new = NewUpload {
        file_name: part.file_name,
        title: fields.title,
        encrypt,
        codecs: codecs_asked(fields.codecs.as_deref(), allowed)?,
        declared: expected(&part.name),
        import: None,
        clip: None,
    };
    let mut upload = Upload::start(ctx, new, permit).await?;
    let field = part.field.map_err(|e| form::error(e, guard));
    let received = match receive(&mut upload, field).await {
        Ok(()) => form::read_after_file(&mut multipart, guard, encrypt).await,
        Err(e) => Err(e),
    };
    match received {
        Ok(after) => upload.finish(after.title).await,
        Err(e) => Err(upload.abandon(e).await),
    }
}

/// Copies a file (a form's field, an import's body) into the spool until
/// it ends, a limit is crossed, or the probe refuses the file.
pub(crate) async fn receive(
    up: &mut Upload<'_>,
    mut file: impl futures_util::Stream<Item = Result<Bytes, Error>> + Unpin,
) -> Result<(), Error> {
    use futures_util::StreamExt;
    loop {
        let chunk = tokio::select! {
            verdict = &mut up.handle.probe, if up.probe.is_none() => {
                up.probe = Some(probe_verdict(verdict)?);
                continue;
            }
            chunk = file.next() => chunk.transpose()?,
        };
        match chunk {
            Some(chunk) => {
                if let Err(e) = up.write(chunk).await {
                    // A refused file is removed by its job, which stops
                    // the upload: the refusal is the answer.
                    return Err(up.refusal().unwrap_or(e));
                }
            }
            None => return Ok(()),
        }
    }
}

fn over_quota(ctx: &IngestContext<'_>) -> Error {
    Error::QuotaExceeded {
        limit: ctx.quota.limit().unwrap_or(0),
    }
}

pub(super) fn probe_verdict(
    v: Result<Result<SourceInfo, Error>, tokio::sync::oneshot::error::RecvError>,
) -> Result<SourceInfo, Error> {
    match v {
        Ok(r) => r,
        Err(_) => Err(Error::Internal(
            "the job ended without a probe result".into(),
        )),
    }
}
