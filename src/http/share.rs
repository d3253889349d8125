//! `POST /videos/{id}/playback-token`: URLs to share a video, or one clip
//! of it: the playback URL (signed when a signing key is set) and the
//! embed page's URL. With `start`/`end` (seconds, in a JSON body or the
//! query) a signed token grants only the segments covering that range
//! (`auth::ClipClaim`); without a signing key the range rides in the URL
//! as an instant clip's `?start=&end=`.

use super::{json, AppState, Body, ReqBody};
use crate::auth::ClipClaim;
use crate::playlist::{with_query, Clip};
use crate::storage::VideoId;
use crate::Error;
use http::{Response, StatusCode};

/// `POST /videos/{id}/playback-token`.
pub(crate) async fn playback_token(
    state: &AppState,
    base: &str,
    id: VideoId,
    query: Option<&str>,
    body: impl ReqBody,
) -> Result<Response<Body>, Error> {
    super::videos::known_id(state, id)?;
    let options = super::videos::small_json(body).await?;
    let clip = asked_clip(query, options.as_ref())?;
    let claim = clip.as_ref().map(claim_of);
    let (mut url, token, expires_at) = super::urls::playback_url(state, base, id, claim);
    let mut embed = format!("{base}/embed/{id}");
    if let Some(t) = &token {
        embed = with_query(&embed, "token", t);
    }
    if let Some(c) = &clip {
        embed = c.on(&embed);
        if token.is_none() {
            url = c.on(&url);
        }
    }
    let range = clip.map(|c| {
        let end = (c.end < f64::MAX).then_some(c.end);
        serde_json::json!({"start": c.start, "end": end})
    });
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "playback_url": url,
            "embed_url": embed,
            "token": token,
            "expires_at": expires_at,
            "clip": range,
        }),
    ))
}

/// The range asked for: `start`/`end` in the JSON body (numbers of
/// seconds), else in the query.
fn asked_clip(
    query: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<Option<Clip>, Error> {
    let Some(body) = body else {
        return Clip::from_query(query).map_err(Error::BadRequest);
    };
    let mut q = Vec::new();
    for key in ["start", "end"] {
        match body.get(key) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Number(n)) => q.push(format!("{key}={n}")),
            Some(v) => {
                return Err(Error::BadRequest(format!(
                    "{key} is a number of seconds, not {v}"
                )))
            }
        }
    }
    Clip::from_query(Some(&q.join("&"))).map_err(Error::BadRequest)
}

/// A range in the token's milliseconds.
fn claim_of(c: &Clip) -> ClipClaim {
    let ms = |s: f64| (s * 1000.0).round() as u64;
    ClipClaim {
        start_ms: ms(c.start),
        end_ms: (c.end < f64::MAX).then(|| ms(c.end)),
    }
}
