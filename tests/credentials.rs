//! Credentials and scopes (issue 26): DNS rebinding refused in every
//! listen mode, a direct upload's URL that grants nothing once its upload
//! is done, one client identity behind a proxy, IPv6 clients counted by
//! their /64, a refusal that reaches a client still sending, and a
//! start-up that says what an open API exposes.

use crate::common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

const TOKEN: &str = "api-token-0123456789abcdef";

/// A request to `addr` with `Host: host` (and `Origin` to match, as a
/// page on that name would send).
fn as_host(addr: SocketAddr, host: &str, method: &str, path: &str, body: &[u8]) -> Response {
    let origin = format!("http://{host}");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    Response {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        headers: head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

/// A page whose DNS name was rebound to the server (its `Host` and its
/// `Origin` agree) can neither write nor list, however the server
/// listens; its own names and playback keep working.
#[test]
fn a_rebound_dns_name_cannot_use_the_api_in_any_listen_mode() {
    for listen in ["127.0.0.1:0", "0.0.0.0:0", "[::1]:0"] {
        if listen.starts_with('[') && std::net::TcpListener::bind("[::1]:0").is_err() {
            eprintln!("SKIPPED [::1]: no IPv6 loopback here");
            continue;
        }
        let mut s = Server::start(&["--listen", listen]);
        // Only loopback is ever spoken to, whatever the server listens on.
        let port = s.addr.port();
        let to = if listen.starts_with('[') {
            SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port))
        } else {
            SocketAddr::from(([127, 0, 0, 1], port))
        };
        s.addr = to;
        let id = upload_ok(&s, &h264_mp4(2, "160x120", false), FAST);
        assert_eq!(s.wait_done(&id)["status"], "ready");
        let evil = format!("evil.example:{port}");
        let title = br#"{"title":"pwned"}"#;
        for (m, path) in [
            ("POST", "/upload".to_owned()),
            ("POST", "/files".to_owned()),
            ("POST", "/videos/direct-upload".to_owned()),
            ("PATCH", format!("/videos/{id}")),
            ("PUT", format!("/videos/{id}/captions/en")),
            ("DELETE", format!("/videos/{id}")),
            ("GET", "/videos".to_owned()),
            ("GET", format!("/videos/{id}")),
            ("GET", "/".to_owned()),
        ] {
            as_host(to, &evil, m, &path, title).assert_error(421, "forbidden_host");
        }
        assert_eq!(s.get(&format!("/videos/{id}")).json()["title"], "clip");
        // Its own names, and playback under any name.
        for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
            let r = as_host(to, &host, "PATCH", &format!("/videos/{id}"), title);
            assert_eq!(r.status, 200, "{listen} {host}: {}", r.text());
        }
        let r = as_host(to, &evil, "GET", &format!("/play/{id}/video.m3u8"), b"");
        assert_eq!(r.status, 200, "{listen}: {}", r.text());
    }
}

