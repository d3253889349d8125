//! Resumable uploads (tus 1.0 at `/files/`) with a real client,
//! tus-js-client under Node (tests/browser/tus.mjs), and direct upload
//! URLs: uninterrupted, aborted and resumed by a new process, resumed
//! across a SIGKILL of the server; checksums, offsets, expiry,
//! termination, refused media; playback while the upload goes on.

use crate::common::*;
use base64::Engine;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

fn node_ready() -> bool {
    let ok = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser/node_modules/tus-js-client")
        .exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have tests/browser/node_modules (make test-deps installs it)"
        );
        eprintln!("SKIPPED: run `make test-deps` to install tus-js-client");
    }
    ok
}

fn tus_cli() -> Command {
    let mut c = Command::new("node");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/tus.mjs"));
    c.stdout(Stdio::piped()).stderr(Stdio::inherit());
    c
}

/// Runs tus.mjs to its end; returns its JSON line.
fn tus(args: &[&str]) -> serde_json::Value {
    let out = tus_cli().args(args).output().expect("node");
    result_of(&out.stdout)
}

fn result_of(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|_| panic!("no JSON from tus.mjs: {text}"))
}

/// A clip long enough for several segments (12 s, 320×240, with audio).
fn clip() -> PathBuf {
    h264_mp4_path(12, "320x240", true)
}

