//! Serving: path traversal, Range and HEAD (RFC 9110), CORS and caching,
//! and playback that starts while the upload is still being sent.

use crate::common::*;

fn clip(secs: &str) -> Vec<u8> {
    h264_mp4(secs.parse().unwrap(), "320x240", true)
}

fn ready_video() -> (Server, String) {
    let s = Server::start(&[]);
    let id = upload_ok(&s, &clip("8"), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    (s, id)
}

#[test]
fn traversal_and_unknown_paths_are_404() {
    let (s, id) = ready_video();
    // A secret next to storage and files inside the folder that are not media.
    std::fs::write(s.storage.path().join("secret.txt"), "secret").unwrap();
    let paths = [
        format!("/play/{id}/../secret.txt"),
        format!("/play/{id}/..%2fsecret.txt"),
        format!("/play/{id}/%2e%2e%2fsecret.txt"),
        format!("/play/{id}/%252e%252e%252fsecret.txt"),
        format!("/play/{id}/..\\secret.txt"),
        format!("/play/{id}/meta.json"),
        format!("/play/{id}/source"),
        format!("/play/{id}/video.m3u8.tmp"),
        format!("/play/{id}/seg_00000.ts%00.m3u8"),
        format!("/play/{id}//etc/passwd"),
        format!("/play/{id}/%c0%ae%c0%ae/secret.txt"),
        "/play/../secret.txt/video.m3u8".to_string(),
        "/play/..%2f..%2fetc/passwd".to_string(),
        "/play/AAAAAAAAAAAAAAAAAAAAA/video.m3u8".to_string(),
        "/play/short/video.m3u8".to_string(),
        format!("/play/{id}"),
        "/nothing".to_string(),
        format!("/play/{id}/seg_99999.ts"),
    ];
    for p in &paths {
        let r = s.get(p);
        assert_eq!(r.status, 404, "{p}: {}", r.text());
        assert!(
            !r.text().contains("secret\"") && r.text() != "secret",
            "{p} leaked"
        );
        assert_eq!(r.json()["error"]["code"], "not_found", "{p}");
    }
    // A symlink planted in the video folder is not followed.
    std::os::unix::fs::symlink(
        s.storage.path().join("secret.txt"),
        s.storage.path().join(&id).join("evil.ts"),
    )
    .unwrap();
    assert_eq!(s.get(&format!("/play/{id}/evil.ts")).status, 404);
}

#[test]
fn range_head_cors_and_cache_headers() {
    let (s, id) = ready_video();
    let first = extinfs(&s.get(&format!("/play/{id}/video.m3u8")).text())[0]
        .1
        .clone();
    let seg = format!("/play/{id}/{first}");
    let full = s.get(&seg);
    assert_eq!(full.status, 200);
    let len = full.body.len();
    assert_eq!(
        full.header("content-length"),
        Some(len.to_string().as_str())
    );
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert_eq!(full.header("access-control-allow-origin"), Some("*"));
    assert!(full.header("cache-control").unwrap().contains("immutable"));

    let head = request(s.addr, "HEAD", &seg, &[], &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), full.header("content-length"));
    assert_eq!(head.header("content-type"), Some("video/mp2t"));

    let r = request(s.addr, "GET", &seg, &[("Range", "bytes=0-187")], &[]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, full.body[..188]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 0-187/{len}").as_str())
    );
    let r = request(s.addr, "GET", &seg, &[("Range", "bytes=-100")], &[]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, full.body[len - 100..]);
    let r = request(s.addr, "GET", &seg, &[("Range", "bytes=1000-")], &[]);
    assert_eq!(r.body, full.body[1000..]);
    let r = request(
        s.addr,
        "GET",
        &seg,
        &[("Range", &format!("bytes={len}-"))],
        &[],
    );
    r.assert_error(416, "range_not_satisfiable");
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{len}").as_str())
    );
    // Several ranges: answered with the whole resource.
    let r = request(s.addr, "GET", &seg, &[("Range", "bytes=0-1,5-6")], &[]);
    assert_eq!((r.status, r.body.len()), (200, len));

    let pl = s.get(&format!("/play/{id}/video.m3u8"));
    assert_eq!(
        pl.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert!(!pl.header("cache-control").unwrap().contains("no-cache"));

    let pre = request(
        s.addr,
        "OPTIONS",
        &seg,
        &[
            ("Origin", "http://a.example"),
            ("Access-Control-Request-Headers", "range"),
        ],
        &[],
    );
    assert_eq!(pre.status, 204);
    assert!(pre
        .header("access-control-allow-headers")
        .unwrap()
        .contains("Range"));

    let r = request(s.addr, "DELETE", &seg, &[], &[]);
    r.assert_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    let r = request(s.addr, "PUT", &format!("/videos/{id}"), &[], b"x");
    assert_eq!(r.header("allow"), Some("GET, HEAD, PATCH, DELETE, OPTIONS"));
    // HEAD works wherever GET does, without a body.
    for path in [
        format!("/videos/{id}"),
        "/healthz".to_string(),
        "/".to_string(),
    ] {
        let get = s.get(&path);
        let head = request(s.addr, "HEAD", &path, &[], &[]);
        assert_eq!(head.status, 200, "{path}");
        assert!(head.body.is_empty(), "{path}");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
    }
}

