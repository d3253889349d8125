//! The image API (issue 29, item 2): a thumbnail at `time=t` is the
//! source's frame at `t` (coarsely compared with the ffmpeg CLI's, as the
//! storyboard test does); sizes and fit modes give the asked dimensions;
//! JPEG, PNG and WebP decode; animated GIF and WebP have the asked frames;
//! a cache hit is byte-identical (and `304` on its ETag); an encrypted
//! video's segments are decrypted for it; a clip's token covers its range
//! only; 200 different requests at once leave the server answering
//! `/healthz`, within its memory, the excess refused `503 busy`.

use crate::common::*;
use std::path::Path;

/// `bytes` as a file, and what ffprobe says of its first video stream.
fn probe(dir: &Path, name: &str, bytes: &[u8]) -> (std::path::PathBuf, serde_json::Value) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let p = ffprobe(&path, &["-show_entries", "stream=codec_name,width,height"]);
    (path, p["streams"][0].clone())
}

fn ready(s: &Server, clip: &Path) -> String {
    let id = upload_ok(s, &std::fs::read(clip).unwrap(), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    id
}

#[test]
fn thumbnails_show_their_time_at_their_size() {
    let s = Server::start(&["--segment-seconds", "2"]);
    let clip = h264_mp4_path(10, "854x480", true);
    let id = ready(&s, &clip);
    let dir = tempfile::tempdir().unwrap();
    for t in [1.0, 6.5] {
        let r = s.get(&format!("/play/{id}/thumbnail.jpg?time={t}"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("image/jpeg"));
        let (path, st) = probe(dir.path(), "t.jpg", &r.body);
        assert_eq!(
            (st["width"].as_u64(), st["height"].as_u64()),
            (Some(854), Some(480))
        );
        let ours = gray(&path, "null", None);
        let right = gray_diff(&ours, &gray(&clip, "null", Some(t)));
        let wrong = gray_diff(&ours, &gray(&clip, "null", Some(t + 2.5)));
        assert!(
            right < 24.0 && right <= wrong,
            "at {t}: {right} (another time {wrong})"
        );
    }
    for (q, want) in [
        ("width=320&height=320", (320, 180)),
        ("width=320&height=320&fit_mode=preserve", (320, 180)),
        ("width=300&height=300&fit_mode=crop", (300, 300)),
        ("width=300&height=300&fit_mode=pad", (300, 300)),
        ("width=200&height=50&fit_mode=stretch", (200, 50)),
        ("width=160", (160, 90)),
        ("height=90", (160, 90)),
    ] {
        for (ext, codec) in [("jpg", "mjpeg"), ("png", "png"), ("webp", "webp")] {
            let r = s.get(&format!("/play/{id}/thumbnail.{ext}?time=3&{q}"));
            assert_eq!(r.status, 200, "{q}: {}", r.text());
            let (_, st) = probe(dir.path(), &format!("t.{ext}"), &r.body);
            assert_eq!(st["codec_name"], codec, "{q}");
            let got = (
                st["width"].as_u64().unwrap(),
                st["height"].as_u64().unwrap(),
            );
            assert_eq!(got, want, "{ext} {q}");
        }
    }
    // No time: the poster's frame.
    let r = s.get(&format!("/play/{id}/thumbnail.png?width=100"));
    assert_eq!(r.status, 200, "{}", r.text());
    // The same URL, the same bytes; its ETag revalidates.
    let url = format!("/play/{id}/thumbnail.webp?time=4.2&width=200");
    let (a, b) = (s.get(&url), s.get(&url));
    assert_eq!(a.body, b.body);
    let etag = a.header("etag").unwrap().to_owned();
    assert!(a.header("cache-control").unwrap().contains("max-age="));
    let r = request(s.addr, "GET", &url, &[("If-None-Match", &etag)], b"");
    assert_eq!(r.status, 304);
    for bad in [
        "time=-1",
        "width=0",
        "width=9999",
        "fit_mode=zoom",
        "time=soon",
    ] {
        let r = s.get(&format!("/play/{id}/thumbnail.jpg?{bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    assert_eq!(
        s.get("/play/V1StGXR8_Z5jdHi6B-myT/thumbnail.jpg").status,
        404
    );
}

#[test]
fn animated_images_have_their_frames() {
    let s = Server::start(&["--segment-seconds", "2"]);
    let id = ready(&s, &h264_mp4_path(8, "320x240", true));
    let dir = tempfile::tempdir().unwrap();
    let r = s.get(&format!(
        "/play/{id}/animated.gif?start=1&end=3.5&fps=10&width=160"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/gif"));
    let (path, st) = probe(dir.path(), "a.gif", &r.body);
    assert_eq!(
        (st["codec_name"].as_str(), st["width"].as_u64()),
        (Some("gif"), Some(160))
    );
    let frames = ffprobe(
        &path,
        &["-count_frames", "-show_entries", "stream=nb_read_frames"],
    );
    let n: i64 = frames["streams"][0]["nb_read_frames"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((24..=26).contains(&n), "2.5 s at 10 fps: {n} frames");
    let r = s.get(&format!(
        "/play/{id}/animated.webp?start=0&end=2&fps=5&width=100"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/webp"));
    assert!(r.body.starts_with(b"RIFF") && &r.body[8..12] == b"WEBP");
    let frames = r.body.windows(4).filter(|w| w == b"ANMF").count();
    assert!((9..=11).contains(&frames), "2 s at 5 fps: {frames} frames");
    for bad in ["start=1&end=12", "width=641", "fps=31", "start=3&end=2"] {
        let r = s.get(&format!("/play/{id}/animated.gif?{bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
}

#[test]
fn encrypted_and_signed_videos_have_images_too() {
    let s = Server::start(&[
        "--segment-seconds",
        "2",
        "--encrypt",
        "--signing-key",
        "image-key",
        "--allow-open-api",
    ]);
    let r = upload(s.addr, &h264_mp4(6, "320x240", true), FAST);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_done(&id)["status"], "ready");
    assert_eq!(
        s.get(&format!("/play/{id}/thumbnail.jpg?time=3")).status,
        403
    );
    let path = format!("/videos/{id}/playback-token");
    let whole = request(s.addr, "POST", &path, &[], b"").json();
    let token = whole["token"].as_str().unwrap();
    let r = s.get(&format!("/play/{id}/thumbnail.jpg?time=3&token={token}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = probe(dir.path(), "e.jpg", &r.body);
    let d = gray_diff(
        &gray(&p, "null", None),
        &gray(&h264_mp4_path(6, "320x240", true), "null", Some(3.0)),
    );
    assert!(d < 24.0, "decrypted frame differs by {d}");
    // A clip's token: images inside its range only.
    let clip = request(s.addr, "POST", &path, &[], br#"{"start": 2, "end": 4}"#).json();
    let ct = clip["token"].as_str().unwrap();
    let inside = s.get(&format!("/play/{id}/thumbnail.jpg?time=3&token={ct}"));
    assert_eq!(inside.status, 200);
    let outside = s.get(&format!("/play/{id}/thumbnail.jpg?time=5&token={ct}"));
    assert_eq!(outside.json()["error"]["code"], "outside_clip");
}

#[test]
fn two_hundred_image_requests_at_once_stay_bounded() {
    // Every request on its own connection from one address.
    let args = ["--segment-seconds", "2", "--max-connections-per-ip", "400"];
    let mut s = Server::process(&args);
    let id = ready(&s, &h264_mp4_path(10, "854x480", true));
    // A fresh process: its peak memory is the storm's, not the transcode's.
    s.terminate();
    s.restart(&args);
    let addr = s.addr;
    let storm: Vec<_> = (0..200)
        .map(|i| {
            let path = format!(
                "/play/{id}/thumbnail.jpg?time={:.2}&width={}",
                i as f64 * 0.049,
                200 + i
            );
            std::thread::spawn(move || request(addr, "GET", &path, &[], b""))
        })
        .collect();
    let health = s.get("/healthz");
    assert_eq!(health.status, 200);
    let answers: Vec<Response> = storm.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = answers.iter().filter(|r| r.status == 200).count();
    let busy = answers.iter().filter(|r| r.status == 503).count();
    assert_eq!(
        ok + busy,
        200,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(ok >= 2, "{ok} made");
    for r in answers.iter().filter(|r| r.status == 503) {
        assert_eq!(r.json()["error"]["code"], "busy");
        assert!(r.header("retry-after").is_some());
    }
    let peak_mib = s.peak_rss_kib() / 1024;
    assert!(peak_mib < 400, "peak {peak_mib} MiB");
    assert_eq!(s.get("/healthz").status, 200);
    eprintln!("image storm: {ok} made, {busy} refused, peak {peak_mib} MiB");
}
