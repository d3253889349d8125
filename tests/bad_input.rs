//! Untrusted input: every refusal is a JSON error with the right 4xx, and
//! leaves nothing in storage; broken uploads never take the server down.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

fn mp4() -> Vec<u8> {
    h264_mp4(6, "320x240", true)
}

#[test]
fn not_multipart_is_400() {
    let s = Server::start(&[]);
    let r = request(
        s.addr,
        "POST",
        "/upload",
        &[("Content-Type", "application/json")],
        b"{\"video\":1}",
    );
    r.assert_error(400, "not_multipart");
    let r = request(s.addr, "POST", "/upload", &[], b"raw bytes");
    r.assert_error(400, "not_multipart");
    s.assert_storage_empty_soon();
}

#[test]
fn no_file_field_is_400() {
    let s = Server::start(&[]);
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nholiday\r\n--{BOUNDARY}--\r\n"
    );
    let (k, v) = multipart_header();
    let r = request(s.addr, "POST", "/upload", &[(k, &v)], body.as_bytes());
    r.assert_error(400, "no_file");
    s.assert_storage_empty_soon();
}

#[test]
fn a_file_in_another_field_is_accepted() {
    let s = Server::start(&[]);
    let (k, v) = multipart_header();
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nholiday\r\n"
    )
    .into_bytes();
    body.extend(multipart("file", "holiday.mp4", &mp4()));
    let r = request(s.addr, "POST", "/upload", &[(k, &v)], &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready");
    assert_eq!(rec["file_name"], "holiday.mp4");
}

#[test]
fn too_large_is_413_by_length_and_by_stream() {
    let s = Server::start(&["--max-upload-bytes", "100000"]);
    let data = mp4();
    assert!(data.len() > 300_000);
    // Declared too large: refused before the body is read.
    let r = upload(s.addr, &data, FAST);
    r.assert_error(413, "too_large");
    // Chunked: cut off when the limit is crossed.
    let r = upload(
        s.addr,
        &data,
        Send::Chunked {
            chunk: 16 * 1024,
            pause: Duration::ZERO,
        },
    );
    r.assert_error(413, "too_large");
    s.assert_storage_empty_soon();
    // A Content-Length that lies small is caught by the stream count too.
    let r = upload(
        s.addr,
        &data,
        Send::Length {
            chunk: 16 * 1024,
            pause: Duration::ZERO,
        },
    );
    r.assert_error(413, "too_large");
    s.assert_storage_empty_soon();
}

#[test]
fn undecodable_files_are_415_or_422_and_leave_nothing() {
    let s = Server::start(&[]);
    let png = fixture(
        "image.png",
        &["-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1"],
    );
    let audio_only = fixture(
        "audio.m4a",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            "2",
            "-c:a",
            "aac",
        ],
    );
    let mut random = Vec::with_capacity(200_000);
    let mut x: u32 = 12345;
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        random.push((x >> 16) as u8);
    }
    let playlist =
        b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
            .to_vec();
    let concat = b"ffconcat version 1.0\nfile '/etc/passwd'\n".to_vec();
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("empty", Vec::new(), &[415, 422]),
        (
            "text",
            b"hello, this is not a video at all\n".repeat(100),
            &[415],
        ),
        ("png", png, &[415]),
        ("random", random, &[415, 422]),
        ("audio only", audio_only, &[422]),
        ("hls playlist", playlist, &[415]),
        ("concat script", concat, &[415]),
    ];
    for (what, data, statuses) in cases {
        let r = upload(
            s.addr,
            &data,
            Send::Chunked {
                chunk: 8 * 1024,
                pause: Duration::ZERO,
            },
        );
        assert!(
            statuses.contains(&r.status),
            "{what}: {} {}",
            r.status,
            r.text()
        );
        let code = if r.status == 415 {
            "unsupported_media"
        } else {
            "unprocessable_media"
        };
        r.assert_error(r.status, code);
        assert_eq!(
            s.storage_entries(),
            Vec::<String>::new(),
            "{what} left files"
        );
    }
}

#[test]
fn client_disconnect_mid_upload_leaves_nothing() {
    let s = Server::start(&[]);
    let data = mp4();
    let body = multipart("video", "clip.mp4", &data);
    let (k, v) = multipart_header();
    let mut c = TcpStream::connect(s.addr).unwrap();
    write!(
        c,
        "POST /upload HTTP/1.1\r\nHost: x\r\n{k}: {v}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    c.write_all(&body[..body.len() / 2]).unwrap();
    // The server has taken the upload (its folder exists) before we go.
    s.wait_video_folder();
    drop(c);
    s.assert_storage_empty_soon();
    let mut s = s;
    assert!(s.is_alive());
}

#[test]
fn stalled_upload_times_out() {
    let s = Server::start(&["--body-idle-timeout-secs", "1"]);
    let data = mp4();
    let body = multipart("video", "clip.mp4", &data);
    let (k, v) = multipart_header();
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        c,
        "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{k}: {v}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    c.write_all(&body[..body.len() / 3]).unwrap();
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    s.assert_storage_empty_soon();
}

#[test]
fn truncated_file_transcodes_what_it_can_or_fails_clearly() {
    let mut s = Server::start(&[]);
    // A TS file cut in the middle: the upload itself completes normally.
    let ts = fixture(
        "trunc.ts",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-t",
            "8",
            "-c:v",
            "mpeg2video",
            "-f",
            "mpegts",
        ],
    );
    let id = upload_ok(&s, &ts[..ts.len() / 2], FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert!(rec["output"]["duration"].as_f64().unwrap() > 2.0, "{rec}");
    // A faststart MP4 cut in half: its index promises frames that never come.
    let data = mp4();
    let r = upload(s.addr, &data[..data.len() / 2], FAST);
    if r.status == 201 {
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let rec = s.wait_done(&id);
        if rec["status"] == "failed" {
            assert!(
                rec["error"]["message"].as_str().unwrap().len() > 10,
                "{rec}"
            );
        }
    } else {
        assert!([415, 422].contains(&r.status), "{}", r.text());
    }
    // Corrupt bytes in the middle of a file.
    let mut corrupt = data.clone();
    let n = corrupt.len();
    for b in &mut corrupt[n / 3..n / 3 + 20_000] {
        *b = 0x5a;
    }
    let r = upload(s.addr, &corrupt, FAST);
    assert!([201, 415, 422].contains(&r.status), "{}", r.text());
    if r.status == 201 {
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let rec = s.wait_done(&id);
        assert!(
            rec["status"] == "ready" || rec["error"]["message"].is_string(),
            "{rec}"
        );
    }
    assert!(s.is_alive());
}

#[test]
fn busy_server_answers_503() {
    let s = Server::start(&["--max-pending", "1"]);
    let data = mp4();
    let body = multipart("video", "clip.mp4", &data);
    let (k, v) = multipart_header();
    // Hold one upload open, half sent.
    let mut c = TcpStream::connect(s.addr).unwrap();
    write!(
        c,
        "POST /upload HTTP/1.1\r\nHost: x\r\n{k}: {v}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    c.write_all(&body[..1000]).unwrap();
    // The first upload holds the only place once its folder exists.
    s.wait_video_folder();
    let r = upload(s.addr, &data, FAST);
    r.assert_error(503, "busy");
    drop(c);
    s.assert_storage_empty_soon();
}
