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
    Request::get(path).body(Full::new(Bytes::new())).unwrap()
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
    let (url, _, expires) = playback_url(&s, "", id);
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
    let req = Request::delete(format!("/videos/{id}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
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
