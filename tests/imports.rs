//! Imports from a URL (issue 29, item 4), end to end against a real HTTP
//! server on loopback (`common::remote`): the video plays while it
//! imports and ends ready, through a redirect; a 404, a cut-off body and
//! too many redirects end `failed` with `import_failed` and leave no
//! file behind; the server's own network (loopback by address, `[::1]`,
//! `localhost`, and a redirect from an allowed server to each) is refused
//! without a request reaching it. Every other range the policy refuses is
//! checked by `netpolicy`'s unit tests, which connect nowhere.

use crate::common::remote::Remote;
use crate::common::*;

fn import(s: &Server, body: &serde_json::Value) -> Response {
    let body = body.to_string();
    let json = [("Content-Type", "application/json")];
    request(s.addr, "POST", "/videos", &json, body.as_bytes())
}

fn import_ok(s: &Server, url: &str) -> String {
    let r = import(s, &serde_json::json!({ "url": url }));
    assert_eq!(r.status, 201, "{url}: {}", r.text());
    r.json()["id"].as_str().unwrap().to_owned()
}

/// A server that may import from `remote` (and nothing else private).
fn server_for(remote: &Remote, extra: &[&str]) -> Server {
    let allow = remote.addr.to_string();
    let mut args = vec!["--segment-seconds", "2", "--import-allow", &allow];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Only the record is left of a failed import.
fn only_the_record(s: &Server, id: &str) {
    wait_until("the failed import's files to go", || {
        let dir = s.storage.path().join(id);
        let names: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into())
                    .collect()
            })
            .unwrap_or_default();
        names.iter().all(|n| n.starts_with("meta"))
    });
}

#[test]
fn an_import_plays_while_it_arrives_and_ends_ready() {
    let remote = Remote::start();
    let clip = h264_mp4(8, "320x240", true);
    let len = clip.len();
    remote.put("clip.mp4", clip);
    let s = server_for(&remote, &[]);
    // About 6 s to arrive, behind a redirect.
    let slow = format!("/file/clip.mp4?rate={}", len / 6);
    let url = remote.url(&format!(
        "/redirect?to={}",
        slow.replace('?', "%3F").replace('=', "%3D")
    ));
    let r = import(&s, &serde_json::json!({"url": url, "title": "From afar"}));
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["status"].as_str(), v["title"].as_str()),
        (Some("receiving"), Some("From afar"))
    );
    let id = v["id"].as_str().unwrap().to_owned();
    // A segment plays before the last byte is in.
    let during = wait_for("a segment while importing", || {
        let playlist = s.get(&format!("/play/{id}/video.m3u8"));
        let rec = s.get(&format!("/videos/{id}")).json();
        if rec["status"] != "receiving" {
            return Some(false);
        }
        let text = playlist.text();
        let media = match text.contains("#EXT-X-STREAM-INF") {
            true => {
                let rung = text
                    .lines()
                    .find(|l| l.ends_with(".m3u8") && !l.starts_with('#'))?;
                s.get(&format!("/play/{id}/{rung}")).text()
            }
            false => text,
        };
        (!extinfs(&media).is_empty()).then_some(true)
    });
    assert!(during, "the import was over before a segment played");
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["title"], "From afar");
    assert_eq!(rec["bytes_received"], len as u64);
    assert_eq!(rec["import"]["url"], url.as_str());
    assert_eq!(rec["import"]["remote_status"], 200);
    assert_eq!(rec["import"]["length"], len as u64);
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
    assert!(remote.hits().iter().any(|h| h.starts_with("/redirect")));
}

