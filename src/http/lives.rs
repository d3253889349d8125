//! `/lives`: live broadcasts as resources (issue 27). `POST /lives` makes
//! a video whose status is `live` and answers where to push it (RTMP URL
//! and stream key) and where it plays (the usual
//! `/play/{id}/video.m3u8`); `GET /lives`, `GET /lives/{id}`,
//! `DELETE /lives/{id}` (the video goes, its publisher is cut) and
//! `POST /lives/{id}/reset-key` (a new key; a publisher already pushing
//! goes on). The broadcast itself comes through `ingest::live`.

use super::respond::json;
use super::{AppState, Body, ReqBody};
use crate::catalog::{Change, LiveInfo, Record, Status};
use crate::ingest::live::new_key;
use crate::storage::VideoId;
use crate::Error;
use http::{Response, StatusCode};

/// What `POST /lives` asks for.
struct Asked {
    title: Option<String>,
    /// The broadcast is kept as a video (else a sliding window, deleted
    /// when it ends).
    record: bool,
    /// Its own ladder (`auto`, `source`, heights), checked.
    ladder: Option<String>,
    /// `latency: low`: LL-HLS (parts, blocking reloads).
    low: bool,
}

fn asked(v: Option<serde_json::Value>) -> Result<Asked, Error> {
    let bad = |m: &str| Err(Error::BadRequest(m.to_owned()));
    let Some(v) = v else {
        return Ok(Asked {
            title: None,
            record: true,
            ladder: None,
            low: false,
        });
    };
    if !v.is_object() {
        return bad("expected a JSON object ({\"title\": …})");
    }
    let title = match v.get("title") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(t)) => match crate::ingest::form::clean_title(t) {
            Some(t) => Some(t),
            None => return bad("the title must have 1 to 200 characters"),
        },
        Some(_) => return bad("the title is a string"),
    };
    let record = match v.get("record") {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => return bad("record is true or false"),
    };
    let low = match v.get("latency").map(|l| l.as_str()) {
        None | Some(Some("normal")) => false,
        Some(Some("low")) => true,
        Some(_) => return bad("latency is \"normal\" or \"low\""),
    };
    let ladder = match v.get("ladder") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(l)) => match crate::config::Ladder::parse(l) {
            Ok(_) => Some(l.clone()),
            Err(e) => return Err(Error::BadRequest(format!("ladder: {e}"))),
        },
        Some(_) => return bad("ladder is \"auto\", \"source\" or heights (\"720,480\")"),
    };
    Ok(Asked {
        title,
        record,
        ladder,
        low,
    })
}

/// A live as its routes show it: the video's JSON plus where to push.
fn live_json(state: &AppState, base: &str, rec: &Record) -> serde_json::Value {
    let mut v = super::record_json(state, base, rec);
    let key = rec.live.as_ref().map_or("", |l| l.stream_key.as_str());
    let host = host_of(base);
    let rtmp = state
        .lives
        .rtmp_addr()
        .map(|a| format!("rtmp://{host}:{}/live", a.port()));
    if let Some(o) = v.as_object_mut() {
        o.insert("stream_key".into(), key.into());
        o.insert("rtmp_server".into(), rtmp.clone().into());
        o.insert("rtmp_url".into(), rtmp.map(|r| format!("{r}/{key}")).into());
        let srt = state.lives.srt_addr().map(|a| {
            format!(
                "srt://{host}:{}?streamid=#!::r=live/{key},m=publish",
                a.port()
            )
        });
        o.insert("srt_url".into(), srt.into());
        o.insert(
            "status_url".into(),
            format!("{base}/lives/{}", rec.id).into(),
        );
        o.insert(
            "publishing".into(),
            state.lives.is_publishing(rec.id).into(),
        );
        if let Some(l) = &rec.live {
            o.insert("record".into(), l.record.into());
            o.insert("latency".into(), l.latency.clone().into());
        }
    }
    v
}

/// The host of a base URL (`http://h:3300` → `h`, `http://[::1]:80` →
/// `[::1]`), split as the Host rule splits it (`access::split_host`).
fn host_of(base: &str) -> String {
    let authority = base.split("://").nth(1).unwrap_or(base);
    match super::access::split_host(authority) {
        Some((name, _)) if name.contains(':') => format!("[{name}]"),
        Some((name, _)) => name,
        None => authority.to_owned(),
    }
}

