//! Secure and bounded by default: cross-site access, configurations that
//! protect nothing, form fields and part headers, slow bodies, the
//! encoder's slot, connections, proxies, concurrent probes. Each test
//! fails on a server that lacks its protection.

use crate::common::*;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::time::Duration;

fn clip() -> Vec<u8> {
    h264_mp4(2, "160x120", true)
}

fn origin_request(s: &Server, method: &str, path: &str, origin: &str, body: &[u8]) -> Response {
    request(s.addr, method, path, &[("Origin", origin)], body)
}

#[test]
fn the_api_answers_no_foreign_origin_and_playback_stays_open() {
    let s = Server::start(&[]);
    let id = upload_ok(&s, &clip(), FAST);
    s.wait_done(&id);
    let evil = "https://evil.example";
    // The preflight a page needs before it may DELETE: no allow headers.
    let r = request(
        s.addr,
        "OPTIONS",
        &format!("/videos/{id}"),
        &[
            ("Origin", evil),
            ("Access-Control-Request-Method", "DELETE"),
        ],
        &[],
    );
    assert_eq!(r.status, 204);
    for h in [
        "access-control-allow-origin",
        "access-control-allow-methods",
    ] {
        assert_eq!(r.header(h), None, "{h}");
    }
    // Reads of the library carry no CORS grant either.
    for path in [
        "/videos".to_string(),
        format!("/videos/{id}"),
        "/metrics".into(),
    ] {
        let r = origin_request(&s, "GET", &path, evil, &[]);
        assert_eq!(r.header("access-control-allow-origin"), None, "{path}");
    }
    // Playback keeps the tutorial's `*`.
    let r = origin_request(&s, "GET", &format!("/play/{id}/video.m3u8"), evil, &[]);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // A listed origin gets the API.
    let app = "https://app.example";
    let s = Server::start(&["--api-cors-origin", app]);
    let r = request(
        s.addr,
        "OPTIONS",
        "/videos",
        &[("Origin", app), ("Access-Control-Request-Method", "PATCH")],
        &[],
    );
    assert_eq!(r.header("access-control-allow-origin"), Some(app));
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("PATCH"));
    let r = origin_request(&s, "GET", "/videos", app, &[]);
    assert_eq!(r.header("access-control-allow-origin"), Some(app));
    assert!(r.header("vary").unwrap().contains("Origin"));
}

#[test]
fn writes_from_another_origin_are_refused() {
    let s = Server::start(&["--api-cors-origin", "https://app.example"]);
    let id = upload_ok(&s, &clip(), FAST);
    s.wait_done(&id);
    let (k, v) = multipart_header();
    let body = multipart("video", "a.mp4", &clip());
    for origin in [
        "https://evil.example",
        "null",
        "http://127.0.0.1.evil.example",
    ] {
        let r = request(
            s.addr,
            "POST",
            "/upload",
            &[(k, &v), ("Origin", origin)],
            &body,
        );
        r.assert_error(403, "forbidden_origin");
        for (m, path) in [
            ("PATCH", format!("/videos/{id}")),
            ("DELETE", format!("/videos/{id}")),
            ("POST", format!("/videos/{id}/playback-token")),
        ] {
            origin_request(&s, m, &path, origin, b"{\"title\":\"x\"}")
                .assert_error(403, "forbidden_origin");
        }
    }
    assert_eq!(s.storage_entries(), std::slice::from_ref(&id));
    // The server's own origin (the embedded UI), a listed one, and no
    // Origin at all (curl, scripts) may write.
    let own = format!("http://{}", s.addr);
    for origin in [own.as_str(), "https://app.example"] {
        let r = request(
            s.addr,
            "POST",
            "/upload",
            &[(k, &v), ("Origin", origin)],
            &body,
        );
        assert_eq!(r.status, 201, "{origin}: {}", r.text());
        let r = origin_request(
            &s,
            "PATCH",
            &format!("/videos/{id}"),
            origin,
            b"{\"title\":\"ok\"}",
        );
        assert_eq!(r.status, 200, "{origin}: {}", r.text());
    }
}

