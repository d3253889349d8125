//! Media straight from the bucket: presigned segment URLs with
//! `--signing-key` (checked by a real S3 server, s3s-fs), and URLs under
//! `--media-base-url` without it.

use crate::common::s3::S3Server;
use crate::common::*;

const ADMIN: &str = "admin-token-0123456789";

fn authed(s: &Server, path: &str) -> Response {
    let bearer = format!("Bearer {ADMIN}");
    request(s.addr, "GET", path, &[("Authorization", &bearer)], &[])
}

/// The path and query of a URL on `addr`.
fn path_of(url: &str, addr: std::net::SocketAddr) -> String {
    url.split_once(&addr.to_string()).unwrap().1.to_owned()
}

/// A node with `--signing-key` (and `extra`) on `prefix`, and the id of a
/// ready video of `secs` seconds uploaded to it with the API token.
fn signed_node_with_video(
    s3: &S3Server,
    prefix: &str,
    extra: &[&str],
    secs: u32,
) -> (Server, String) {
    let mut flags = vec!["--signing-key", "k3y-0123456789", "--api-token", ADMIN];
    flags.extend_from_slice(extra);
    let a = s3.start_node(prefix, "node-a", &flags);
    let bearer = format!("Bearer {ADMIN}");
    let body = multipart("video", "clip.mp4", &h264_mp4(secs, "320x240", true));
    let (k, v) = multipart_header();
    let r = request(
        a.addr,
        "POST",
        "/upload",
        &[(k, &v), ("Authorization", &bearer)],
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    wait_until("ready", || {
        authed(&a, &format!("/videos/{id}")).json()["status"] == "ready"
    });
    (a, id)
}

#[test]
fn signed_playback_fetches_segments_from_the_bucket_with_presigned_urls() {
    let s3 = S3Server::start();
    let (a, id) =
        signed_node_with_video(&s3, "signed", &["--encrypt", "--segment-seconds", "2"], 6);
    let url = authed(&a, &format!("/videos/{id}")).json()["playback_url"]
        .as_str()
        .unwrap()
        .to_owned();
    // The whole video plays: playlists and keys through hlsd (token),
    // segments from the S3 server (presigned).
    assert_cli_plays(&url);
    let master = a.get(&path_of(&url, a.addr)).text();
    lint_playlist("/video.m3u8", &master);
    // A ladder's master names its variants (through hlsd, with the
    // token); a single rendition is its own media playlist.
    let media = match master.lines().find(|l| l.contains(".m3u8?token=")) {
        Some(variant) => a.get(&format!("/play/{id}/{variant}")).text(),
        None => master.clone(),
    };
    lint_playlist("/media.m3u8", &media);
    let segments = extinfs(&media);
    assert!(!segments.is_empty());
    let s3_base = format!("{}/hlsd/signed/{id}/", s3.endpoint());
    for (_, seg) in &segments {
        assert!(
            seg.starts_with(&s3_base) && seg.contains("X-Amz-Signature="),
            "{seg}"
        );
    }
    assert!(
        media.contains(&format!("URI=\"/keys/{id}/")) && media.contains("token="),
        "{media}"
    );
    let seg = &segments[0].1;
    let ok = request(s3.addr, "GET", &path_of(seg, s3.addr), &[], &[]);
    assert_eq!(ok.status, 200);
    // Tampered, or without its signature: the S3 server refuses.
    let sig = seg.find("X-Amz-Signature=").unwrap() + 16;
    let mut bad = seg.clone().into_bytes();
    bad[sig] = if bad[sig] == b'0' { b'1' } else { b'0' };
    let bad = String::from_utf8(bad).unwrap();
    assert_eq!(
        request(s3.addr, "GET", &path_of(&bad, s3.addr), &[], &[]).status,
        403
    );
    let bare = seg.split('?').next().unwrap();
    assert_eq!(
        request(s3.addr, "GET", &path_of(bare, s3.addr), &[], &[]).status,
        403
    );
    // Keys are never in a presigned URL, and the bucket keeps them private.
    assert!(!media.contains(".key?X-Amz"), "{media}");
    let key_object = format!("/hlsd/signed/{id}/keys/");
    assert!(!media.contains(&key_object));
}

#[test]
fn presigned_urls_expire_with_the_playback_token() {
    let s3 = S3Server::start();
    let (a, id) = signed_node_with_video(&s3, "expiring", &["--playback-token-ttl-secs", "5"], 4);
    let bearer = format!("Bearer {ADMIN}");
    let fresh = request(
        a.addr,
        "POST",
        &format!("/videos/{id}/playback-token"),
        &[("Authorization", &bearer)],
        &[],
    );
    let url = fresh.json()["playback_url"].as_str().unwrap().to_owned();
    let media = a.get(&path_of(&url, a.addr)).text();
    let seg = extinfs(&media)[0].1.clone();
    assert!(seg.contains("X-Amz-Expires="), "{seg}");
    let expires: u64 = seg
        .split("X-Amz-Expires=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&expires), "{seg}");
    // Refused by the S3 server: 403 (AWS, s3s) or 400 (Garage).
    wait_until("the presigned URL to expire", || {
        let r = request(s3.addr, "GET", &path_of(&seg, s3.addr), &[], &[]);
        matches!(r.status, 400 | 403)
    });
    wait_until("the token to expire", || {
        a.get(&path_of(&url, a.addr)).status == 403
    });
    a.get(&path_of(&url, a.addr))
        .assert_error(403, "token_expired");
}

#[test]
fn a_media_base_url_names_segments_under_it() {
    let s3 = S3Server::start();
    let a = s3.start_node(
        "cdn",
        "node-a",
        &["--media-base-url", "https://cdn.example/videos/"],
    );
    let id = upload_ok(&a, &h264_mp4(4, "320x240", true), FAST);
    assert_eq!(a.wait_done(&id)["status"], "ready");
    let top = a.get(&format!("/play/{id}/video.m3u8")).text();
    let media = match top.lines().find(|l| l.ends_with(".m3u8")) {
        Some(variant) => a.get(&format!("/play/{id}/{variant}")).text(),
        None => top,
    };
    lint_playlist("/video.m3u8", &media);
    let segments = extinfs(&media);
    assert!(!segments.is_empty());
    for (_, seg) in segments {
        assert!(
            seg.starts_with(&format!("https://cdn.example/videos/{id}/")),
            "{seg}"
        );
    }
    // Settings that cannot work are refused at start.
    let (code, err) = exit_of(&["--media-base-url", "https://cdn.example/x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--store s3://"), "{err}");
    let signed = [
        "--store",
        "s3://hlsd",
        "--media-base-url",
        "https://cdn.example/x",
        "--signing-key",
        "k3y-0123456789",
        "--api-token",
        ADMIN,
    ];
    let (code, err) = exit_of(&signed);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--media-base-url with --signing-key"), "{err}");
}
