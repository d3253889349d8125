//! `GET`/`HEAD /play/{id}/{file}` and `/keys/{id}/{name}`: who may fetch
//! what, and how long it may be kept; the bytes are served by [`files`].

use super::files::{self, Loaded};
use super::{AppState, Body};
use crate::auth::ClipClaim;
use crate::playlist::{self, MediaPlaylist};
use crate::storage::names::{self, FileKind};
use crate::storage::VideoId;
use crate::Error;
use bytes::Bytes;
use http::request::Parts;
use http::{header, Response};

/// Segments never change once renamed into place (generations).
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A finished playlist (or a poster) changes only if the video is
/// re-processed.
const CACHE_READY_PLAYLIST: &str = "public, max-age=300";
/// A finished video's top playlist: cacheable, briefly (captions added or
/// removed later change it).
const CACHE_READY_MASTER: &str = "public, max-age=10";
/// A growing playlist must be re-fetched (RFC 8216 §6.2.1); its ETag
/// changes with every segment.
const CACHE_GROWING: &str = "no-cache";
/// Rewritten (per-token) playlists are never shared.
const CACHE_PRIVATE: &str = "private, no-cache";
/// How long a request for a video's playlist waits for it to be published
/// (a ladder's master playlist appears once every rung has a segment,
/// about a second into the job); under hls.js's 20 s manifest timeout.
const PLAYLIST_WAIT: std::time::Duration = std::time::Duration::from_secs(12);

/// `GET /keys/{id}/key_NNNNN.key`: an AES-128 key, to holders of a valid
/// playback token (or the API token) when signing is on (checked by
/// `access`). Never stored.
pub(crate) async fn key(
    state: &AppState,
    req: &Parts,
    id: VideoId,
    name: &str,
) -> Result<Response<Body>, Error> {
    if !names::is_key_name(name) {
        return Err(Error::NotFound);
    }
    live(state, id)?;
    let loaded = files::load(state, id, &format!("{}/{name}", names::KEYS_DIR)).await?;
    let mut res = files::respond(req, loaded, FileKind::Segment, "private, no-store")?;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    Ok(res)
}

/// A playlist whose URIs are rewritten to carry `token` (never shared
/// between viewers).
fn signed_playlist(req: &Parts, loaded: Loaded, token: &str) -> Result<Response<Body>, Error> {
    let text = files::text_of(&loaded).ok_or(Error::NotFound)?;
    let text = playlist::rewrite_uris(&text, |u| playlist::with_query(u, "token", token));
    respond_private(req, &loaded, text, FileKind::Playlist)
}

/// A playlist whose media URIs point into the bucket (see `direct`).
async fn direct_playlist(
    state: &AppState,
    req: &Parts,
    id: VideoId,
    rung: Option<&str>,
    loaded: Loaded,
    direct: super::direct::Direct,
    token: Option<String>,
) -> Result<Response<Body>, Error> {
    let text = files::text_of(&loaded).ok_or(Error::NotFound)?;
    let dir = rung.map_or(String::new(), |r| format!("{r}/"));
    let store = state.catalog.store().clone();
    let text = tokio::task::spawn_blocking(move || {
        super::direct::rewrite(&store, id, &dir, &text, &direct, token.as_deref())
    })
    .await?;
    respond_private(req, &loaded, text, FileKind::Playlist)
}

/// `text`, made from `loaded` for one viewer: never cached by others.
fn respond_private(
    req: &Parts,
    loaded: &Loaded,
    text: String,
    kind: FileKind,
) -> Result<Response<Body>, Error> {
    files::respond(
        req,
        files::made(text, files::modified(loaded)),
        kind,
        CACHE_PRIVATE,
    )
}

/// The storyboard with each sheet's URI carrying `token`.
fn signed_storyboard(req: &Parts, loaded: Loaded, token: &str) -> Result<Response<Body>, Error> {
    let text = files::text_of(&loaded).ok_or(Error::NotFound)?;
    let text: String = text
        .lines()
        .map(|l| match l.split_once("#xywh=") {
            Some((uri, frag)) if !uri.contains('?') => {
                format!(
                    "{}#xywh={frag}\n",
                    playlist::with_query(uri, "token", token)
                )
            }
            _ => format!("{l}\n"),
        })
        .collect();
    respond_private(req, &loaded, text, FileKind::Vtt)
}

/// `download.mp4`, as an attachment named after the video's title.
fn download(
    state: &AppState,
    req: &Parts,
    id: VideoId,
    loaded: Loaded,
) -> Result<Response<Body>, Error> {
    let title = state
        .catalog
        .peek(id, |r| r.title.clone())
        .unwrap_or_default();
    let mut res = files::respond(req, loaded, FileKind::Download, CACHE_READY_PLAYLIST)?;
    if let Ok(v) = http::HeaderValue::from_str(&attachment(&title)) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266): an ASCII
