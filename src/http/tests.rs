//! The router and its limits, tested without a socket or real waiting: an
//! in-memory body, a manual clock, and tokio's paused time.

use super::*;
use crate::catalog::Status;
use crate::clock::ManualClock;
use crate::storage::VideoId;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use http_body_util::{Full, StreamBody};
use hyper::body::Frame;

const CLIENT: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

async fn state(args: &[&str], clock: Arc<ManualClock>) -> (Arc<AppState>, tempfile::TempDir) {
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::parse_from(["hlsd"].iter().chain(args));
    config.storage = dir.path().to_path_buf();
    let prepared = crate::server::prepare_with_clock(config, clock)
        .await
        .unwrap();
    (prepared.state, dir)
}

fn get(path: &str) -> Request<Full<Bytes>> {
    req("GET", path, &[])
}

async fn json_of(res: Response<Body>) -> serde_json::Value {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// A ready video with a one-segment playlist, straight into the catalog.
fn ready_video(state: &AppState) -> VideoId {
    let id = VideoId::random();
    let mut rec = state.catalog.new_record(id, Some("a.mp4".into()));
    rec.status = Status::Ready;
    state.videos.create(rec, true).unwrap();
    let pl = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg_00000.ts\n#EXT-X-ENDLIST\n";
    let store = state.catalog.store();
    store.write(id, "video.m3u8", pl.as_bytes()).unwrap();
    store.write(id, "seg_00000.ts", &[0x47; 188]).unwrap();
    id
}

#[tokio::test]
async fn routes_answer_404_405_and_allow() {
    let (s, _dir) = state(&[], ManualClock::at(1_000_000)).await;
    let r = handle(s.clone(), get("/nothing/here"), CLIENT).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = handle(s.clone(), get("/upload"), CLIENT).await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()[header::ALLOW], "POST, OPTIONS");
    let r = handle(s.clone(), get("/play/not-an-id/video.m3u8"), CLIENT).await;
    assert_eq!(json_of(r).await["error"]["code"], "not_found");
    let id = ready_video(&s);
    let r = handle(s.clone(), get(&format!("/play/{id}/video.m3u8")), CLIENT).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = handle(s.clone(), get(&format!("/videos/{id}")), CLIENT).await;
    assert_eq!(json_of(r).await["status"], "ready");
}

#[tokio::test]
async fn playback_tokens_expire_when_the_clock_says() {
    let clock = ManualClock::at(1_000_000_000);
    let args = ["--signing-key", "k3y", "--playback-token-ttl-secs", "60"];
    let (s, _dir) = state(&args, clock.clone()).await;
    let id = ready_video(&s);
    let (url, _, expires) = playback_url(&s, "", id, None);
    assert_eq!(expires, Some(1_000_000 + 60));
    let r = handle(s.clone(), get(&url), CLIENT).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("seg_00000.ts?token="));
    clock.advance(std::time::Duration::from_secs(61));
    let r = handle(s.clone(), get(&url), CLIENT).await;
    assert_eq!(json_of(r).await["error"]["code"], "token_expired");
}

