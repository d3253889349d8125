//! Ingest: a multipart upload streamed field by field into the spool, with
//! its size limit, idle timeout and early refusal when the probe fails.

use crate::catalog::{Record, SourceInfo, Status};
use crate::jobs::{JobHandle, Jobs, PendingPermit};
use crate::spool::{self, SpoolControl, SpoolWriter};
use crate::storage::{names, VideoId};
use crate::Error;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the ingest needs from the server.
pub(crate) struct IngestContext<'a> {
    pub jobs: &'a Arc<Jobs>,
    pub catalog: &'a Arc<crate::catalog::Catalog>,
    pub max_upload_bytes: u64,
    pub idle_timeout: Duration,
    /// Slowest average rate accepted once `idle_timeout` has passed (0: any).
    pub min_rate: u64,
    /// `--encrypt`: every upload is encrypted.
    pub encrypt: bool,
    /// `--max-storage-bytes`: the upload reserves its declared size, or
    /// counts its bytes as they arrive.
    pub quota: &'a Arc<crate::storage::Quota>,
}

/// A successful upload.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub id: VideoId,
    pub record: Record,
}

/// Bytes of the raw body kept to locate the file part's data (its headers
/// must end within this prefix for the size to be declared).
const PREFIX_KEEP: usize = 64 * 1024;

/// The first bytes of the raw body, shared with the counting stream.
pub(crate) type RawPrefix = Arc<Mutex<Vec<u8>>>;

/// Records the body's first bytes as they pass to multer.
pub(crate) fn remember_prefix(prefix: &RawPrefix, chunk: &Bytes) {
    let mut p = prefix.lock().unwrap_or_else(|e| e.into_inner());
    if p.len() < PREFIX_KEEP {
        let take = (PREFIX_KEEP - p.len()).min(chunk.len());
        p.extend_from_slice(&chunk[..take]);
    }
}

