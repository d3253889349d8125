//! `POST /videos {"url": "https://…", "title": …}`: an import (see
//! `ingest::import`). The URL's first hop is checked before anything is
//! made (`400` for a URL that is not http(s), `403 import_refused` for
//! one on the server's own network); then the video is created and
//! answered `201` like an upload, while its bytes stream in behind the
//! answer (a task of its own, holding an upload's places: rate, pending
//! jobs, receiving uploads). Its record follows the import
//! (`bytes_received`, `import.length`, `import.remote_status`) and ends
//! `ready` or `failed` (`import_failed` with the remote's words).

use super::{AppState, Body, ReqBody};
use crate::ingest::import::{self, fetch, Import, Policy};
use crate::ingest::{Accepted, NewUpload, Upload};
use crate::storage::VideoId;
use crate::Error;
use http::request::Parts;
use http::Response;
use std::sync::Arc;
use tokio::sync::oneshot;

/// What the body asks for.
struct Asked {
    url: String,
    title: Option<String>,
    encrypt: bool,
}

fn asked(v: Option<serde_json::Value>) -> Result<Asked, Error> {
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
    })
}

/// The fetcher's rules, from the configuration.
fn policy(state: &AppState) -> Policy {
    Policy {
        allow_private: state.config.import_allow_private,
        allow: state.config.import_allow.clone(),
    }
}

/// `POST /videos`.
pub(crate) async fn post(
    state: &Arc<AppState>,
    parts: &Parts,
    body: impl ReqBody,
    client: std::net::IpAddr,
) -> Result<Response<Body>, Error> {
    let asked = asked(super::videos::small_json(body).await?)?;
    let uri = fetch::parse(&asked.url)?;
    let policy = policy(state);
    fetch::resolve(&uri, &policy).await?;
    let import = Import {
        uri,
        policy,
        limits: super::upload::limits(state),
        max_bytes: state.config.max_upload_bytes,
    };
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
    created: oneshot::Sender<Result<Accepted, Error>>,
) {
    let admitted = super::upload::admit(&state, None, client);
    let (_receiving, permit) = match admitted {
        Ok(a) => (a.receiving, a.permit),
        Err(e) => return drop(created.send(Err(e))),
    };
    let ctx = super::upload::ingest_context(&state);
    let new = NewUpload {
        file_name: import::file_name(&import.uri),
        title: asked.title,
        encrypt: state.config.encrypt || asked.encrypt,
        declared: None,
        import: Some(asked.url),
        clip: None,
    };
    let up = match Upload::start(&ctx, new, permit).await {
        Ok(up) => up,
        Err(e) => return drop(created.send(Err(e))),
    };
    crate::failpoint!("import.after_created");
    let Some(record) = state.catalog.get(up.id) else {
        let e = Error::Internal("the import's record is gone".into());
        let _ = created.send(Err(Error::clone_for_client(&e)));
        return drop(up.abandon(e).await);
    };
    // The client may be gone: the import goes on (its record says how).
    let _ = created.send(Ok(Accepted { id: up.id, record }));
    follow(up, &import).await;
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
    let import = Import {
        uri,
        policy: policy(&state),
        limits: super::upload::limits(&state),
        max_bytes: state.config.max_upload_bytes,
    };
    tracing::info!(%id, "import taken up again");
    follow(up, &import).await;
}