/// Checks a finished video: ready, 12 s, and the whole stream decodes.
fn assert_ready_and_plays(s: &Server, id: &str) {
    let rec = s.wait_done(id);
    assert_eq!(rec["status"], "ready", "{rec}");
    let d = rec["output"]["duration"].as_f64().unwrap();
    assert!((d - 12.0).abs() < 0.5, "{rec}");
    assert_eq!(rec["upload"]["offset"], rec["upload"]["length"], "{rec}");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

#[test]
fn tus_js_client_uploads_in_256_kib_chunks() {
    if !node_ready() {
        return;
    }
    let s = Server::start(&[]);
    let endpoint = format!("http://{}/files/", s.addr);
    let file = clip();
    let v = tus(&[
        "upload",
        "--endpoint",
        &endpoint,
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(v["ok"], true, "{v}");
    let id = v["id"].as_str().unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    let patches = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| *r == "PATCH 204")
        .count();
    assert_eq!(patches as u64, size.div_ceil(262_144), "{v}");
    // The creation answer names everything at once.
    let c = &v["created"];
    let base = format!("http://{}", s.addr);
    assert_eq!(c["upload_url"], format!("{base}/files/{id}"));
    assert_eq!(c["playback_url"], format!("{base}/play/{id}/video.m3u8"));
    assert_eq!(c["status_url"], format!("{base}/videos/{id}"));
    assert_ready_and_plays(&s, id);
}

#[test]
fn an_aborted_upload_is_resumed_by_a_new_client_process() {
    if !node_ready() {
        return;
    }
    let s = Server::start(&[]);
    let endpoint = format!("http://{}/files/", s.addr);
    let file = clip();
    let f = file.to_str().unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    let half = (size / 2).to_string();
    let first = tus(&[
        "upload",
        "--endpoint",
        &endpoint,
        "--file",
        f,
        "--stop-after",
        &half,
        "--throttle-bytes-per-sec",
        "400000",
    ]);
    assert_eq!(
        (first["ok"].clone(), first["stopped"].clone()),
        (true.into(), true.into()),
        "{first}"
    );
    let url = first["url"].as_str().unwrap();
    // A new process resumes from what the server holds: not 0, not all.
    let second = tus(&["resume", "--upload-url", url, "--file", f]);
    assert_eq!(second["ok"], true, "{second}");
    let at = second["offsetAtStart"].as_u64().unwrap();
    assert!(at > 0 && at < size, "{second}");
    assert_eq!(second["id"], first["id"]);
    assert_ready_and_plays(&s, first["id"].as_str().unwrap());
}

/// The URL tus.mjs writes to its `--url-file`, once it is all there (the
/// file exists, empty, for a moment before it is written).
fn read_url_file(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .filter(|u| u.ends_with('\n'))
}

/// HEADs an upload; returns its `Upload-Offset`.
fn head_offset(addr: std::net::SocketAddr, id: &str) -> Option<u64> {
    let r = request(addr, "HEAD", &format!("/files/{id}"), &[TUS], &[]);
    (r.status == 200).then(|| r.header("upload-offset")?.parse().ok())?
}

#[test]
fn an_upload_goes_on_after_the_server_is_killed_and_restarted() {
    if !node_ready() {
        return;
    }
    // A process: it is killed.
    let mut s = Server::process(&[]);
    let endpoint = format!("http://{}/files/", s.addr);
    let file = clip();
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("url");
    // A slow client that retries for over a minute when the server is gone.
    let child = tus_cli()
        .args([
            "upload",
            "--endpoint",
            &endpoint,
            "--file",
            file.to_str().unwrap(),
        ])
        .args(["--throttle-bytes-per-sec", "150000", "--url-file"])
        .arg(&url_file)
        .args([
            "--retry-delays",
            "500,1000,1000,2000,2000,5000,5000,10000,10000,10000,10000,10000",
        ])
        .spawn()
        .unwrap();
    let url = wait_for("the upload URL", || read_url_file(&url_file));
    let id = url.trim().rsplit('/').next().unwrap().to_owned();
    wait_until("a first durable chunk", || {
        head_offset(s.addr, &id).is_some_and(|o| o >= 262_144)
    });
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(
        head_offset(s.addr, &id).unwrap() < size,
        "the upload ended before the crash"
    );
    s.crash();
    s.restart_same_port(&[]);
    // What HEAD answers after the crash is what the spool really holds.
    let told = head_offset(s.addr, &id).unwrap();
    let spool = s.storage.path().join(&id).join("source");
    assert!(std::fs::metadata(&spool).unwrap().len() >= told);
    let out = child.wait_with_output().unwrap();
    let v = result_of(&out.stdout);
    assert_eq!(v["ok"], true, "{v}");
    assert_ready_and_plays(&s, &id);
}

fn create(addr: std::net::SocketAddr, length: u64, extra: &[(&str, &str)]) -> (String, Response) {
    let len = length.to_string();
    let mut h = vec![TUS, ("Upload-Length", len.as_str())];
    h.extend_from_slice(extra);
    let r = request(addr, "POST", "/files", &h, &[]);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    (id, r)
}

fn patch(
    addr: std::net::SocketAddr,
    id: &str,
    offset: u64,
    body: &[u8],
    extra: &[(&str, &str)],
) -> Response {
    let off = offset.to_string();
    let mut h = vec![TUS, OCTETS, ("Upload-Offset", off.as_str())];
    h.extend_from_slice(extra);
    request(addr, "PATCH", &format!("/files/{id}"), &h, body)
}

fn digest(algo: &str, data: &[u8]) -> String {
    use sha2::Digest;
    let d = match algo {
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        _ => sha2::Sha256::digest(data).to_vec(),
    };
    format!(
        "{algo} {}",
        base64::engine::general_purpose::STANDARD.encode(d)
    )
}

#[test]
fn checksums_offsets_versions_and_termination() {
    let s = Server::start(&[]);
    let data = std::fs::read(clip()).unwrap();
    let (id, created) = create(s.addr, data.len() as u64, &[]);
    assert_eq!(
        created.header("location"),
        Some(format!("/files/{id}").as_str())
    );
    assert!(created.header("upload-expires").is_some());
    let (a, b) = data.split_at(300_000);
    // A chunk that does not match its checksum: 460, nothing kept.
    let wrong = digest("sha1", b"something else");
    patch(s.addr, &id, 0, a, &[("Upload-Checksum", &wrong)]).assert_error(460, "checksum_mismatch");
    assert_eq!(head_offset(s.addr, &id), Some(0));
    let r = patch(
        s.addr,
        &id,
        0,
        a,
        &[("Upload-Checksum", &digest("sha1", a))],
    );
    assert_eq!(
        (r.status, r.header("upload-offset")),
        (204, Some("300000")),
        "{}",
        r.text()
    );
    // The wrong offset: 409; no version: 412; another body type: 415;
    // an unknown algorithm: 400.
    patch(s.addr, &id, 0, b, &[]).assert_error(409, "offset_mismatch");
    let off = "300000";
    let r = request(
        s.addr,
        "PATCH",
        &format!("/files/{id}"),
        &[OCTETS, ("Upload-Offset", off)],
        b,
    );
    r.assert_error(412, "unsupported_version");
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    let r = request(
        s.addr,
        "PATCH",
        &format!("/files/{id}"),
        &[TUS, ("Upload-Offset", off), ("Content-Type", "video/mp4")],
        b,
    );
    r.assert_error(415, "unsupported_content_type");
    patch(s.addr, &id, 300_000, b, &[("Upload-Checksum", "md5 AAAA")])
        .assert_error(400, "bad_request");
    assert_eq!(head_offset(s.addr, &id), Some(300_000));
    let r = patch(
        s.addr,
        &id,
        300_000,
        b,
        &[("Upload-Checksum", &digest("sha256", b))],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));
    assert_ready_and_plays(&s, &id);
    // Termination removes everything.
    let r = request(s.addr, "DELETE", &format!("/files/{id}"), &[TUS], &[]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        request(s.addr, "HEAD", &format!("/files/{id}"), &[TUS], &[]).status,
        404
    );
    s.assert_storage_empty_soon();
}

#[test]
fn discovery_creation_with_upload_and_deferred_length() {
    let s = Server::start(&["--max-upload-bytes", "100000000"]);
    let r = request(s.addr, "OPTIONS", "/files", &[], &[]);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    assert_eq!(r.header("tus-max-size"), Some("100000000"));
    assert_eq!(r.header("tus-checksum-algorithm"), Some("sha1,sha256"));
    let ext = r.header("tus-extension").unwrap();
    for e in [
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "expiration",
        "checksum",
    ] {
        assert!(ext.split(',').any(|x| x == e), "{ext}");
    }
    let data = std::fs::read(clip()).unwrap();
    // Too large for the server: refused before a byte.
    let big = "100000001";
    let r = request(
        s.addr,
        "POST",
        "/files",
        &[TUS, ("Upload-Length", big)],
        &[],
    );
    r.assert_error(413, "too_large");
    // Creation with the first bytes; the length said only at the end.
    let meta = format!(
        "filename {},title {}",
        base64::engine::general_purpose::STANDARD.encode("holiday.mp4"),
        base64::engine::general_purpose::STANDARD.encode("Our holiday")
    );
    let h = [
        TUS,
        OCTETS,
        ("Upload-Defer-Length", "1"),
        ("Upload-Metadata", meta.as_str()),
    ];
    let r = request(s.addr, "POST", "/files", &h, &data[..200_000]);
    assert_eq!(
        (r.status, r.header("upload-offset")),
        (201, Some("200000")),
        "{}",
        r.text()
    );
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let head = request(s.addr, "HEAD", &format!("/files/{id}"), &[TUS], &[]);
    assert_eq!(head.header("upload-defer-length"), Some("1"));
    assert_eq!(head.header("cache-control"), Some("no-store"));
    assert_eq!(head.header("upload-metadata"), Some(meta.as_str()));
    let len = data.len().to_string();
    let r = patch(
        s.addr,
        &id,
        200_000,
        &data[200_000..],
        &[("Upload-Length", &len)],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_ready_and_plays(&s, &id);
    let rec = s.get(&format!("/videos/{id}")).json();
    assert_eq!(
        (rec["title"].as_str(), rec["file_name"].as_str()),
        (Some("Our holiday"), Some("holiday.mp4"))
    );
}

#[test]
fn an_abandoned_upload_expires_and_is_removed() {
    let s = Server::start(&["--upload-expiry-secs", "2"]);
    let data = std::fs::read(clip()).unwrap();
    let (id, _) = create(s.addr, data.len() as u64, &[]);
    assert_eq!(patch(s.addr, &id, 0, &data[..100_000], &[]).status, 204);
    wait_until("the upload to expire", || {
        let r = request(s.addr, "HEAD", &format!("/files/{id}"), &[TUS], &[]);
        r.status == 410 || r.status == 404
    });
    s.assert_storage_empty_soon();
    // The record goes after the files (the removal's last step).
    wait_until("the record to go", || {
        s.get(&format!("/videos/{id}")).status == 404
    });
    patch(s.addr, &id, 100_000, &data[100_000..], &[]).assert_error(404, "not_found");
}

#[test]
fn a_chunk_that_is_not_video_fails_the_upload_and_removes_it() {
    let s = Server::start(&[]);
    let junk: Vec<u8> = (0..600_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (id, _) = create(s.addr, 1_200_000, &[]);
    // The probe decides while the bytes come: on the first chunk, or at
    // the latest when the upload is complete.
    let mut r = patch(s.addr, &id, 0, &junk, &[]);
    if r.status == 204 {
        r = patch(s.addr, &id, 600_000, &junk, &[]);
    }
    r.assert_error(415, "unsupported_media");
    assert_eq!(
        request(s.addr, "HEAD", &format!("/files/{id}"), &[TUS], &[]).status,
        404
    );
    s.assert_storage_empty_soon();
}

#[test]
fn the_playback_url_plays_while_a_throttled_upload_goes_on() {
    if !node_ready() {
        return;
    }
    let s = Server::start(&["--segment-seconds", "2"]);
    let endpoint = format!("http://{}/files/", s.addr);
    let file = clip();
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("url");
    let child: Child = tus_cli()
        .args([
            "upload",
            "--endpoint",
            &endpoint,
            "--file",
            file.to_str().unwrap(),
        ])
        .args(["--throttle-bytes-per-sec", "60000", "--url-file"])
        .arg(&url_file)
        .spawn()
        .unwrap();
    let url = wait_for("the upload URL", || read_url_file(&url_file));
    let id = url.trim().rsplit('/').next().unwrap().to_owned();
    let playlist = format!("/play/{id}/video.m3u8");
    // Two segments out while the record still says `receiving`: the ffmpeg
    // CLI decodes them.
    let names = wait_for("two segments while receiving", || {
        let names: Vec<String> = extinfs(&s.get(&playlist).text())
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        (names.len() >= 2).then_some(names)
    });
    let rec = s.get(&format!("/videos/{id}")).json();
    assert_eq!(rec["status"], "receiving", "{rec}");
    let seg_dir = tempfile::tempdir().unwrap();
    let joined = seg_dir.path().join("first.ts");
    let mut bytes = Vec::new();
    for n in &names[..2] {
        let r = s.get(&format!("/play/{id}/{n}"));
        assert_eq!(r.status, 200);
        bytes.extend(r.body);
    }
    std::fs::write(&joined, bytes).unwrap();
    assert_eq!(decode_errors(&joined), "");
    let v = result_of(&child.wait_with_output().unwrap().stdout);
    assert_eq!(v["ok"], true, "{v}");
    assert_ready_and_plays(&s, &id);
}

fn direct(s: &Server, token: &str, body: &str) -> Response {
    let auth = format!("Bearer {token}");
    request(
        s.addr,
        "POST",
        "/videos/direct-upload",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

#[test]
fn direct_upload_urls_work_only_for_their_video_size_and_time() {
    if !node_ready() {
        return;
    }
    let token = "a-long-api-token-for-tests";
    let s = Server::start(&["--api-token", token]);
    let file = clip();
    let size = std::fs::metadata(&file).unwrap().len();
    request(s.addr, "POST", "/videos/direct-upload", &[], b"{}").assert_error(401, "unauthorized");
    request(
        s.addr,
        "POST",
        "/files",
        &[TUS, ("Upload-Length", "10")],
        &[],
    )
    .assert_error(401, "unauthorized");
    let r = direct(
        &s,
        token,
        &format!(
            "{{\"title\":\"From a page\",\"max_size_bytes\":{}}}",
            size + 10
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let a = r.json();
    for k in [
        "id",
        "upload_url",
        "playback_url",
        "status_url",
        "expires_at",
    ] {
        assert!(!a[k].is_null(), "{a}");
    }
    let url = a["upload_url"].as_str().unwrap();
    // Without the API token, by the URL alone.
    let v = tus(&[
        "direct",
        "--upload-url",
        url,
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(v["ok"], true, "{v}");
    let id = a["id"].as_str().unwrap();
    let auth = format!("Bearer {token}");
    let rec = wait_for("the direct upload to be ready", || {
        let r = request(
            s.addr,
            "GET",
            &format!("/videos/{id}"),
            &[("Authorization", &auth)],
            &[],
        );
        let v = r.json();
        matches!(v["status"].as_str(), Some("ready" | "failed")).then_some(v)
    });
    assert_eq!(
        (rec["status"].as_str(), rec["title"].as_str()),
        (Some("ready"), Some("From a page")),
        "{rec}"
    );
    assert!(!rec.to_string().contains("secret"), "{rec}");
    // Its token opens no other video.
    let other = direct(&s, token, "{}").json();
    let secret = url.split("token=").nth(1).unwrap();
    let path = format!("/files/{}?token={secret}", other["id"].as_str().unwrap());
    assert_eq!(request(s.addr, "HEAD", &path, &[TUS], &[]).status, 403);
    let r = request(
        s.addr,
        "PATCH",
        &path,
        &[TUS, OCTETS, ("Upload-Offset", "0")],
        &[1, 2, 3],
    );
    r.assert_error(403, "invalid_token");
    // Not beyond its size.
    let small = direct(&s, token, "{\"max_size_bytes\":1000}").json();
    let u = small["upload_url"].as_str().unwrap();
    let p = &u[u.find("/files/").unwrap()..];
    let r = request(
        s.addr,
        "PATCH",
        p,
        &[
            TUS,
            OCTETS,
            ("Upload-Offset", "0"),
            ("Upload-Length", "5000"),
        ],
        &[],
    );
    r.assert_error(413, "too_large");
    let r = request(
        s.addr,
        "PATCH",
        p,
        &[TUS, OCTETS, ("Upload-Offset", "0")],
        &[0u8; 1001],
    );
    r.assert_error(413, "too_large");
    // Not after it expires.
    let brief = direct(&s, token, "{\"expires_in_secs\":1}").json();
    let u = brief["upload_url"].as_str().unwrap();
    let p = u[u.find("/files/").unwrap()..].to_owned();
    wait_until("the URL to expire", || {
        let r = request(s.addr, "HEAD", &p, &[TUS], &[]);
        matches!(r.status, 403 | 404 | 410)
    });
    let r = request(
        s.addr,
        "PATCH",
        &p,
        &[TUS, OCTETS, ("Upload-Offset", "0")],
        &[1, 2, 3],
    );
    assert!(matches!(r.status, 403 | 404 | 410), "{}", r.text());
}

#[test]
fn a_second_patch_cuts_the_one_in_flight_without_corrupting_the_spool() {
    use std::io::Write;
    let s = Server::start(&[]);
    let data = std::fs::read(clip()).unwrap();
    let (id, _) = create(s.addr, data.len() as u64, &[]);
    // A PATCH that sends 100,000 of its 300,000 bytes, then stalls.
    let mut stalled = std::net::TcpStream::connect(s.addr).unwrap();
    stalled.set_read_timeout(Some(DEADLINE)).unwrap();
    let head = format!(
        "PATCH /files/{id} HTTP/1.1\r\nHost: localhost\r\nTus-Resumable: 1.0.0\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n\
         Content-Length: 300000\r\n\r\n"
    );
    stalled.write_all(head.as_bytes()).unwrap();
    stalled.write_all(&data[..100_000]).unwrap();
    let spool = s.storage.path().join(&id).join("source");
    wait_until("the stalled PATCH's bytes in the spool", || {
        std::fs::metadata(&spool).is_ok_and(|m| m.len() == 100_000)
    });
    assert_eq!(head_offset(s.addr, &id), Some(0), "not acknowledged yet");
    // The client retries from 0; the stalled request is cut, keeps what
    // it got, and the retry learns where the bytes really end.
    patch(s.addr, &id, 0, &data[..1000], &[]).assert_error(409, "offset_mismatch");
    let at = head_offset(s.addr, &id).unwrap();
    assert_eq!(at, 100_000);
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stalled, &mut answer);
    assert!(!answer.starts_with("HTTP/1.1 204"), "{answer}");
    let r = patch(s.addr, &id, at, &data[at as usize..], &[]);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_ready_and_plays(&s, &id);
}

#[test]
fn creation_keeps_the_limits_of_post_upload_and_names_the_public_url() {
    let s = Server::start(&[
        "--max-storage-bytes",
        "3000000",
        "--uploads-per-minute",
        "3",
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    // The length is reserved: two uploads cannot both promise most of it.
    let (id, _) = create(s.addr, 2_000_000, &[]);
    let r = request(
        s.addr,
        "POST",
        "/files",
        &[TUS, ("Upload-Length", "2000000")],
        &[],
    );
    r.assert_error(507, "quota_exceeded");
    // Behind a trusted proxy, the Location and URLs are the public ones.
    let fwd = [
        TUS,
        ("Upload-Length", "10"),
        ("X-Forwarded-Host", "video.example.com"),
        ("X-Forwarded-Proto", "https"),
    ];
    let r = request(s.addr, "POST", "/files", &fwd, &[]);
    assert_eq!(r.status, 201, "{}", r.text());
    let other = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.header("location"),
        Some(format!("https://video.example.com/files/{other}").as_str())
    );
    assert_eq!(
        r.json()["playback_url"],
        format!("https://video.example.com/play/{other}/video.m3u8")
    );
    // The per-client creation rate.
    request(
        s.addr,
        "POST",
        "/files",
        &[TUS, ("Upload-Length", "10")],
        &[],
    )
    .assert_error(429, "rate_limited");
    assert_eq!(head_offset(s.addr, &id), Some(0));
}