/// The size of the file part's data, computed from the request's
/// `Content-Length` (LIBAV-NOTES.md): total minus the bytes before the data
/// minus the closing delimiter `\r\n--BOUNDARY--\r\n`. Exact when the file is
/// the last part (curl -F, browsers' FormData with the file last); larger
/// otherwise, which only makes an MP4 demuxer wait, never fail.
pub(crate) fn expected_file_size(
    prefix: &[u8],
    content_length: u64,
    boundary: &str,
    field_name: &str,
) -> Option<u64> {
    let needle = format!("name=\"{field_name}\"");
    let at = find(prefix, needle.as_bytes())?;
    let data_start = at + find(&prefix[at..], b"\r\n\r\n")? + 4;
    let tail = boundary.len() as u64 + 8;
    content_length.checked_sub(data_start as u64 + tail)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Strips a client file name to something safe to show (never a path).
pub(crate) fn sanitize_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let clean = clean.trim().trim_start_matches('.').to_owned();
    (!clean.is_empty()).then_some(clean)
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

/// Streams the file field into a new video and waits for the probe.
pub(crate) async fn ingest<'a>(
    ctx: &IngestContext<'a>,
    mut multipart: multer::Multipart<'static>,
    permit: PendingPermit,
    expected: impl Fn(&str) -> Option<u64>,
) -> Result<Accepted, Error> {
    let mut encrypt = ctx.encrypt;
    let field = loop {
        let next = tokio::time::timeout(ctx.idle_timeout, multipart.next_field())
            .await
            .map_err(|_| Error::BodyTimeout)?
            .map_err(multipart_error)?;
        let Some(field) = next else {
            return Err(Error::NoFile);
        };
        if field.name() == Some("video") || field.file_name().is_some() {
            break field;
        }
        // A plain form field before the file: `encrypt=1` asks for AES-128;
        // anything else is read and dropped (bounded by multer's limit).
        if field.name() == Some("encrypt") {
            let value = tokio::time::timeout(ctx.idle_timeout, field.text())
                .await
                .map_err(|_| Error::BodyTimeout)?
                .map_err(multipart_error)?;
            encrypt |= matches!(value.trim(), "1" | "true" | "yes" | "on");
            continue;
        }
        drain(field, ctx.idle_timeout).await?;
    };
    let field_name = field.name().unwrap_or("").to_owned();
    let file_name = field.file_name().and_then(sanitize_file_name);

    let id = VideoId::random();
    let mut record = ctx.catalog.new_record(id, file_name);
    record.encrypted = encrypt;
    let (writer, reader) = {
        let catalog = ctx.catalog.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            catalog.create(record)?;
            let path = catalog.store().path(id, names::SOURCE_FILE);
            let opened = spool::create(&path).and_then(|w| Ok((w.reader(&path)?, w)));
            match opened {
                Ok((reader, writer)) => Ok((writer, reader)),
                Err(e) => {
                    catalog.forget(id);
                    let _ = catalog.store().remove_video(id);
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??
    };
    let declared = expected(&field_name);
    if let Some(size) = declared {
        writer.set_expected(size);
    }
    // The declared size holds its place in the quota from now on; an
    // undeclared one is counted as it arrives.
    if ctx.quota.reserve(id, declared.unwrap_or(0)).is_err() {
        drop(writer);
        discard(ctx, id).await;
        return Err(over_quota(ctx));
    }
    let mut guard = AbortOnDrop {
        spool: writer.control(),
        armed: true,
    };
    let mut handle = match ctx.jobs.start(id, reader, permit) {
        Ok(h) => h,
        Err(e) => {
            discard(ctx, id).await;
            return Err(e);
        }
    };
    let result = receive(ctx, id, field, writer, &mut handle).await;
    match result {
        Ok(_info) => {
            guard.armed = false;
            // Complete: what was reserved beyond its real size goes back.
            ctx.quota.release(id);
            let running = handle.running.clone();
            let catalog = ctx.catalog.clone();
            let record = tokio::task::spawn_blocking(move || {
                catalog.update(id, true, |r| {
                    if r.status == Status::Receiving {
                        r.status = if running.load(std::sync::atomic::Ordering::Acquire) {
                            Status::Processing
                        } else {
                            Status::Queued
                        };
                    }
                })
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
            .ok_or(Error::NotFound)?;
            tracing::info!(id = %id, bytes = record.bytes_received, status = ?record.status,
                "upload received");
            Ok(Accepted { id, record })
        }
        Err(e) => {
            // Stop the pipeline, wait until its thread has ended, then make
            // sure nothing of the refused upload remains (the thread may have
            // ended on its own failure before the abort and kept a record).
            guard.spool.abort();
            guard.armed = false;
            let _ = (&mut handle.done).await;
            discard(ctx, id).await;
            Err(e)
        }
    }
}

/// Copies the field into the spool until it ends, the limit is crossed, the
/// client stalls, or the probe refuses the file; then waits for the probe.
async fn receive(
    ctx: &IngestContext<'_>,
    id: VideoId,
    mut field: multer::Field<'static>,
    mut writer: SpoolWriter,
    handle: &mut JobHandle,
) -> Result<SourceInfo, Error> {
    let mut received: u64 = 0;
    let mut probe: Option<SourceInfo> = None;
    let mut last_persist = tokio::time::Instant::now();
    let started = tokio::time::Instant::now();
    loop {
        let chunk = tokio::select! {
            verdict = &mut handle.probe, if probe.is_none() => {
                probe = Some(probe_verdict(verdict)?);
                continue;
            }
            chunk = tokio::time::timeout(ctx.idle_timeout, field.chunk()) => {
                chunk.map_err(|_| Error::BodyTimeout)?.map_err(multipart_error)?
            }
        };
        let Some(chunk) = chunk else { break };
        received += chunk.len() as u64;
        // A slow drip (one byte just inside every idle timeout) would hold a
        // pending place and a transcode slot forever: require an average.
        let elapsed = started.elapsed();
        if ctx.min_rate > 0
            && elapsed > ctx.idle_timeout
            && (received as f64) < ctx.min_rate as f64 * elapsed.as_secs_f64()
        {
            return Err(Error::TooSlow {
                min_rate: ctx.min_rate,
            });
        }
        if received > ctx.max_upload_bytes {
            return Err(Error::TooLarge {
                limit: ctx.max_upload_bytes,
            });
        }
        if ctx.quota.store(id, chunk.len() as u64).is_err() {
            return Err(over_quota(ctx));
        }
        if writer.control().is_aborted() {
            // Deleted while arriving, or the job was cancelled.
            return Err(Error::Aborted);
        }
        let persist = last_persist.elapsed() >= Duration::from_secs(1);
        if persist {
            last_persist = tokio::time::Instant::now();
        }
        // File write and record update off the tokio workers (rule 1).
        let catalog = ctx.catalog.clone();
        writer = tokio::task::spawn_blocking(move || {
            writer.append(&chunk)?;
            let _ = catalog.update(id, persist, |r| r.bytes_received = received);
            Ok::<_, std::io::Error>(writer)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    }
    writer = tokio::task::spawn_blocking(move || writer.finish().map(|()| writer))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    let info = match probe {
        Some(info) => info,
        None => probe_verdict((&mut handle.probe).await)?,
    };
    // Durable before the 201: the spool (fsynced by `finish`), its
    // completion mark, the record.
    let catalog = ctx.catalog.clone();
    tokio::task::spawn_blocking(move || {
        drop(writer);
        let mark = received.to_string();
        catalog
            .store()
            .write(id, names::SOURCE_DONE, mark.as_bytes())?;
        catalog.update(id, true, |r| r.bytes_received = received)?;
        Ok::<_, std::io::Error>(())
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    Ok(info)
}

/// Removes every trace of a refused upload: record, files, quota.
async fn discard(ctx: &IngestContext<'_>, id: VideoId) {
    ctx.catalog.forget(id);
    ctx.quota.forget(id);
    let store = ctx.catalog.store().clone();
    let _ = tokio::task::spawn_blocking(move || store.remove_video(id)).await;
}

fn over_quota(ctx: &IngestContext<'_>) -> Error {
    Error::QuotaExceeded {
        limit: ctx.quota.limit().unwrap_or(0),
    }
}

fn probe_verdict(
    v: Result<Result<SourceInfo, Error>, tokio::sync::oneshot::error::RecvError>,
) -> Result<SourceInfo, Error> {
    match v {
        Ok(r) => r,
        Err(_) => Err(Error::Internal(
            "the job ended without a probe result".into(),
        )),
    }
}

async fn drain(mut field: multer::Field<'static>, idle: Duration) -> Result<(), Error> {
    loop {
        let chunk = tokio::time::timeout(idle, field.chunk())
            .await
            .map_err(|_| Error::BodyTimeout)?
            .map_err(multipart_error)?;
        if chunk.is_none() {
            return Ok(());
        }
    }
}

/// Maps multer's errors: a broken body is an aborted upload, limits are
/// 413, everything else is a malformed form.
pub(crate) fn multipart_error(e: multer::Error) -> Error {
    match e {
        multer::Error::StreamReadFailed(_) | multer::Error::IncompleteStream => Error::Aborted,
        multer::Error::StreamSizeExceeded { limit }
        | multer::Error::FieldSizeExceeded { limit, .. } => Error::TooLarge { limit },
        other => Error::BadMultipart(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_size_matches_a_curl_body() {
        let boundary = "------------------------abc123";
        let data = b"0123456789";
        let mut body = Vec::new();
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"a.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let got = expected_file_size(&body, body.len() as u64, boundary, "video");
        assert_eq!(got, Some(data.len() as u64));
        assert_eq!(
            expected_file_size(&body[..20], 100, boundary, "video"),
            None
        );
    }

    #[test]
    fn file_names_are_never_paths() {
        assert_eq!(
            sanitize_file_name("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_file_name("C:\\x\\clip.mov").as_deref(),
            Some("clip.mov")
        );
        assert_eq!(sanitize_file_name("..").as_deref(), None);
        assert_eq!(sanitize_file_name("a\u{0}b.mp4").as_deref(), Some("ab.mp4"));
    }
}