#[test]
fn configurations_that_protect_nothing_are_refused_at_start() {
    let empty_key = tempfile::NamedTempFile::new().unwrap();
    let key_file = empty_key.path().to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--signing-key", "a-real-signing-key"],
            "signing protects nothing",
        ),
        (&["--signing-key", ""], "signing key is empty"),
        (
            &[
                "--signing-key-file",
                key_file,
                "--api-token",
                "0123456789abcdef",
            ],
            "signing key is empty",
        ),
        (&["--api-token", "short"], "too easy to guess"),
        (
            &["--playback-token-ttl-secs", "0"],
            "--playback-token-ttl-secs",
        ),
        (
            &["--playback-token-ttl-secs", "18446744073709551615"],
            "--playback-token-ttl-secs",
        ),
    ];
    for (args, says) in cases {
        let (code, err) = exit_of(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // Asked for explicitly, it runs (and says why it should not).
    let log = tempfile::NamedTempFile::new().unwrap();
    let s = Server::process_logged(
        &["--signing-key", "a-real-signing-key", "--allow-open-api"],
        log.path(),
    );
    assert_eq!(s.get("/healthz").status, 200);
    // The log is written by its own thread: wait for the warning.
    wait_until("the warning in the log", || {
        std::fs::read_to_string(log.path())
            .unwrap()
            .contains("signing protects nothing")
    });
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let token = "0123456789abcdef0123";
    let s = Server::start(&["--api-token", token]);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("{scheme} {token}");
        let r = request(s.addr, "GET", "/videos", &[("Authorization", &auth)], &[]);
        assert_eq!(r.status, 200, "{scheme}");
    }
    request(
        s.addr,
        "GET",
        "/videos",
        &[("Authorization", &format!("Basic {token}"))],
        &[],
    )
    .assert_error(401, "unauthorized");
}

/// A form whose first part is `field` with `value`, then the clip.
fn form_with(field: &str, value: &[u8]) -> Vec<u8> {
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n")
            .into_bytes();
    body.extend_from_slice(value);
    body.extend_from_slice(b"\r\n");
    body.extend(multipart("video", "a.mp4", &clip()));
    body
}

#[test]
fn every_form_field_and_part_header_is_bounded() {
    let s = Server::start(&[]);
    let (k, v) = multipart_header();
    let send = |body: &[u8]| request(s.addr, "POST", "/upload", &[(k, &v)], body);
    // A few KiB per field: an `encrypt`, a `title`, an unknown field.
    for field in ["encrypt", "title", "anything"] {
        send(&form_with(field, &vec![b'1'; 5000])).assert_error(413, "too_large");
    }
    // Many small fields: 64 KiB in all.
    let mut body = Vec::new();
    for i in 0..40 {
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\n{}\r\n",
                "x".repeat(3000)
            )
            .into_bytes(),
        );
    }
    body.extend(multipart("video", "a.mp4", &clip()));
    send(&body).assert_error(413, "too_large");
    // A part header that never ends, and a preamble that never ends.
    let mut endless =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"x\"; ").into_bytes();
    endless.extend(vec![b'a'; 200_000]);
    send(&endless).assert_error(413, "too_large");
    send(&vec![b'p'; 200_000]).assert_error(413, "too_large");
    s.assert_storage_empty_soon();
    // Small fields are read, and honoured.
    let mut body = form_with("title", b"Holiday at sea");
    let mut enc = form_with("encrypt", b"1");
    enc.truncate(enc.len() - multipart("video", "a.mp4", &clip()).len());
    body.splice(0..0, enc);
    let r = send(&body);
    assert_eq!(r.status, 201, "{}", r.text());
    let rec = s
        .get(&format!("/videos/{}", r.json()["id"].as_str().unwrap()))
        .json();
    assert_eq!(
        (rec["title"].as_str(), rec["encrypted"].as_bool()),
        (Some("Holiday at sea"), Some(true))
    );
}

#[test]
fn a_drip_into_a_text_field_is_cut_for_its_rate() {
    let s = Server::start(&[
        "--body-idle-timeout-secs",
        "2",
        "--min-upload-bytes-per-sec",
        "1000",
    ]);
    let (k, v) = multipart_header();
    let body = form_with("title", b"a title that takes its time");
    let r = send_request(
        s.addr,
        "POST",
        "/upload",
        &[(k, &v)],
        &body,
        Send::Length {
            chunk: 1,
            pause: Duration::from_millis(300),
        },
    );
    r.assert_error(408, "upload_too_slow");
    s.assert_storage_empty_soon();
}

