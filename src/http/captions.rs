//! `PUT`/`DELETE /videos/{id}/captions/{lang}`: caption tracks added
//! (WebVTT or SRT, validated, clipped to the video), replaced or removed,
//! while the video is processing or when it is ready. A track is written
//! as a new version of its files, then the record and the master playlist
//! change together under the video's master lock, then the old version's
//! files go.

use super::{json, record_json, AppState, Body, ReqBody};
use crate::catalog::{CaptionSource, CaptionTrack, Record, Status};
use crate::jobs::captions::{change, remove_version, timeline};
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

/// A video that may take captions (not failed, not being deleted).
fn captionable(state: &AppState, id: VideoId) -> Result<Record, Error> {
    let rec = state.catalog.get(id).ok_or(Error::NotFound)?;
    match rec.status {
        Status::Deleting => Err(Error::NotFound),
        Status::Failed => Err(Error::BadRequest(
            "the video failed; it takes no captions".into(),
        )),
        _ => Ok(rec),
    }
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
    captionable(state, id)?;
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
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("name=")))
        .map(percent_decode)
        .and_then(|n| crate::ingest::form::clean_title(&n))
        .unwrap_or_else(|| crate::media::track_name(&lang, 0));
    let store = state.catalog.store().clone();
    let catalog = state.catalog.clone();
    let segment_seconds = state.config.segment_seconds;
    // No video is longer than this: cues past it are cut at no more windows.
    let longest = state.config.max_duration_secs as f64;
    let replaced = tokio::task::spawn_blocking(move || {
        // From choosing the version to publishing it: no other change of
        // this video's captions picks the same version's names.
        let _captions = store.captions_lock(id);
        let rec = catalog.get(id).ok_or(Error::NotFound)?;
        let dir = names::caption_dir(&lang, 1);
        let old = rec.captions.iter().find(|c| c.dir == dir).cloned();
        let track = CaptionTrack {
            lang,
            name,
            source: CaptionSource::Uploaded,
            default: false,
            forced: false,
            version: old.as_ref().map_or(1, |c| c.version + 1),
            dir,
        };
        let last = cues.iter().map(|c| c.end).fold(0.0, f64::max).min(longest);
        let (windows, mpegts) = timeline(&store, &rec, segment_seconds, last);
        crate::media::publish_track(&store, id, &track, &cues, &windows, mpegts)?;
        change(&catalog, id, |caps| {
            caps.retain(|c| c.dir != track.dir);
            caps.push(track.clone());
        })?;
        if let Some(old) = &old {
            remove_version(&store, id, old);
        }
        Ok::<_, Error>(old.is_some())
    })
    .await??;
    let rec = state.catalog.get(id).ok_or(Error::NotFound)?;
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
    captionable(state, id)?;
    let dir = names::caption_dir(&lang, 1);
    let (store, catalog) = (state.catalog.store().clone(), state.catalog.clone());
    tokio::task::spawn_blocking(move || {
        let _captions = store.captions_lock(id);
        let rec = catalog.get(id).ok_or(Error::NotFound)?;
        let Some(old) = rec.captions.iter().find(|c| c.dir == dir).cloned() else {
            return Err(Error::NotFound);
        };
        change(&catalog, id, |caps| caps.retain(|c| c.dir != old.dir))?;
        remove_version(&store, id, &old);
        Ok::<_, Error>(())
    })
    .await??;
    let mut res = Response::new(super::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    Ok(res)
}

/// A query value: `+` is a space, `%XX` a byte (invalid UTF-8 is replaced).
fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let pair = (b[i] == b'%' && i + 2 < b.len())
            .then(|| Some(hex(b[i + 1])? * 16 + hex(b[i + 2])?))
            .flatten();
        match (b[i], pair) {
            (_, Some(v)) => {
                out.push(v);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (c, None) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_queries_are_decoded() {
        assert_eq!(percent_decode("Fran%C3%A7ais+(CC)"), "Français (CC)");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
