//! Every attack of the security list at once against one server with its
//! default flags; afterwards it must still serve, play, and have stayed
//! within 300 MiB of memory (peak RSS read from /proc).

use crate::common::*;
use std::io::Write;
use std::net::Ipv4Addr;
use std::thread;
use std::time::Duration;

fn clip() -> Vec<u8> {
    h264_mp4(2, "160x120", true)
}

/// Streams `total` bytes of `fill` after `head` on one connection, as fast
/// as the server takes them; returns the status line it got, if any.
fn flood(s: &Server, from: Ipv4Addr, head: String, fill: u8, total: usize) -> Option<String> {
    let mut c = connect_from(from, s.addr);
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    let (k, v) = multipart_header();
    let req = format!(
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{k}: {v}\r\nContent-Length: {}\r\n\r\n{head}",
        head.len() + total
    );
    c.write_all(req.as_bytes()).ok()?;
    let chunk = vec![fill; 1 << 20];
    let mut sent = 0;
    while sent < total && c.write_all(&chunk).is_ok() {
        sent += chunk.len();
    }
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut out);
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .map(str::to_owned)
}

#[test]
fn every_attack_at_once_leaves_the_server_healthy_and_bounded() {
    let s = std::sync::Arc::new(Server::process(&[]));
    let id = upload_ok(&s, &h264_mp4(6, "640x360", true), FAST);
    s.wait_done(&id);
    let seg = extinfs(&s.get(&format!("/play/{id}/video.m3u8")).text())[0]
        .1
        .clone();
    let mut attacks = Vec::new();
    // A 1.5 GB `encrypt` field, a part header and a preamble that never end.
    for (i, head) in [
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"encrypt\"\r\n\r\n"),
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"video\"; "),
        String::new(),
    ]
    .into_iter()
    .enumerate()
    {
        let s = s.clone();
        attacks.push(thread::spawn(move || {
            let line = flood(
                &s,
                Ipv4Addr::new(127, 0, 1, i as u8 + 1),
                head,
                b'1',
                1536 << 20,
            );
            // The answer arrives: the server reads on after refusing
            // (bounded) instead of resetting the connection under it.
            assert!(line.as_ref().is_some_and(|l| l.contains("413")), "{line:?}");
        }));
    }
    // A drip into a text field, one byte every 2 s (cut at the default
    // idle timeout + minimum rate, after a minute or two).
    {
        let s = s.clone();
        attacks.push(thread::spawn(move || {
            let mut c = connect_from(Ipv4Addr::new(127, 0, 2, 1), s.addr);
            c.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            let (k, v) = multipart_header();
            let _ = write!(c, "POST /upload HTTP/1.1\r\nHost: localhost\r\n{k}: {v}\r\nContent-Length: 100000\r\n\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n");
            let mut out = Vec::new();
            let mut cut = false;
            for _ in 0..200 {
                if c.write_all(b"x").is_err() {
                    cut = true;
                    break;
                }
                let mut buf = [0u8; 4096];
                match std::io::Read::read(&mut c, &mut buf) {
                    Ok(0) => {
                        cut = true;
                        break;
                    }
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        thread::sleep(Duration::from_millis(1900))
                    }
                    Err(_) => {
                        cut = true;
                        break;
                    }
                }
            }
            // Cut (not left to drip for ever), and told why.
            let text = String::from_utf8_lossy(&out);
            assert!(cut && text.contains("408"), "cut {cut}: {text}");
        }));
    }
    // 300 connections from one address that never read a segment; 200
    // that never finish their headers.
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut c = connect_from(Ipv4Addr::new(127, 0, 3, 1), s.addr);
        let _ = write!(
            c,
            "GET /play/{id}/{seg} HTTP/1.1\r\nHost: localhost\r\n\r\n"
        );
        held.push(c);
    }
    for _ in 0..200 {
        let mut c = connect_from(Ipv4Addr::new(127, 0, 4, 1), s.addr);
        let _ = c.write_all(b"GET /healthz HTTP/1.1\r\nHo");
        held.push(c);
    }
    // Forged proxy headers do not escape the upload rate limit.
    let junk = vec![b'j'; 1000];
    let (k, v) = multipart_header();
    let mut statuses = Vec::new();
    for i in 0..31 {
        let forged = format!("198.51.100.{i}");
        let mut c = connect_from(Ipv4Addr::new(127, 0, 5, 1), s.addr);
        c.set_read_timeout(Some(DEADLINE)).unwrap();
        let body = multipart("video", "a.bin", &junk);
        let _ = write!(c, "POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Forwarded-For: {forged}\r\nForwarded: for={forged}\r\n{k}: {v}\r\nContent-Length: {}\r\n\r\n", body.len());
        let _ = c.write_all(&body);
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut c, &mut out);
        statuses.push(out.lines().next().unwrap_or("").to_owned());
    }
    assert!(
        statuses[..30].iter().all(|l| l.contains("415")),
        "{statuses:?}"
    );
    assert!(statuses[30].contains("429"), "{statuses:?}");
    // Cross-site management.
    let r = request(
        s.addr,
        "DELETE",
        &format!("/videos/{id}"),
        &[("Origin", "https://evil.example")],
        &[],
    );
    r.assert_error(403, "forbidden_origin");
    // While all of that goes on, a real client is served and an upload plays.
    assert_eq!(s.get("/healthz").status, 200);
    let fresh = upload_ok(&s, &clip(), FAST);
    assert_eq!(s.wait_done(&fresh)["status"], "ready");
    assert_cli_plays(&format!("http://{}/play/{fresh}/video.m3u8", s.addr));
    for a in attacks {
        a.join().unwrap();
    }
    drop(held);
    assert_eq!(s.get("/healthz").status, 200);
    assert_eq!(s.get(&format!("/videos/{id}")).json()["status"], "ready");
    let peak = s.peak_rss_kib() / 1024;
    eprintln!("peak RSS after the attacks: {peak} MiB");
    assert!(peak < 300, "peak RSS {peak} MiB");
}