/// fallback and the exact title, percent-encoded.
fn attachment(title: &str) -> String {
    let title = if title.trim().is_empty() {
        "video"
    } else {
        title.trim()
    };
    let ascii: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " -_.()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = format!("{title}.mp4")
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}.mp4\"; filename*=UTF-8''{encoded}")
}

/// The instant clip a playlist is trimmed to: the one its URL asks for
/// (`?start=&end=`), within the range a clip's token grants.
fn clip_of(req: &Parts, claim: Option<ClipClaim>) -> Result<Option<playlist::Clip>, Error> {
    let asked = playlist::Clip::from_query(req.uri.query()).map_err(Error::BadRequest)?;
    let Some(claim) = claim else {
        return Ok(asked);
    };
    let granted = playlist::Clip::from_millis(claim.start_ms, claim.end_ms);
    match asked {
        None => Ok(Some(granted)),
        Some(a) => a.within(&granted).map(Some).ok_or(Error::OutsideClip),
    }
}

/// Under a clip's token, a file that is not a playlist must be part of the
/// clip: a segment the trimmed playlist of its folder lists (a caption
/// track's `vN_i.vtt` is in `vN.m3u8`), an init section, or a poster; not
/// the download or the storyboard.
async fn check_in_clip(
    state: &AppState,
    id: VideoId,
    rung: Option<&str>,
    file: &str,
    kind: FileKind,
    claim: ClipClaim,
) -> Result<(), Error> {
    let storyboard = file == names::STORYBOARD || file.starts_with("storyboard_");
    match kind {
        FileKind::Playlist | FileKind::Fmp4Init => return Ok(()),
        FileKind::Image if !storyboard => return Ok(()),
        FileKind::Download | FileKind::Image => return Err(Error::OutsideClip),
        FileKind::Vtt if storyboard => return Err(Error::OutsideClip),
        FileKind::Segment | FileKind::Fmp4Segment | FileKind::Vtt => {}
    }
    let dir = rung.map_or(String::new(), |r| format!("{r}/"));
    let name = match rung {
        Some(r) if r.starts_with("cc-") => format!("{}.m3u8", file.split('_').next().unwrap_or("")),
        _ => names::PLAYLIST.to_owned(),
    };
    let mut text = playlist_text(state, id, &format!("{dir}{name}")).await?;
    if text.contains("#EXT-X-STREAM-INF:") {
        let flat = format!("{dir}{}", names::FLAT_MEDIA_PLAYLIST);
        text = playlist_text(state, id, &flat).await?;
    }
    let clip = playlist::Clip::from_millis(claim.start_ms, claim.end_ms);
    match clip.lists(&text, file) {
        true => Ok(()),
        false => Err(Error::OutsideClip),
    }
}

async fn playlist_text(state: &AppState, id: VideoId, rel: &str) -> Result<String, Error> {
    files::text_of(&files::load(state, id, rel).await?).ok_or(Error::NotFound)
}

/// A playlist for `clip`: a master names its playlists with the range, a
/// media playlist keeps the segments that cover it (`400` for a range
/// after the end of a finished video). Which one it is, its text says
/// (a single rendition's top playlist becomes a master when captions
/// are added).
fn clipped(loaded: Loaded, clip: &playlist::Clip) -> Result<Loaded, Error> {
    let text = files::text_of(&loaded).ok_or(Error::NotFound)?;
    let master = text.contains("#EXT-X-STREAM-INF:");
    let text = match master {
        true => clip.carry(&text),
        false => clip.trim(&text).ok_or_else(|| {
            Error::BadRequest("the clip starts after the end of the video".into())
        })?,
    };
    Ok(files::made(text, files::modified(&loaded)))
}

/// The playlist of a video whose first segment is not out yet.
fn placeholder(state: &AppState) -> Loaded {
    let text = MediaPlaylist::placeholder(state.config.segment_seconds).to_string();
    files::made(text, std::time::SystemTime::now())
}

/// A low-latency rung's request: a blocking reload waits for its part; a
/// fresh part comes from memory (`Some`).
async fn low_latency(
    edge: &crate::hls::edge::Edge,
    req: &Parts,
    file: &str,
    kind: FileKind,
) -> Result<Option<Bytes>, Error> {
    match kind {
        FileKind::Playlist => {
            super::lowlat::before_playlist(edge, req.uri.query()).await?;
            Ok(None)
        }
        FileKind::Segment | FileKind::Fmp4Segment => super::lowlat::part(edge, file).await,
        _ => Ok(None),
    }
}

