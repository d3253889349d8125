//! `PUT`/`DELETE /videos/{id}/captions/{lang}`: caption tracks added
//! (WebVTT or SRT), replaced or removed. This handler parses and answers;
//! the change itself is [`crate::jobs::captions`]'s, under the video's
//! door.

use super::{json, record_json, AppState, Body, ReqBody};
use crate::jobs::captions::{self as tracks, Grid, NewTrack};
use crate::storage::{names, VideoId};
use crate::Error;
use http::{Response, StatusCode};
use http_body_util::BodyExt;

/// Largest caption file accepted (a feature film's SRT is ~100 KiB).
const MAX_CAPTION_BYTES: usize = 2 << 20;

fn lang_of(s: &str) -> Result<String, Error> {
    names::language_tag(s).ok_or_else(|| {
        Error::BadRequest(format!("`{s}` is not a language tag (e.g. en, fr, pt-br)"))
    })
}

/// `PUT /videos/{id}/captions/{lang}[?name=…]` with a WebVTT or SRT body.
pub(crate) async fn put(
    state: &AppState,
    base: &str,
    id: VideoId,
    lang: &str,
    query: Option<&str>,
    body: impl ReqBody,
) -> Result<Response<Body>, Error> {
    let lang = lang_of(lang)?;
    // Cheap refusals before the body is read (the change checks again).
    state.catalog.get(id).ok_or(Error::NotFound)?;
    let bytes = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        http_body_util::Limited::new(body, MAX_CAPTION_BYTES).collect(),
    )
    .await
    .map_err(|_| Error::BodyTimeout)?
    .map_err(|_| Error::TooLarge {
        limit: MAX_CAPTION_BYTES as u64,
    })?
    .to_bytes();
    let cues = crate::captions::parse(&bytes).map_err(|e| Error::UnsupportedCaptions(e.0))?;
    let name = query
        .and_then(|q| super::urls::query_value(q, "name"))
        .and_then(|n| crate::ingest::form::clean_title(&n))
        .unwrap_or_else(|| crate::media::track_name(&lang, 0));
    let grid = Grid {
        segment_seconds: state.config.segment_seconds,
        longest: state.config.max_duration_secs as f64,
    };
    let videos = state.videos.clone();
    let track = NewTrack { lang, name, cues };
    let (rec, replaced) =
        tokio::task::spawn_blocking(move || tracks::put(&videos, id, track, grid)).await??;
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &record_json(state, base, &rec)))
}

/// `DELETE /videos/{id}/captions/{lang}`.
pub(crate) async fn delete(
    state: &AppState,
    id: VideoId,
    lang: &str,
) -> Result<Response<Body>, Error> {
    let lang = lang_of(lang)?;
    let videos = state.videos.clone();
    tokio::task::spawn_blocking(move || tracks::delete(&videos, id, &lang)).await??;
    let mut res = Response::new(super::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    Ok(res)
}
