//! Access control: API tokens on writes and management, signed expiring
//! playback URLs that reach every URL a player fetches.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn clip() -> Vec<u8> {
    fixture(
        "sec-4s.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
    )
}

fn upload_with(addr: std::net::SocketAddr, token: Option<&str>, data: &[u8]) -> Response {
    let (k, v) = multipart_header();
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![(k, v.as_str())];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    send_request(
        addr,
        "POST",
        "/upload",
        &headers,
        &multipart("video", "c.mp4", data),
        FAST,
    )
}

fn get_auth(s: &Server, path: &str, token: &str) -> Response {
    request(
        s.addr,
        "GET",
        path,
        &[("Authorization", &format!("Bearer {token}"))],
        &[],
    )
}

/// Waits for ready using the API token.
fn wait_ready(s: &Server, id: &str, token: &str) {
    let t = std::time::Instant::now();
    loop {
        let v = get_auth(s, &format!("/videos/{id}"), token).json();
        if v["status"] == "ready" {
            return;
        }
        assert!(
            v["status"] != "failed" && t.elapsed() < Duration::from_secs(60),
            "{v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn api_tokens_guard_writes_and_management_and_are_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hlsd.log");
    let file = dir.path().join("tokens");
    std::fs::write(&file, "from-a-file-token\n\n").unwrap();
    let s = Server::start_logged(
        &[
            "--api-token",
            "s3cret-one",
            "--api-token",
            "s3cret-two",
            "--api-token-file",
            file.to_str().unwrap(),
        ],
        &log,
    );
    let r = upload_with(s.addr, None, &clip());
    r.assert_error(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    upload_with(s.addr, Some("wrong"), &clip()).assert_error(401, "unauthorized");
    assert_eq!(s.storage_entries(), Vec::<String>::new());
    let r = upload_with(s.addr, Some("s3cret-two"), &clip());
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    wait_ready(&s, &id, "from-a-file-token");
    for (method, path) in [
        ("GET", "/videos".to_string()),
        ("GET", format!("/videos/{id}")),
        ("GET", format!("/videos/{id}/events")),
        ("DELETE", format!("/videos/{id}")),
        ("PATCH", format!("/videos/{id}")),
        ("POST", format!("/videos/{id}/playback-token")),
        ("GET", "/metrics".to_string()),
    ] {
        request(s.addr, method, &path, &[], &[]).assert_error(401, "unauthorized");
    }
    // Playback and health stay public without signing.
    assert_eq!(s.get(&format!("/play/{id}/video.m3u8")).status, 200);
    assert_eq!(s.get("/healthz").status, 200);
    assert_eq!(get_auth(&s, "/videos", "s3cret-one").status, 200);
    let r = request(
        s.addr,
        "DELETE",
        &format!("/videos/{id}"),
        &[("Authorization", "Bearer s3cret-one")],
        &[],
    );
    assert_eq!(r.status, 204);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("request"), "the log is empty?");
    for secret in ["s3cret-one", "s3cret-two", "from-a-file-token", "wrong"] {
        assert!(!text.contains(secret), "{secret} appears in the log");
    }
}

#[test]
fn signed_urls_open_the_whole_playlist_tree_and_nothing_else() {
    let s = Server::start(&["--signing-key", "k3y", "--api-token", "adm"]);
    let a = upload_with(s.addr, Some("adm"), &clip());
    assert_eq!(a.status, 201);
    let a = a.json();
    let (id, url) = (
        a["id"].as_str().unwrap().to_owned(),
        a["playback_url"].as_str().unwrap().to_owned(),
    );
    assert!(url.contains("/video.m3u8?token="), "{url}");
    wait_ready(&s, &id, "adm");
    let path_q = url.split_once(&s.addr.to_string()).unwrap().1.to_owned();
    let token = path_q.split_once("token=").unwrap().1.to_owned();

    // Every URI inside the playlist carries the token and opens.
    let pl = s.get(&path_q);
    assert_eq!(pl.status, 200, "{}", pl.text());
    let segs = extinfs(&pl.text());
    assert!(!segs.is_empty());
    for (_, uri) in &segs {
        assert!(uri.ends_with(&format!("?token={token}")), "{uri}");
        let r = s.get(&format!("/play/{id}/{uri}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body[0], 0x47);
    }
    assert_eq!(
        s.get(&format!("/play/{id}/poster.jpg?token={token}"))
            .status,
        200
    );
    // An independent player (the ffmpeg CLI) needs only the URL.
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", &url, "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Missing, tampered, or another video's token: 403.
    s.get(&format!("/play/{id}/video.m3u8"))
        .assert_error(403, "invalid_token");
    s.get(&format!("/play/{id}/seg_00000.ts"))
        .assert_error(403, "invalid_token");
    let (exp, sig) = token.split_once('.').unwrap();
    let tampered_sig = format!(
        "{exp}.{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    s.get(&format!("/play/{id}/video.m3u8?token={tampered_sig}"))
        .assert_error(403, "invalid_token");
    let later = format!("{}.{sig}", exp.parse::<u64>().unwrap() + 3600);
    s.get(&format!("/play/{id}/video.m3u8?token={later}"))
        .assert_error(403, "invalid_token");
    let b = upload_with(s.addr, Some("adm"), &clip()).json();
    let b_id = b["id"].as_str().unwrap();
    s.get(&format!("/play/{b_id}/video.m3u8?token={token}"))
        .assert_error(403, "invalid_token");

    // A fresh URL from the API works; the API token also opens /play.
    let fresh = request(
        s.addr,
        "POST",
        &format!("/videos/{id}/playback-token"),
        &[("Authorization", "Bearer adm")],
        &[],
    )
    .json();
    let fresh_url = fresh["playback_url"].as_str().unwrap();
    assert!(fresh["expires_at"].as_u64().unwrap() > 0);
    let fresh_path = fresh_url.split_once(&s.addr.to_string()).unwrap().1;
    assert_eq!(s.get(fresh_path).status, 200);
    assert_eq!(
        get_auth(&s, &format!("/play/{id}/seg_00000.ts"), "adm").status,
        200
    );
    // Records carry a signed playback URL too.
    let rec = get_auth(&s, &format!("/videos/{id}"), "adm").json();
    assert!(rec["playback_url"].as_str().unwrap().contains("?token="));
}

#[test]
fn expired_playback_urls_are_403_token_expired() {
    let s = Server::start(&["--signing-key", "k3y", "--playback-token-ttl-secs", "1"]);
    let r = upload_with(s.addr, None, &clip());
    assert_eq!(r.status, 201);
    let url = r.json()["playback_url"].as_str().unwrap().to_owned();
    let path_q = url.split_once(&s.addr.to_string()).unwrap().1.to_owned();
    std::thread::sleep(Duration::from_millis(2100));
    s.get(&path_q).assert_error(403, "token_expired");
}