/// `--allowed-host` names a server by its DNS name; `*` opts out.
#[test]
fn allowed_hosts_are_answered() {
    let s = Server::start(&["--allowed-host", "videos.lan"]);
    let port = s.addr.port();
    let r = as_host(s.addr, &format!("videos.lan:{port}"), "GET", "/videos", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = as_host(s.addr, &format!("other.lan:{port}"), "GET", "/videos", b"");
    r.assert_error(421, "forbidden_host");
    let open = Server::start(&["--allowed-host", "*"]);
    let r = as_host(open.addr, "other.lan", "GET", "/videos", b"");
    assert_eq!(r.status, 200, "{}", r.text());
}

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

/// A direct upload URL resumes and (while incomplete) terminates its own
/// upload; once the upload is complete it grants nothing, from any origin.
#[test]
fn a_completed_direct_upload_url_grants_nothing() {
    let s = Server::start(&["--api-token", TOKEN]);
    let bearer = format!("Bearer {TOKEN}");
    let auth = ("Authorization", bearer.as_str());
    let data = h264_mp4(2, "160x120", true);
    let r = request(s.addr, "POST", "/videos/direct-upload", &[auth], b"{}");
    assert_eq!(r.status, 201, "{}", r.text());
    let (id, url) = (
        r.json()["id"].as_str().unwrap().to_owned(),
        r.json()["upload_url"].as_str().unwrap().to_owned(),
    );
    let path = url.split_once(&s.addr.to_string()).unwrap().1.to_owned();
    let len = data.len().to_string();
    let head = [TUS, OCTETS, ("Upload-Offset", "0"), ("Upload-Length", &len)];
    let r = request(s.addr, "PATCH", &path, &head, &data);
    assert_eq!(r.status, 204, "{}", r.text());
    wait_until("the video to be ready", || {
        let r = request(s.addr, "GET", &format!("/videos/{id}"), &[auth], b"");
        r.json()["status"] == "ready"
    });
    for origin in [None, Some("https://elsewhere.example")] {
        let mut h = vec![TUS];
        h.extend(origin.map(|o| ("Origin", o)));
        for m in ["DELETE", "HEAD", "PATCH"] {
            let r = request(s.addr, m, &path, &h, b"");
            assert_eq!(r.status, 403, "{m} {origin:?}: {}", r.text());
        }
    }
    assert_eq!(s.get(&format!("/videos/{id}")).status, 401);
    let r = request(s.addr, "GET", &format!("/videos/{id}"), &[auth], b"");
    assert_eq!(r.json()["status"], "ready");
}

/// Uploads (`/upload`) sent as if through a proxy at 127.0.0.1 with
/// `headers`; their statuses.
fn uploads_through_proxy(
    s: &Server,
    n: usize,
    headers: impl Fn(usize) -> Vec<(String, String)>,
) -> Vec<u16> {
    let junk = multipart("video", "a.bin", &[b'j'; 100]);
    let (k, v) = multipart_header();
    (0..n)
        .map(|i| {
            let extra = headers(i);
            let mut h: Vec<(&str, &str)> = vec![(k, &v)];
            h.extend(extra.iter().map(|(a, b)| (a.as_str(), b.as_str())));
            request(s.addr, "POST", "/upload", &h, &junk).status
        })
        .collect()
}

/// Behind a proxy that sets X-Forwarded-For, a client's own `Forwarded`
/// header changes nothing: its uploads stay counted as its own.
#[test]
fn a_clients_own_forwarding_header_does_not_escape_the_rate_limit() {
    let s = Server::start(&["--trusted-proxy", "127.0.0.1", "--uploads-per-minute", "3"]);
    let statuses = uploads_through_proxy(&s, 9, |i| {
        vec![
            ("Forwarded".into(), format!("for=1.2.3.{i}")),
            ("X-Forwarded-For".into(), "203.0.113.5".into()),
        ]
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        6,
        "{statuses:?}"
    );
    // With --client-ip-header forwarded, Forwarded is the one that counts.
    let f = Server::start(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--uploads-per-minute",
        "3",
        "--client-ip-header",
        "forwarded",
    ]);
    let statuses = uploads_through_proxy(&f, 6, |i| {
        vec![("Forwarded".into(), format!("for=1.2.3.{i}"))]
    });
    assert!(!statuses.contains(&429), "{statuses:?}");
}

/// Nine addresses of one IPv6 /64 are one client.
#[test]
fn one_ipv6_slash_64_is_one_client() {
    let s = Server::start(&["--trusted-proxy", "127.0.0.1", "--uploads-per-minute", "3"]);
    let statuses = uploads_through_proxy(&s, 9, |i| {
        vec![(
            "X-Forwarded-For".into(),
            format!("2001:db8:7:7:{i:x}::{i:x}"),
        )]
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        6,
        "{statuses:?}"
    );
    let other = uploads_through_proxy(&s, 1, |_| {
        vec![("X-Forwarded-For".into(), "2001:db8:7:8::1".into())]
    });
    assert_ne!(other, [429]);
}

/// Sends a 24 MiB upload (with `Content-Length`, or chunked) to a server
/// that refuses anything over 1 MB; whether every write went through, and
/// the answer.
fn refused_while_sending(s: &Server, chunked: bool) -> (bool, String) {
    let (k, v) = multipart_header();
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    let part = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"a\"\r\n\r\n"
    );
    let size = match chunked {
        true => "Transfer-Encoding: chunked".to_owned(),
        false => format!("Content-Length: {}", part.len() + (24 << 20)),
    };
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{k}: {v}\r\n{size}\r\n\r\n"
    );
    c.write_all(head.as_bytes()).unwrap();
    let frame = |c: &mut TcpStream, data: &[u8]| match chunked {
        true => {
            c.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
            c.write_all(data)?;
            c.write_all(b"\r\n")
        }
        false => c.write_all(data),
    };
    let mut all = frame(&mut c, part.as_bytes()).is_ok();
    let chunk = vec![b'z'; 1 << 20];
    for _ in 0..24 {
        all &= frame(&mut c, &chunk).is_ok();
    }
    if chunked {
        all &= c.write_all(b"0\r\n\r\n").is_ok();
    }
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    (all, String::from_utf8_lossy(&answer).into_owned())
}

/// A body refused while the client is still sending it: the server reads
/// on (and drops) what comes after its answer, so the client's writes go
/// through and it reads the answer, instead of a reset that can lose it
/// (with `Content-Length` the refusal comes before the body; chunked, once
/// a megabyte has come).
#[test]
fn a_refusal_reaches_a_client_still_sending() {
    let s = Server::start(&["--max-upload-bytes", "1000000"]);
    for chunked in [false, true] {
        let (all, answer) = refused_while_sending(&s, chunked);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("too_large"), "{answer}");
        assert!(
            all,
            "chunked {chunked}: the server reset the connection while the body came"
        );
    }
}

/// An open API listening beyond loopback says so: first in the log, and
/// in `/readyz`.
#[test]
fn an_open_api_says_what_it_exposes() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let storage = tempfile::tempdir().unwrap();
    let s = Server::process_full(storage, &["--listen", "0.0.0.0:0"], vec![], log.path());
    let to = SocketAddr::from(([127, 0, 0, 1], s.addr.port()));
    let r = request(to, "GET", "/readyz", &[], &[]);
    let detail = r.json()["checks"]["api_access"]["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("the API is open") && detail.contains("0.0.0.0"),
        "{detail}"
    );
    // The log is written by its own thread: wait for its first line.
    let first = wait_for("the log's first line", || {
        let text = std::fs::read_to_string(log.path()).unwrap();
        text.contains('\n')
            .then(|| text.lines().next().unwrap_or_default().to_owned())
    });
    assert!(first.contains("the API is open"), "{first}");
    let closed = Server::start(&["--listen", "0.0.0.0:0", "--api-token", TOKEN]);
    let to = SocketAddr::from(([127, 0, 0, 1], closed.addr.port()));
    let r = request(to, "GET", "/readyz", &[], &[]);
    let detail = r.json()["checks"]["api_access"]["detail"].to_string();
    assert!(!detail.contains("open"), "{detail}");
}