#[tokio::test]
async fn a_rename_reads_an_in_memory_body() {
    let (s, _dir) = state(&[], ManualClock::at(1_000_000)).await;
    let id = ready_video(&s);
    let req = Request::patch(format!("/videos/{id}"))
        .header(header::HOST, "localhost")
        .body(Full::new(Bytes::from_static(br#"{"title":"Holiday"}"#)))
        .unwrap();
    let r = handle(s.clone(), req, CLIENT).await;
    assert_eq!(json_of(r).await["title"], "Holiday");
}

/// A body that sends `first` and then nothing, ever.
fn stalled_body(
    first: Vec<u8>,
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Unpin> {
    let s = futures_util::stream::iter([Ok(Frame::data(Bytes::from(first)))])
        .chain(futures_util::stream::pending());
    StreamBody::new(Box::pin(s))
}

#[tokio::test(start_paused = true)]
async fn a_stalled_upload_times_out_without_anyone_waiting() {
    let (s, dir) = state(
        &["--body-idle-timeout-secs", "30"],
        ManualClock::at(1_000_000),
    )
    .await;
    let boundary = "b0undary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"a.mp4\"\r\n\r\n\x00\x00\x00\x20ftypisom"
    );
    let req = Request::post("/upload")
        .header(header::HOST, "localhost")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(stalled_body(head.into_bytes()))
        .unwrap();
    let r = handle(s.clone(), req, CLIENT).await;
    assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(json_of(r).await["error"]["code"], "body_timeout");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_delete_that_cannot_stop_its_job_at_once_finishes_in_the_background() {
    let (s, _dir) = state(&[], ManualClock::at(1_000_000)).await;
    let id = ready_video(&s);
    // A writer of the video's files that does not stop when asked.
    let job = s.videos.enter(id, Arc::new(|| {})).unwrap();
    let req = req("DELETE", &format!("/videos/{id}"), &[]);
    let r = handle(s.clone(), req, CLIENT).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(json_of(r).await["status"], "deleting");
    // Nothing is gone yet; the video no longer plays and no longer changes.
    assert_eq!(s.catalog.get(id).unwrap().status, Status::Deleting);
    assert!(s.catalog.store().dir(id).exists());
    let r = handle(s.clone(), get(&format!("/play/{id}/video.m3u8")), CLIENT).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let refused = s.videos.apply(id, crate::catalog::Change::Ready);
    assert!(matches!(refused, Err(Error::NotFound)), "{refused:?}");
    assert_eq!(s.catalog.get(id).unwrap().status, Status::Deleting);
    // The job stops: the folder goes, then the record.
    let mut changes = s.catalog.subscribe();
    drop(job);
    while s.catalog.get(id).is_some() {
        changes.changed().await.unwrap();
    }
    assert!(!s.catalog.store().dir(id).exists());
}

const TOKEN: &str = "api-token-0123456789abcdef";

/// A request of `path` with `headers` (a `Host` the server answers to
/// unless given).
fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut r = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        r = r.header(header::HOST, "127.0.0.1:3300");
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(Full::new(Bytes::new())).unwrap()
}

/// Every route of the table, with and without each credential: who gets
/// in, and that an answer given on a header's credential is never left
/// for a shared cache.
#[tokio::test]
async fn every_route_asks_for_its_credential_and_answers_privately_on_it() {
    let args = ["--api-token", TOKEN, "--signing-key", "k3y-k3y-k3y"];
    let (s, _dir) = state(&args, ManualClock::at(1_000_000)).await;
    let id = ready_video(&s);
    let (_, play_token, _) = playback_url(&s, "", id, None);
    let play_token = play_token.unwrap();
    let bearer = format!("Bearer {TOKEN}");
    for path in Route::examples(id) {
        walk_one(&s, &path, &bearer, &play_token).await;
    }
    // Playback by its token in the URL stays cacheable by URL (the token
    // is in the key); the same file on the API token is private.
    let seg = format!("/play/{id}/seg_00000.ts");
    let r = handle(
        s.clone(),
        req("GET", &format!("{seg}?token={play_token}"), &[]),
        CLIENT,
    )
    .await;
    assert!(r.headers()[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .starts_with("public"));
    let r = handle(
        s.clone(),
        req("GET", &seg, &[("authorization", &bearer)]),
        CLIENT,
    )
    .await;
    let cache = r.headers()[header::CACHE_CONTROL].to_str().unwrap();
    assert_eq!(cache, "private, max-age=31536000, immutable");
}

/// One route, with no credential, the API token, a playback token and a
/// rebound `Host` (see the test above).
async fn walk_one(s: &Arc<AppState>, path: &str, bearer: &str, play_token: &str) {
    let route = Route::parse(path);
    let method = route.allowed().unwrap().split(", ").next().unwrap();
    let public = route.credential(&Method::GET) == route::Credential::None;
    let playback = matches!(
        route,
        Route::Play { .. } | Route::Key(..) | Route::Embed(_) | Route::Oembed
    );
    // No credential.
    let r = handle(s.clone(), req(method, path, &[]), CLIENT).await;
    let code = r.status().as_u16();
    match (public, playback) {
        (true, _) => assert!(code != 401 && code != 403, "{method} {path}: {code}"),
        (_, true) => assert_eq!(code, 403, "{method} {path}"),
        _ => assert_eq!(code, 401, "{method} {path}"),
    }
    // The API token in a header: in, and answered privately.
    let r = handle(
        s.clone(),
        req(method, path, &[("authorization", bearer)]),
        CLIENT,
    )
    .await;
    let code = r.status().as_u16();
    assert!(code != 401 && code != 403, "{method} {path}: {code}");
    if code < 400 && !public {
        let cache = r.headers()[header::CACHE_CONTROL].to_str().unwrap();
        assert!(
            cache.contains("private") && !cache.contains("public"),
            "{path}: {cache}"
        );
        let vary: Vec<_> = r.headers().get_all(header::VARY).iter().collect();
        assert!(
            vary.iter().any(|v| *v == "Authorization"),
            "{path}: {vary:?}"
        );
    }
    // A playback token: playback only.
    let with = format!("{path}?token={play_token}");
    let r = handle(s.clone(), req(method, &with, &[]), CLIENT).await;
    let code = r.status().as_u16();
    match (public, playback) {
        (true, _) | (_, true) => assert!(code != 401 && code != 403, "{with}: {code}"),
        // Refused: 401 (no API token), or 403 for a tus URL (a token
        // that is not its grant).
        _ => assert!(code == 401 || code == 403, "{with}: {code}"),
    }
    // A rebound DNS name: refused everywhere but playback (and embeds).
    let evil = [("host", "evil.example:3300"), ("authorization", bearer)];
    let r = handle(s.clone(), req(method, path, &evil), CLIENT).await;
    assert_eq!(
        r.status() == StatusCode::MISDIRECTED_REQUEST,
        !playback,
        "{path}"
    );
}

/// An open server's playback stays publicly cacheable.
#[tokio::test]
async fn public_playback_stays_public() {
    let (s, _dir) = state(&[], ManualClock::at(1_000_000)).await;
    let id = ready_video(&s);
    let r = handle(
        s.clone(),
        req("GET", &format!("/play/{id}/seg_00000.ts"), &[]),
        CLIENT,
    )
    .await;
    let cache = r.headers()[header::CACHE_CONTROL].to_str().unwrap();
    assert_eq!(cache, "public, max-age=31536000, immutable");
    assert!(r.headers().get(header::VARY).is_none());
}
