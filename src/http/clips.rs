//! `POST /videos/{id}/clips {"start", "end", "title"}`: an exact clip, a
//! new video in the library cut frame-accurately from a ready one
//! (`media::cut`), from its kept upload when there is one, else from its
//! MP4 download (the top rendition). Answered `201` like an upload once
//! the new video exists; the cut streams into it behind the answer (it
//! plays while it is cut) and it ends `ready` with its own posters,
//! ladder and download, its record naming `clipped_from` and `clip`. A
//! stop in the middle cuts it again at the next start.

use super::upload::Created;
use super::{AppState, Body, ReqBody};
use crate::catalog::{ClipRange, Record, Status};
use crate::ingest::{NewUpload, Upload};
use crate::media::cut::{self, ChunkSink};
use crate::storage::{names, Store, VideoId};
use crate::Error;
use bytes::Bytes;
use http::request::Parts;
use http::Response;
use std::sync::Arc;

/// Chunks of the cut in flight between the cutter and the ingest.
const CHANNEL: usize = 16;
/// The shortest clip.
const MIN_SECS: f64 = 0.1;

fn number(v: &serde_json::Value, key: &str) -> Result<Option<f64>, Error> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(Error::BadRequest(format!("{key} is a number of seconds"))),
    }
}

/// The range and title asked for, checked against the video.
fn asked(v: Option<serde_json::Value>, rec: &Record) -> Result<(ClipRange, String), Error> {
    let bad = |m: String| Error::BadRequest(m);
    let v = v.ok_or_else(|| bad("expected {\"start\": S, \"end\": E}".into()))?;
    let duration = rec.output.as_ref().map_or(0.0, |o| o.duration);
    let start = number(&v, "start")?.unwrap_or(0.0);
    let end = number(&v, "end")?.unwrap_or(duration);
    if !(start >= 0.0 && end - start >= MIN_SECS && end <= duration + 0.001) {
        return Err(bad(format!(
            "start and end must be seconds of the video (0 to {duration:.3}), end at least \
             {MIN_SECS} s after start"
        )));
    }
    let title = match v.get("title") {
        None | Some(serde_json::Value::Null) => format!("{} (clip)", rec.title),
        Some(serde_json::Value::String(t)) => crate::ingest::form::clean_title(t)
            .ok_or_else(|| bad("the title must have 1 to 200 characters".into()))?,
        Some(_) => return Err(bad("the title is a string".into())),
    };
    Ok((ClipRange { start, end }, title))
}

/// The file a clip of `rec` is cut from: its kept upload, else its
/// download. For an HDR or rotated video the download comes first (the
/// tone-mapped SDR picture, upright; the upload's 10-bit HDR would go
/// through the cut's 8-bit intermediate, its tags kept, and its rotated
/// frames could only be encoded, turned).
fn source_of(store: &Store, rec: &Record) -> Result<&'static str, Error> {
    // An HDR or rotated upload: the download (tone-mapped, upright, and
    // then copied between the cut GOPs) comes first.
    let hdr = rec.source.as_ref().is_some_and(|s| {
        s.video.rotation != 0 || s.video.colour.as_ref().is_some_and(|c| c.transfer != "sdr")
    });
    let kept = store.exists(rec.id, names::SOURCE_FILE);
    let download = rec.download && store.exists(rec.id, names::DOWNLOAD);
    match (kept, download) {
        (true, false) => Ok(names::SOURCE_FILE),
        (true, true) if !hdr => Ok(names::SOURCE_FILE),
        (_, true) => Ok(names::DOWNLOAD),
        (false, false) => Err(Error::Conflict(
            "nothing to cut from: the video keeps neither its upload (--keep-source) nor a \
             download (encrypted, or --downloads off)"
                .into(),
        )),
    }
}

