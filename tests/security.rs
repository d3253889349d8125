//! Access control: API tokens on writes and management, signed expiring
//! playback URLs that reach every URL a player fetches.

use crate::common::*;
use std::process::Command;

fn clip() -> Vec<u8> {
    h264_mp4(4, "160x120", true)
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
    wait_until("the video to be ready", || {
        let v = get_auth(s, &format!("/videos/{id}"), token).json();
        assert_ne!(v["status"], "failed", "{v}");
        v["status"] == "ready"
    });
}

#[test]
fn api_tokens_guard_writes_and_management_and_are_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hlsd.log");
    let file = dir.path().join("tokens");
    std::fs::write(&file, "from-a-file-token-0123\n\n").unwrap();
    let s = Server::process_logged(
        &[
            "--api-token",
            "s3cret-one-0123456",
            "--api-token",
            "s3cret-two-0123456",
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
    let r = upload_with(s.addr, Some("s3cret-two-0123456"), &clip());
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    wait_ready(&s, &id, "from-a-file-token-0123");
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
    assert_eq!(get_auth(&s, "/videos", "s3cret-one-0123456").status, 200);
    let r = request(
        s.addr,
        "DELETE",
        &format!("/videos/{id}"),
        &[("Authorization", "Bearer s3cret-one-0123456")],
        &[],
    );
    assert_eq!(r.status, 204);
    // The log is written by its own thread: wait for its request lines.
    let text = wait_for("request lines in the log", || {
        let text = std::fs::read_to_string(&log).unwrap();
        text.contains("request").then_some(text)
    });
    for secret in [
        "s3cret-one-0123456",
        "s3cret-two-0123456",
        "from-a-file-token-0123",
        "wrong",
    ] {
        assert!(!text.contains(secret), "{secret} appears in the log");
    }
}

#[test]
fn signed_urls_open_the_whole_playlist_tree_and_nothing_else() {
    let s = Server::start(&["--signing-key", "k3y", "--api-token", "admin-token-0123456"]);
    let a = upload_with(s.addr, Some("admin-token-0123456"), &clip());
    assert_eq!(a.status, 201);
    let a = a.json();
    let (id, url) = (
        a["id"].as_str().unwrap().to_owned(),
        a["playback_url"].as_str().unwrap().to_owned(),
    );
    assert!(url.contains("/video.m3u8?token="), "{url}");
    wait_ready(&s, &id, "admin-token-0123456");
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
    assert_cli_plays(&url);

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
    let b = upload_with(s.addr, Some("admin-token-0123456"), &clip()).json();
    let b_id = b["id"].as_str().unwrap();
    s.get(&format!("/play/{b_id}/video.m3u8?token={token}"))
        .assert_error(403, "invalid_token");

    // A fresh URL from the API works; the API token also opens /play.
    let fresh = request(
        s.addr,
        "POST",
        &format!("/videos/{id}/playback-token"),
        &[("Authorization", "Bearer admin-token-0123456")],
        &[],
    )
    .json();
    let fresh_url = fresh["playback_url"].as_str().unwrap();
    assert!(fresh["expires_at"].as_u64().unwrap() > 0);
    let fresh_path = fresh_url.split_once(&s.addr.to_string()).unwrap().1;
    assert_eq!(s.get(fresh_path).status, 200);
    assert_eq!(
        get_auth(
            &s,
            &format!("/play/{id}/seg_00000.ts"),
            "admin-token-0123456"
        )
        .status,
        200
    );
    // Records carry a signed playback URL too.
    let rec = get_auth(&s, &format!("/videos/{id}"), "admin-token-0123456").json();
    assert!(rec["playback_url"].as_str().unwrap().contains("?token="));
}

#[test]
fn expired_playback_urls_are_403_token_expired() {
    let s = Server::start(&[
        "--signing-key",
        "k3y",
        "--allow-open-api",
        "--playback-token-ttl-secs",
        "1",
    ]);
    let r = upload_with(s.addr, None, &clip());
    assert_eq!(r.status, 201);
    let url = r.json()["playback_url"].as_str().unwrap().to_owned();
    let path_q = url.split_once(&s.addr.to_string()).unwrap().1.to_owned();
    // Valid for one second: wait for the clock to pass it (the expiry
    // arithmetic itself is unit-tested with a manual clock).
    wait_until("the token to expire", || s.get(&path_q).status == 403);
    s.get(&path_q).assert_error(403, "token_expired");
}

/// `#EXT-X-KEY` lines of a playlist: (URI, IV hex).
fn keys_of(playlist: &str) -> Vec<(String, String)> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-KEY:"))
        .map(|attrs| {
            assert!(attrs.contains("METHOD=AES-128"), "{attrs}");
            let uri = attrs
                .split("URI=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned();
            let iv = attrs
                .split("IV=0x")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_owned();
            (uri, iv)
        })
        .collect()
}

#[test]
fn aes128_segments_need_the_served_key() {
    let s = Server::start(&["--encrypt", "--signing-key", "k3y", "--allow-open-api"]);
    let r = upload_with(s.addr, None, &clip());
    assert_eq!(r.status, 201);
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_owned();
    let url = v["playback_url"].as_str().unwrap().to_owned();
    let rec = s.wait_done(&id);
    assert_eq!(rec["encrypted"], true, "{rec}");
    let token = url.split("token=").nth(1).unwrap().to_owned();
    let pl = s
        .get(&format!("/play/{id}/video.m3u8?token={token}"))
        .text();
    let keys = keys_of(&pl);
    assert_eq!(keys.len(), 1, "{pl}");
    let (key_uri, iv) = &keys[0];
    assert!(
        key_uri.starts_with(&format!("/keys/{id}/key_00000.key?token=")),
        "{key_uri}"
    );

    // The key: not without a token, 16 bytes with one.
    s.get(&format!("/keys/{id}/key_00000.key"))
        .assert_error(403, "invalid_token");
    let key = s.get(key_uri);
    assert_eq!(key.status, 200);
    assert_eq!(key.header("cache-control"), Some("private, no-store"));
    assert_eq!(key.body.len(), 16);
    // Not reachable under /play either.
    assert_eq!(s.get(&format!("/play/{id}/keys?token={token}")).status, 404);

    let dir = tempfile::tempdir().unwrap();
    let (_, seg) = &extinfs(&pl)[0];
    let enc = dir.path().join("enc.ts");
    let body = s.get(&format!("/play/{id}/{seg}")).body;
    assert_ne!(body[0], 0x47, "segment is not encrypted");
    std::fs::write(&enc, &body).unwrap();
    // As stored, it is not MPEG-TS: the sync byte is gone from (nearly)
    // every 188-byte packet (random bytes keep it 1 time in 256).
    let packets = body.len() / 188;
    let synced = (0..packets).filter(|i| body[i * 188] == 0x47).count();
    assert!(
        packets > 10 && synced * 10 < packets,
        "{synced} of {packets} packets look like TS"
    );
    // Decrypted with the served key and IV, it is.
    let hexkey: String = key.body.iter().map(|b| format!("{b:02x}")).collect();
    let dec = dir.path().join("dec.ts");
    let st = Command::new("openssl")
        .args(["enc", "-d", "-aes-128-cbc", "-K", &hexkey, "-iv", iv, "-in"])
        .arg(&enc)
        .arg("-out")
        .arg(&dec)
        .status()
        .unwrap();
    assert!(st.success());
    let v = ffprobe(&dec, &["-show_streams"]);
    assert_eq!(v["streams"][0]["codec_name"], "h264");
    assert_eq!(decode_errors(&dec), "");
    // An independent player with only the URL: fetches keys itself.
    assert_cli_plays(&url);
}

#[test]
fn keys_rotate_every_n_segments_and_per_video_encryption_works() {
    let s = Server::start(&["--segment-seconds", "1", "--key-rotation-segments", "1"]);
    // Not server-wide: this upload asks for it with a form field.
    let (k, v) = multipart_header();
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"encrypt\"\r\n\r\n1\r\n")
            .into_bytes();
    body.extend(multipart("video", "c.mp4", &clip()));
    let r = send_request(s.addr, "POST", "/upload", &[(k, &v)], &body, FAST);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_done(&id)["encrypted"], true);
    let pl = s.get(&format!("/play/{id}/video.m3u8")).text();
    let keys = keys_of(&pl);
    let uris: std::collections::BTreeSet<_> = keys.iter().map(|(u, _)| u.clone()).collect();
    assert!(uris.len() >= 3, "expected a key per segment: {pl}");
    let url = format!("http://{}/play/{id}/video.m3u8", s.addr);
    assert_cli_plays(&url);
    // A plain upload on the same server stays clear.
    let plain = upload_ok(&s, &clip(), FAST);
    assert_eq!(s.wait_done(&plain)["encrypted"], false);
    assert!(!s
        .get(&format!("/play/{plain}/video.m3u8"))
        .text()
        .contains("EXT-X-KEY"));
}
