//! Untrusted input: every refusal is a JSON error with the right 4xx, and
//! leaves nothing in storage; broken uploads never take the server down.

use crate::common::*;
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
        "POST /upload HTTP/1.1\r\nHost: localhost\r\n{k}: {v}\r\nContent-Length: {}\r\n\r\n",
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
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        c,
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{k}: {v}\r\nContent-Length: {}\r\n\r\n",
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
        "POST /upload HTTP/1.1\r\nHost: localhost\r\n{k}: {v}\r\nContent-Length: {}\r\n\r\n",
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

/// RFC 2046 makes the CRLF after the closing boundary optional. Without
/// it the file is 2 bytes longer than curl's framing would say: an MP4
/// whose index is at its end still opens, and one whose index is first
/// still transcodes whole.
#[test]
fn a_body_without_the_final_crlf_still_transcodes() {
    let s = Server::start(&[]);
    let base = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "6",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
    ];
    let moov_at_end = index_ends_with_chunk_offsets(&fixture("nocrlf-moov-end.mp4", &base));
    let mut faststart_args = base.to_vec();
    faststart_args.extend(["-movflags", "+faststart"]);
    let faststart = fixture("nocrlf-faststart.mp4", &faststart_args);
    for data in [moov_at_end, faststart] {
        let mut body = multipart("video", "clip.mp4", &data);
        assert!(body.ends_with(b"--\r\n"));
        body.truncate(body.len() - 2);
        let (k, v) = multipart_header();
        let r = send_request(
            s.addr,
            "POST",
            "/upload",
            &[(k, &v)],
            &body,
            Send::Length {
                chunk: 64 * 1024,
                pause: Duration::ZERO,
            },
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let rec = s.wait_done(&id);
        assert_eq!(rec["status"], "ready", "{rec}");
        let d = rec["output"]["duration"].as_f64().unwrap();
        assert!((d - 6.0).abs() < 0.2, "{rec}");
        assert_eq!(rec["output"]["frames"], 180, "{rec}");
        assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
    }
}

/// The boxes of an MP4 byte range: (type, start, size).
fn boxes(d: &[u8], mut at: usize, end: usize) -> Vec<([u8; 4], usize, usize)> {
    let mut out = Vec::new();
    while at + 8 <= end {
        let size = u32::from_be_bytes(d[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = d[at + 4..at + 8].try_into().unwrap();
        out.push((kind, at, size));
        at += size.max(8);
    }
    out
}

/// Rewrites an MP4 whose `moov` is at its end so that the very last bytes
/// of the file are the last track's chunk offsets (`stco`): no `udta`, and
/// `stco` last in its sample table, as many phones write it. Cutting the
/// file's declared size short by even 2 bytes then loses part of the index.
fn index_ends_with_chunk_offsets(mp4: &[u8]) -> Vec<u8> {
    let top = boxes(mp4, 0, mp4.len());
    let &(_, moov, moov_size) = top.iter().find(|b| &b.0 == b"moov").unwrap();
    assert_eq!(moov + moov_size, mp4.len(), "moov must be last");
    let mut body = Vec::new();
    for (kind, at, size) in boxes(mp4, moov + 8, moov + moov_size) {
        if &kind != b"udta" {
            body.extend_from_slice(&mp4[at..at + size]);
        }
    }
    let mut out = mp4[..moov].to_vec();
    out.extend(((body.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(b"moov");
    out.extend(body);
    // Walk down to the last track's stbl and move stco to its end.
    let path: [&[u8; 4]; 4] = [b"trak", b"mdia", b"minf", b"stbl"];
    let (mut at, mut end) = (moov + 8, out.len());
    for kind in path {
        let b = boxes(&out, at, end);
        let &(_, s, size) = b.iter().rfind(|b| &b.0 == kind).unwrap();
        (at, end) = (s + 8, s + size);
    }
    let children = boxes(&out, at, end);
    let mut table = Vec::new();
    for (kind, s, size) in children.iter().filter(|b| &b.0 != b"stco") {
        let _ = kind;
        table.extend_from_slice(&out[*s..*s + *size]);
    }
    let &(_, s, size) = children.iter().find(|b| &b.0 == b"stco").unwrap();
    table.extend_from_slice(&out[s..s + size]);
    out[at..end].copy_from_slice(&table);
    assert!(out.ends_with(&out[out.len() - 4..]));
    out
}