/// What serving needs of a video's record.
#[derive(Clone, Copy)]
struct Live {
    /// Its job is not over: playlists grow.
    active: bool,
    /// One rendition whose media playlist is `video.m3u8` (no master).
    flat: bool,
}

/// A video that exists and is not being deleted.
fn live(state: &AppState, id: VideoId) -> Result<Live, Error> {
    state
        .catalog
        .peek(id, |r| {
            (r.status != crate::catalog::Status::Deleting).then(|| Live {
                active: r.status.is_active(),
                flat: r.is_flat(),
            })
        })
        .flatten()
        .ok_or(Error::NotFound)
}

/// Waits (up to [`PLAYLIST_WAIT`]) for an active video's top playlist to
/// be published. A single rendition has its placeholder instead; a ladder's
/// master cannot be stood in for (a player that took a placeholder media
/// playlist would never look for variants), so the request waits, and
/// gets `503 not_ready` with `Retry-After` if the job has not started.
async fn await_master(state: &AppState, id: VideoId, rel: &str) -> Result<Live, Error> {
    let deadline = tokio::time::Instant::now() + PLAYLIST_WAIT;
    loop {
        let video = live(state, id)?;
        let present = state.catalog.store().exists_async(id, rel).await;
        if present || !video.active || video.flat {
            return Ok(video);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::NotReady);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub(crate) async fn get(
    state: &AppState,
    req: &Parts,
    id: VideoId,
    rung: Option<&str>,
    file: &str,
    (token, claim): (Option<&str>, Option<ClipClaim>),
) -> Result<Response<Body>, Error> {
    if !rung.is_none_or(names::is_rung_name) {
        return Err(Error::NotFound);
    }
    if let (None, Some(image)) = (rung, super::images::kind_of(file)) {
        return super::images::get(state, req, id, image, claim).await;
    }
    let kind = names::playable_file(file).ok_or(Error::NotFound)?;
    if kind == FileKind::Download && !state.config.downloads {
        return Err(Error::NotFound);
    }
    if let Some(claim) = claim {
        check_in_clip(state, id, rung, file, kind, claim).await?;
    }
    let token = token.map(str::to_owned);
    let mut video = live(state, id)?;
    let edge = super::lowlat::edge(id, rung, kind);
    let store = state.catalog.store();
    if edge.is_none() && video.active && store.traits().remote {
        super::lowmirror::before(store, id, rung, (file, kind), req.uri.query()).await?;
    }
    if let Some(edge) = &edge {
        if let Some(part) = low_latency(edge, req, file, kind).await? {
            let part = files::made(part, std::time::SystemTime::now());
            return files::respond(req, part, kind, CACHE_IMMUTABLE);
        }
    }
    let rel = match rung {
        Some(r) => format!("{r}/{file}"),
        None => file.to_owned(),
    };
    let top = rung.is_none() && file == names::PLAYLIST;
    if top && video.active {
        video = await_master(state, id, &rel).await?;
    }
    let loaded = match files::load(state, id, &rel).await {
        Ok(l) => l,
        // A single rendition not yet started: players keep polling this.
        Err(Error::NotFound) if top && video.active && video.flat => placeholder(state),
        Err(e) => return Err(e),
    };
    let loaded = match (kind, clip_of(req, claim)?) {
        (FileKind::Playlist, Some(clip)) => clipped(loaded, &clip)?,
        (FileKind::Playlist, None) if edge.is_some() => super::lowlat::delta(loaded, req),
        _ => loaded,
    };
    let direct = (kind == FileKind::Playlist)
        .then(|| super::direct::mode(state, token.as_deref()))
        .flatten();
    if let Some(direct) = direct {
        return direct_playlist(state, req, id, rung, loaded, direct, token).await;
    }
    if let (FileKind::Playlist, Some(token)) = (kind, &token) {
        return signed_playlist(req, loaded, token);
    }
    if let (true, Some(token)) = (file == names::STORYBOARD, &token) {
        return signed_storyboard(req, loaded, token);
    }
    if kind == FileKind::Download {
        return download(state, req, id, loaded);
    }
    let cache = match kind {
        FileKind::Playlist if video.active => CACHE_GROWING,
        // The master changes when captions are added or removed.
        FileKind::Playlist if top => CACHE_READY_MASTER,
        // Posters and storyboards keep their names when a video is
        // re-processed; caption segments are versioned.
        FileKind::Playlist | FileKind::Image => CACHE_READY_PLAYLIST,
        FileKind::Vtt if file == names::STORYBOARD => CACHE_READY_PLAYLIST,
        _ => CACHE_IMMUTABLE,
    };
    files::respond(req, loaded, kind, cache)
}
