//! `POST /videos {"url": "https://…", "title": …}`: an import (see
//! `ingest::import`). The URL's first hop is checked before anything is
//! made (`400` for a URL that is not http(s), `403 import_refused` for
//! one on the server's own network); then the video is created and
//! answered `201` like an upload, while its bytes stream in behind the
//! answer (a task of its own, holding an upload's places: rate, pending
//! jobs, receiving uploads). Its record follows the import
//! (`bytes_received`, `import.length`, `import.remote_status`) and ends
//! `ready` or `failed` (`import_failed` with the remote's words).

use super::upload::Created;
use super::{AppState, Body, ReqBody};
use crate::ingest::import::{self, fetch, Import, Policy};
use crate::ingest::{NewUpload, Upload};
use crate::storage::VideoId;
use crate::Error;
use http::request::Parts;
use http::Response;
use std::sync::Arc;

/// What the body asks for.
struct Asked {
    url: String,
    title: Option<String>,
    encrypt: bool,
    codecs: crate::config::Codecs,
}

fn asked(v: Option<serde_json::Value>, allowed: &crate::config::Codecs) -> Result<Asked, Error> {
    let bad = |m: &str| Error::BadRequest(m.to_owned());
    let v = v.ok_or_else(|| bad("expected {\"url\": \"…\"} (an http or https URL)"))?;
    let url = v
        .get("url")
        .and_then(|u| u.as_str())
        .ok_or_else(|| bad("expected {\"url\": \"…\"}: a string"))?;
    let title = match v.get("title") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(t)) => Some(
            crate::ingest::form::clean_title(t)
                .ok_or_else(|| bad("the title must have 1 to 200 characters"))?,
        ),
        Some(_) => return Err(bad("the title is a string")),
    };
    let encrypt = match v.get("encrypt") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => return Err(bad("encrypt is true or false")),
    };
    Ok(Asked {
        url: url.to_owned(),
        title,
        encrypt,
        codecs: crate::ingest::codecs_in_json(&v, allowed)?,
    })
}

/// The fetcher's rules, from the configuration.
fn policy(state: &AppState) -> Policy {
    Policy {
        allow_private: state.config.import_allow_private,
        allow: state.config.import_allow.clone(),
    }
}

/// An import of `uri` under the server's rules (its first hop's checked
/// addresses, when known).
fn import_of(
    state: &AppState,
    uri: http::Uri,
    first_hop: Option<Vec<std::net::SocketAddr>>,
) -> Import {
    Import {
        uri,
        policy: policy(state),
        limits: super::upload::limits(state),
        max_bytes: state.config.max_upload_bytes,
        first_hop,
    }
}

/// `POST /videos`.
pub(crate) async fn post(
    state: &Arc<AppState>,
    parts: &Parts,
    body: impl ReqBody,
    client: std::net::IpAddr,
) -> Result<Response<Body>, Error> {
    let asked = asked(super::videos::small_json(body).await?, &state.config.codecs)?;
    let uri = fetch::parse(&asked.url)?;
    let first_hop = fetch::resolve(&uri, &policy(state)).await?;
    let import = import_of(state, uri, Some(first_hop));
    let st = state.clone();
    super::upload::answered_early(state, parts, move |tx| run(st, client, asked, import, tx)).await
}

/// The import, from its admission to its end; `created` hears of the
/// video once it exists (or why it could not be made).
async fn run(
    state: Arc<AppState>,
    client: std::net::IpAddr,
    asked: Asked,
    import: Import,
    created: Created,
) {
    let ctx = super::upload::ingest_context(&state);
    let new = NewUpload {
        file_name: import::file_name(&import.uri),
        title: asked.title,
        encrypt: state.config.encrypt || asked.encrypt,
        codecs: asked.codecs,
        declared: None,
        import: Some(asked.url),
        clip: None,
    };
    let mut created = Some(created);
    let started = super::upload::start_early(&state, &ctx, client, new, &mut created).await;
    let Some((up, _receiving)) = started else {
        return;
    };
    crate::failpoint!("import.after_created");
    if let Some(up) = super::upload::tell_created(&state, up, created).await {
        follow(up, &import).await;
    }
}

/// Brings the remote file in, to the end: `ready` (or queued), or failed.
async fn follow(mut up: Upload<'_>, import: &Import) {
    let id = up.id;
    let outcome = match import::receive(&mut up, import).await {
        Ok(()) => up.finish(None).await.map(drop),
        Err(e) => Err(up.abandon(e).await),
    };
    match outcome {
        Ok(()) => tracing::info!(%id, "import received"),
        Err(e) => tracing::info!(%id, error = %e, "import failed"),
    }
}

/// Takes up the imports a stop interrupted (recovery emptied them): each
/// is fetched again from its URL, under the rules of now, once a job
/// place is free.
pub(crate) fn resume(state: &Arc<AppState>, ids: Vec<VideoId>) {
    for id in ids {
        let clip = state.catalog.peek(id, |r| r.clip.is_some()) == Some(true);
        match clip {
            true => tokio::spawn(super::clips::resume(state.clone(), id)),
            false => tokio::spawn(resume_one(state.clone(), id)),
        };
    }
}

async fn resume_one(state: Arc<AppState>, id: VideoId) {
    let Some(url) = state
        .catalog
        .peek(id, |r| r.import.as_ref().map(|i| i.url.clone()))
        .flatten()
    else {
        return;
    };
    let permit = super::upload::job_place(&state).await;
    let ctx = super::upload::ingest_context(&state);
    let Ok(up) = Upload::reopen_import(&ctx, id, permit).await else {
        return;
    };
    let uri = match fetch::parse(&url) {
        Ok(u) => u,
        Err(e) => return drop(up.abandon(e).await),
    };
    let import = import_of(&state, uri, None);
    tracing::info!(%id, "import taken up again");
    follow(up, &import).await;
}
