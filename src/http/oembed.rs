//! `GET /oembed?url=…&maxwidth=&maxheight=` (oEmbed 1.0, type `video`):
//! what WordPress, Discourse or Mastodon need to show a hlsd URL (an
//! embed page's or a playback URL) as a player. The answer's `html` is an
//! `<iframe>` of the embed page, carrying the URL's token and player
//! options; a signed video's URL without a valid token is `401` (the
//! spec's "private resource"); a format other than JSON is `501`.

use super::embed::{esc, size_of, KEYS};
use super::urls::query_value;
use super::{json, AppState, Body};
use crate::storage::{names, VideoId};
use crate::Error;
use http::{Response, StatusCode};

/// The video a shared URL names, and its query.
fn parse_url(url: &str) -> Option<(VideoId, &str)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let path = &rest[rest.find('/')?..];
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let path = path.split('#').next().unwrap_or("");
    // The route table reads the path, as for a request.
    let id = match super::Route::parse(path) {
        super::Route::Embed(Some(id)) => id,
        super::Route::Play {
            id: Some(id),
            rung: None,
            file: names::PLAYLIST,
        } => id,
        _ => return None,
    };
    Some((id, query.split('#').next().unwrap_or("")))
}

/// `maxwidth`/`maxheight`: positive integers when given.
fn bound(query: &str, name: &str) -> Result<Option<u32>, Error> {
    let Some(v) = query_value(query, name) else {
        return Ok(None);
    };
    match v.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(Error::BadRequest(format!(
            "{name} is a positive number of pixels, not {v:?}"
        ))),
    }
}

/// `(w, h)` scaled down to fit the bounds, its aspect kept.
fn fit((w, h): (u32, u32), max_w: Option<u32>, max_h: Option<u32>) -> (u32, u32) {
    let (mut fw, mut fh) = (f64::from(w), f64::from(h));
    if let Some(m) = max_w.map(f64::from).filter(|m| *m < fw) {
        (fw, fh) = (m, fh * m / fw);
    }
    if let Some(m) = max_h.map(f64::from).filter(|m| *m < fh) {
        (fw, fh) = (fw * m / fh, m);
    }
    ((fw.round() as u32).max(1), (fh.round() as u32).max(1))
}

/// With a signing key, the shared URL's token must open the video.
fn check_token(state: &AppState, id: VideoId, query: &str) -> Result<Option<String>, Error> {
    let Some(key) = &state.config.signing_key else {
        return Ok(None);
    };
    let token = query_value(query, "token").ok_or(Error::Unauthorized)?;
    crate::auth::verify(key.as_bytes(), id.as_str(), &token, state.clock.unix())
        .map_err(|_| Error::Unauthorized)?;
    Ok(Some(token))
}

/// `GET /oembed`.
pub(crate) fn get(
    state: &AppState,
    base: &str,
    query: Option<&str>,
) -> Result<Response<Body>, Error> {
    let q = query.unwrap_or("");
    if !matches!(query_value(q, "format").as_deref(), None | Some("json")) {
        return Err(Error::FormatNotImplemented);
    }
    let url = query_value(q, "url").ok_or_else(|| Error::BadRequest("url is required".into()))?;
    let (id, shared) = parse_url(&url).ok_or(Error::NotFound)?;
    let rec = state.catalog.get(id).ok_or(Error::NotFound)?;
    if rec.status == crate::catalog::Status::Deleting {
        return Err(Error::NotFound);
    }
    let token = check_token(state, id, shared)?;
    let kept: Vec<&str> = shared
        .split('&')
        .filter(|p| KEYS.contains(&p.split('=').next().unwrap_or("")))
        .collect();
    let mut src = format!("{base}/embed/{id}");
    if !kept.is_empty() {
        src = format!("{src}?{}", kept.join("&"));
    }
    let (w, h) = fit(size_of(&rec), bound(q, "maxwidth")?, bound(q, "maxheight")?);
    let html = format!(
        "<iframe src=\"{}\" width=\"{w}\" height=\"{h}\" frameborder=\"0\" \
         allow=\"autoplay; fullscreen; picture-in-picture; encrypted-media\" \
         allowfullscreen title=\"{}\"></iframe>",
        esc(&src),
        esc(&rec.title)
    );
    let thumb = format!("{base}/play/{id}/{}", names::THUMB);
    let thumb = match &token {
        Some(t) => format!("{thumb}?token={t}"),
        None => thumb,
    };
    let (tw, th) = fit(size_of(&rec), Some(crate::media::THUMB_WIDTH), None);
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "version": "1.0",
            "type": "video",
            "provider_name": "hlsd",
            "provider_url": format!("{base}/"),
            "title": rec.title,
            "html": html,
            "width": w,
            "height": h,
            "thumbnail_url": thumb,
            "thumbnail_width": tw,
            "thumbnail_height": th,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_urls_name_their_video() {
        let id = VideoId::random();
        for (url, query) in [
            (
                format!("https://v.example/embed/{id}?token=t&start=3"),
                "token=t&start=3",
            ),
            (format!("http://127.0.0.1:3300/play/{id}/video.m3u8"), ""),
            (format!("http://h/embed/{id}#x"), ""),
        ] {
            assert_eq!(parse_url(&url), Some((id, query)), "{url}");
        }
        for bad in [
            format!("ftp://h/embed/{id}"),
            format!("http://h/videos/{id}"),
            "http://h/embed/not-an-id".to_owned(),
            "embed".to_owned(),
        ] {
            assert_eq!(parse_url(&bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_fit_their_bounds_with_their_aspect() {
        assert_eq!(fit((1280, 720), None, None), (1280, 720));
        assert_eq!(fit((1280, 720), Some(640), None), (640, 360));
        assert_eq!(fit((1280, 720), Some(640), Some(180)), (320, 180));
        assert_eq!(fit((640, 360), Some(1920), Some(1080)), (640, 360));
    }
}