/// `POST /videos/{id}/clips`.
pub(crate) async fn post(
    state: &Arc<AppState>,
    parts: &Parts,
    id: VideoId,
    body: impl ReqBody,
    client: std::net::IpAddr,
) -> Result<Response<Body>, Error> {
    let rec = super::videos::known_id(state, id)?;
    let json = super::videos::small_json(body).await?;
    if rec.status != Status::Ready {
        return Err(Error::Conflict(format!(
            "the video is {}; clip it once it is ready",
            rec.status.name()
        )));
    }
    let (range, title) = asked(json, &rec)?;
    // The clip is made as its source was: encrypted if it was (a clip of
    // an encrypted video must not play in the clear), in its codec groups.
    let encrypt = state.config.encrypt || rec.encrypted;
    let codecs = crate::config::Codecs::parse(&rec.codecs.join(","))
        .ok()
        .filter(|c| !rec.codecs.is_empty() && c.within(&state.config.codecs))
        .unwrap_or_else(|| state.config.codecs.clone());
    let store = state.catalog.store().clone();
    let file = tokio::task::spawn_blocking(move || source_of(&store, &rec)).await??;
    let new = NewUpload {
        file_name: None,
        title: Some(title),
        encrypt,
        codecs,
        declared: None,
        import: None,
        clip: Some((id, range)),
    };
    let st = state.clone();
    super::upload::answered_early(state, parts, move |tx| run(st, client, new, file, tx)).await
}

async fn run(
    state: Arc<AppState>,
    client: std::net::IpAddr,
    new: NewUpload,
    file: &'static str,
    created: Created,
) {
    let Some((from, range)) = new.clip else {
        return;
    };
    let ctx = super::upload::ingest_context(&state);
    let mut created = Some(created);
    let started = super::upload::start_early(&state, &ctx, client, new, &mut created).await;
    let Some((up, _receiving)) = started else {
        return;
    };
    crate::failpoint!("clip.after_created");
    if let Some(up) = super::upload::tell_created(&state, up, created).await {
        cut_into(&state, up, (from, file), range).await;
    }
}

/// Cuts `range` of `file` of video `from` into the new video `up`.
async fn cut_into(
    state: &AppState,
    mut up: Upload<'_>,
    (from, file): (VideoId, &str),
    range: ClipRange,
) {
    let id = up.id;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL);
    let store = state.catalog.store().clone();
    let file = file.to_owned();
    let cutter = tokio::task::spawn_blocking(move || {
        let input = open(&store, from, &file)?;
        let r = cut::Range {
            start: range.start,
            end: range.end,
        };
        cut::cut(input, r, ChunkSink(tx))
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Error>(b), rx))
    });
    let received = crate::ingest::receive(&mut up, Box::pin(chunks)).await;
    let cut = cutter.await.unwrap_or_else(|e| Err(Error::from(e)));
    let outcome = match (received, cut) {
        (Ok(()), Ok(())) => up.finish(None).await.map(drop),
        (Err(e), _) | (_, Err(e)) => Err(up.abandon(e).await),
    };
    match outcome {
        Ok(()) => tracing::info!(%id, %from, "clip cut"),
        Err(e) => tracing::info!(%id, %from, error = %e, "clip failed"),
    }
}

/// Something both `Read` and `Seek` (a local file or bytes from a bucket).
trait ReadSeek: std::io::Read + std::io::Seek {}
impl<T: std::io::Read + std::io::Seek> ReadSeek for T {}

/// The stored file, read where it is.
fn open(store: &Store, id: VideoId, file: &str) -> Result<Box<dyn ReadSeek + Send>, Error> {
    let path = store.path(id, file);
    if path.is_file() {
        return Ok(Box::new(crate::spool::open_finished(&path)?));
    }
    Ok(Box::new(std::io::Cursor::new(store.read(id, file)?)))
}

/// Cuts again a clip a stop interrupted (recovery emptied it).
pub(crate) async fn resume(state: Arc<AppState>, id: VideoId) {
    let Some((Some(from), Some(range))) = state.catalog.peek(id, |r| (r.clipped_from, r.clip))
    else {
        return;
    };
    let permit = super::upload::job_place(&state).await;
    let ctx = super::upload::ingest_context(&state);
    let Ok(up) = Upload::reopen_import(&ctx, id, permit).await else {
        return;
    };
    let store = state.catalog.store().clone();
    let file = state
        .catalog
        .get(from)
        .ok_or(Error::NotFound)
        .and_then(|rec| source_of(&store, &rec));
    match file {
        Ok(file) => cut_into(&state, up, (from, file), range).await,
        Err(e) => drop(up.abandon(e).await),
    }
}