/// `POST /lives`.
pub(crate) async fn post(
    state: &AppState,
    base: &str,
    body: impl ReqBody,
) -> Result<Response<Body>, Error> {
    let asked = asked(super::videos::small_json(body).await?)?;
    if state.lives.rtmp_addr().is_none() && state.lives.srt_addr().is_none() {
        return Err(Error::Conflict(
            "this server takes no live broadcasts: start it with --rtmp-listen or --srt-listen"
                .into(),
        ));
    }
    let id = VideoId::random();
    let mut rec = state.catalog.new_record(id, None);
    rec.status = Status::Live;
    rec.title = asked.title.unwrap_or_else(|| "Live".to_owned());
    rec.encrypted = state.config.encrypt;
    rec.live = Some(LiveInfo {
        stream_key: new_key(),
        record: asked.record,
        latency: if asked.low { "low" } else { "normal" }.into(),
        started_ms: None,
        ladder: asked.ladder,
    });
    let videos = state.videos.clone();
    let made = rec.clone();
    tokio::task::spawn_blocking(move || videos.create(made, true)).await??;
    crate::failpoint!("live.after_created");
    tracing::info!(id = %id, "live created");
    Ok(json(StatusCode::CREATED, &live_json(state, base, &rec)))
}

fn live_of(state: &AppState, id: VideoId) -> Result<Record, Error> {
    state
        .catalog
        .get(id)
        .filter(|r| r.live.is_some())
        .ok_or(Error::NotFound)
}

/// `GET /lives/{id}`.
pub(crate) fn get(state: &AppState, base: &str, id: VideoId) -> Result<Response<Body>, Error> {
    let rec = live_of(state, id)?;
    Ok(json(StatusCode::OK, &live_json(state, base, &rec)))
}

/// `GET /lives`: every live, newest first.
pub(crate) fn list(state: &AppState, base: &str) -> Result<Response<Body>, Error> {
    let mut lives: Vec<Record> = state
        .catalog
        .ids()
        .into_iter()
        .filter_map(|id| state.catalog.get(id))
        .filter(|r| r.live.is_some() && r.status != Status::Deleting)
        .collect();
    lives.sort_by(|a, b| (b.created_ms, b.id.as_str()).cmp(&(a.created_ms, a.id.as_str())));
    let shown: Vec<_> = lives.iter().map(|r| live_json(state, base, r)).collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "lives": shown })))
}

/// `DELETE /lives/{id}`: the video's deletion.
pub(crate) async fn delete(state: &AppState, id: VideoId) -> Result<Response<Body>, Error> {
    live_of(state, id)?;
    super::videos::delete(state, id).await
}

/// `POST /lives/{id}/reset-key`.
pub(crate) async fn reset_key(
    state: &AppState,
    base: &str,
    id: VideoId,
) -> Result<Response<Body>, Error> {
    live_of(state, id)?;
    let videos = state.videos.clone();
    let change = Change::LiveKey(new_key());
    let rec = tokio::task::spawn_blocking(move || videos.apply(id, change)).await??;
    Ok(json(StatusCode::OK, &live_json(state, base, &rec)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_a_base_url_drops_scheme_and_port() {
        assert_eq!(host_of("http://h:3300"), "h");
        assert_eq!(host_of("https://video.example"), "video.example");
        assert_eq!(host_of("http://[::1]:80"), "[::1]");
        assert_eq!(host_of("http://[::1]"), "[::1]");
    }

    #[test]
    fn what_is_not_built_yet_is_refused_not_ignored() {
        let v = |s: &str| asked(Some(serde_json::from_str(s).unwrap()));
        assert!(v(r#"{"title":"Show","record":true,"latency":"normal"}"#).is_ok());
        assert!(!v(r#"{"record":false}"#).unwrap().record);
        assert!(v(r#"{"record":"no"}"#).is_err());
        assert!(v(r#"{"latency":"low"}"#).is_ok_and(|a| a.low));
        assert!(v(r#"{"latency":3}"#).is_err());
        assert_eq!(
            v(r#"{"ladder":"720,480"}"#).unwrap().ladder.unwrap(),
            "720,480"
        );
        assert!(v(r#"{"ladder":"tall"}"#).is_err());
        assert!(v(r#"{"ladder":7}"#).is_err());
        assert!(v(r#"[1]"#).is_err());
        assert!(asked(None).is_ok());
    }
}