#[test]
fn remote_failures_end_failed_with_nothing_left() {
    let remote = Remote::start();
    let clip = h264_mp4(2, "160x120", true);
    let half = clip.len() / 2;
    remote.put("clip.mp4", clip);
    let s = server_for(&remote, &[]);
    let cases = [
        ("/status/404", "404"),
        (&*format!("/file/clip.mp4?cut={half}"), "cut off"),
        ("/chain/6/clip.mp4", "more than 5 redirects"),
        ("/status/503", "503"),
    ];
    for (path, says) in cases {
        let id = import_ok(&s, &remote.url(path));
        let rec = s.wait_done(&id);
        assert_eq!(rec["status"], "failed", "{path}: {rec}");
        assert_eq!(rec["error"]["code"], "import_failed", "{path}: {rec}");
        let message = rec["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
        only_the_record(&s, &id);
    }
    let rec = s
        .get(&format!(
            "/videos/{}",
            import_ok(&s, &remote.url("/status/404"))
        ))
        .json();
    let id = rec["id"].as_str().unwrap();
    assert_eq!(s.wait_done(id)["import"]["remote_status"], 404);
    // Five redirects are followed.
    let id = import_ok(&s, &remote.url("/chain/5/clip.mp4"));
    assert_eq!(s.wait_done(&id)["status"], "ready");
    // Not a video: failed with the probe's words, nothing left.
    remote.put(
        "notes.txt",
        b"just some text, not a video at all".repeat(100),
    );
    let id = import_ok(&s, &remote.url("/file/notes.txt"));
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "failed", "{rec}");
    assert_ne!(rec["error"]["code"], "import_failed", "{rec}");
    only_the_record(&s, &id);
}

#[test]
fn imports_never_reach_the_servers_own_network() {
    let allowed = Remote::start();
    let sentinel = Remote::start();
    allowed.put("clip.mp4", h264_mp4(2, "160x120", true));
    let s = server_for(&allowed, &["--uploads-per-minute", "100"]);
    let port = sentinel.addr.port();
    // Refused before anything is made: no record, no request.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("localhost:{port}"),
        format!("127.0.0.2:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        s.addr.to_string(),
    ] {
        let r = import(
            &s,
            &serde_json::json!({"url": format!("http://{host}/file/x.mp4")}),
        );
        assert_eq!(r.status, 403, "{host}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "import_refused", "{host}");
    }
    assert_eq!(s.get("/videos").json()["videos"], serde_json::json!([]));
    // Through a redirect from the allowed server: the hop is refused.
    for target in [
        format!("http://127.0.0.1:{port}/file/x.mp4"),
        format!("http://[::1]:{port}/file/x.mp4"),
        format!("http://localhost:{port}/file/x.mp4"),
        format!("http://{}/healthz", s.addr),
    ] {
        let to = target.replace(':', "%3A").replace('/', "%2F");
        let id = import_ok(&s, &allowed.url(&format!("/redirect?to={to}")));
        let rec = s.wait_done(&id);
        assert_eq!(rec["status"], "failed", "{target}: {rec}");
        assert_eq!(rec["error"]["code"], "import_refused", "{target}: {rec}");
        only_the_record(&s, &id);
    }
    assert_eq!(sentinel.hits(), Vec::<String>::new());
    // Only http and https, and a body that says what it wants.
    for bad in [
        serde_json::json!({"url": "ftp://example.com/x.mp4"}),
        serde_json::json!({"url": "file:///etc/passwd"}),
        serde_json::json!({"url": 42}),
        serde_json::json!({"link": "https://example.com/x.mp4"}),
        serde_json::json!({"url": "https://u:p@example.com/x.mp4"}),
    ] {
        let r = import(&s, &bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
}

#[test]
fn imports_are_rate_limited_and_need_the_api_token() {
    let remote = Remote::start();
    remote.put("clip.mp4", h264_mp4(2, "160x120", true));
    let token = "api-token-0123456789abcdef";
    let allow = remote.addr.to_string();
    let s = Server::start(&[
        "--api-token",
        token,
        "--import-allow",
        &allow,
        "--uploads-per-minute",
        "1",
    ]);
    let body = serde_json::json!({"url": remote.url("/file/clip.mp4")}).to_string();
    let auth = format!("Bearer {token}");
    let post = |h: &[(&str, &str)]| request(s.addr, "POST", "/videos", h, body.as_bytes());
    assert_eq!(post(&[]).status, 401);
    let first = post(&[("Authorization", &auth)]);
    assert_eq!(first.status, 201, "{}", first.text());
    let second = post(&[("Authorization", &auth)]);
    assert_eq!(second.status, 429, "{}", second.text());
    let id = first.json()["id"].as_str().unwrap().to_owned();
    wait_ready_with(&s, &id, &[("Authorization", &auth)]);
    assert_eq!(
        remote.hits(),
        ["/file/clip.mp4"],
        "the refused import fetched nothing"
    );
}