#[test]
fn cors_origin_is_configurable() {
    let s = Server::start(&["--cors-origin", "https://app.example"]);
    let id = upload_ok(&s, &clip("3"), FAST);
    s.wait_done(&id);
    let pl = format!("/play/{id}/video.m3u8");
    let r = request(
        s.addr,
        "GET",
        &pl,
        &[("Origin", "https://app.example")],
        &[],
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = request(
        s.addr,
        "GET",
        &pl,
        &[("Origin", "https://other.example")],
        &[],
    );
    assert_eq!(r.header("access-control-allow-origin"), None);
}

/// The headline: a faststart MP4 whose upload is still arriving has a
/// segment served, and its playlist grows as an EVENT playlist. The test
/// holds back the second half of the body until it has played a segment.
#[test]
fn segments_are_served_while_the_upload_is_still_arriving() {
    let s = Server::start(&["--segment-seconds", "2"]);
    let data = clip("12");
    let upload = PartialUpload::start(s.addr, &data, data.len() / 2);
    let id = s.wait_video_folder();
    let mut saw_event = false;
    let seg = wait_for("a segment served while the upload is half sent", || {
        let r = s.get(&format!("/play/{id}/video.m3u8"));
        assert_eq!(r.status, 200);
        let text = r.text();
        if text.contains("#EXT-X-PLAYLIST-TYPE:EVENT") {
            saw_event = true;
            assert!(!text.contains("#EXT-X-ENDLIST"));
            assert_eq!(r.header("cache-control"), Some("no-cache"));
        }
        let (_, name) = extinfs(&text).into_iter().next()?;
        let seg = s.get(&format!("/play/{id}/{name}"));
        (seg.status == 200).then_some(seg)
    });
    assert_eq!(seg.body[0], 0x47);
    assert!(saw_event);
    assert_eq!(
        s.get(&format!("/videos/{id}")).json()["status"],
        "receiving"
    );
    let r = upload.finish();
    assert_eq!(r.status, 201, "{}", r.text());
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready");
    let text = s.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"));
    assert_eq!(extinfs(&text).len(), 6, "{text}");
}

#[test]
fn record_has_the_fields_scripts_rely_on() {
    let (s, id) = ready_video();
    let v = s.get(&format!("/videos/{id}")).json();
    for k in [
        "id",
        "status",
        "progress",
        "bytes_received",
        "source",
        "output",
        "error",
        "created_at",
    ] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    assert_eq!(v["source"]["duration"], 8.0);
    assert_eq!(v["source"]["video"]["width"], 320);
    assert_eq!(v["output"]["video_codec"], "h264");
    assert_eq!(v["output"]["audio_codec"], "aac");
    assert!(s.storage.path().join(&id).join("meta.json").exists());
    assert_eq!(s.get("/videos/AAAAAAAAAAAAAAAAAAAAA").status, 404);
}