#[test]
fn a_slow_upload_does_not_hold_the_only_transcode_slot() {
    let s = Server::start(&["--jobs", "1"]);
    // A long upload, half sent and held there (a client on a slow link).
    let slow = h264_mp4(20, "320x240", true);
    let held = PartialUpload::start(s.addr, &slow, slow.len() / 2);
    let slow_id = s.wait_video_folder();
    s.wait_record(&slow_id, "the slow upload's job to start", |v| {
        v["renditions"].as_array().is_some_and(|r| !r.is_empty())
    });
    // A complete upload becomes ready while the slow one still arrives.
    let id = upload_ok(&s, &clip(), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    assert_eq!(
        s.get(&format!("/videos/{slow_id}")).json()["status"],
        "receiving"
    );
    let r = held.finish();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(s.wait_done(&slow_id)["status"], "ready");
}

/// A clip whose one copied segment is large (a noisy H.264 source): a
/// client that never reads it fills the socket buffers.
fn big_segment_clip() -> Vec<u8> {
    fixture(
        "sec-big-noise.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30,noise=alls=60:allf=t+u",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "1",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ],
    )
}

#[test]
fn one_address_cannot_exhaust_connections_and_stalled_readers_are_dropped() {
    let s = Server::start(&["--send-timeout-secs", "2", "--ladder", "source"]);
    let data = big_segment_clip();
    assert!(data.len() > 20 << 20, "{}", data.len());
    let id = upload_ok(&s, &data, FAST);
    assert_eq!(s.wait_done(&id)["copied"], true);
    let seg = extinfs(&s.get(&format!("/play/{id}/video.m3u8")).text())[0]
        .1
        .clone();
    let get = format!("GET /play/{id}/{seg} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    // 300 connections from one address, each asking for the segment and
    // never reading it.
    let stuck: Vec<_> = (0..300)
        .map(|_| {
            let mut c = connect_from(Ipv4Addr::new(127, 0, 0, 2), s.addr);
            let _ = c.write_all(get.as_bytes());
            c
        })
        .collect();
    // Another client is served at once.
    assert_eq!(s.get("/healthz").status, 200);
    let open = metrics_of(&s)["hlsd_active_connections"];
    assert!(open <= 64.0 + 1.0, "{open} connections open");
    // The ones that never read lose their connections.
    wait_until("stalled readers to be dropped", || {
        metrics_of(&s)["hlsd_active_connections"] <= 1.0
    });
    drop(stuck);
}

#[test]
fn behind_a_trusted_proxy_the_rate_limit_is_per_client() {
    let via = |s: &Server, client: &str| {
        let (k, v) = multipart_header();
        request(
            s.addr,
            "POST",
            "/upload",
            &[(k, &v), ("X-Forwarded-For", client)],
            &multipart("video", "a.mp4", &clip()),
        )
    };
    let s = Server::start(&[
        "--uploads-per-minute",
        "1",
        "--trusted-proxy",
        "127.0.0.0/8",
    ]);
    assert_eq!(via(&s, "198.51.100.1").status, 201);
    assert_eq!(via(&s, "198.51.100.2").status, 201);
    via(&s, "198.51.100.1").assert_error(429, "rate_limited");
    // A forged hop on the left does not help.
    via(&s, "203.0.113.9, 198.51.100.1").assert_error(429, "rate_limited");
    // Without a trusted proxy the headers mean nothing.
    let s = Server::start(&["--uploads-per-minute", "1"]);
    assert_eq!(via(&s, "198.51.100.1").status, 201);
    via(&s, "198.51.100.2").assert_error(429, "rate_limited");
}

#[test]
fn concurrent_readiness_probes_all_succeed() {
    let s = Server::start(&[]);
    let addr = s.addr;
    let probes: Vec<_> = (0..40)
        .map(|_| std::thread::spawn(move || request(addr, "GET", "/readyz", &[], &[])))
        .collect();
    for p in probes {
        let r = p.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(!s.storage_entries().iter().any(|e| e.contains("readyz")));
}

#[test]
fn event_streams_do_not_hold_connection_places() {
    let s = Server::start(&["--max-connections", "8", "--max-event-streams", "20"]);
    let id = upload_ok(&s, &clip(), FAST);
    s.wait_done(&id);
    // Twelve open event streams on an 8-connection server.
    let streams: Vec<_> = (0..12)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(s.addr).unwrap();
            c.set_read_timeout(Some(DEADLINE)).unwrap();
            write!(
                c,
                "GET /videos/{id}/events HTTP/1.1\r\nHost: localhost\r\n\r\n"
            )
            .unwrap();
            let mut head = [0u8; 12];
            c.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200");
            c
        })
        .collect();
    assert_eq!(s.get("/healthz").status, 200);
    drop(streams);
}
