//! Hostile clients: upload rate limit, decode caps (frame size, duration,
//! stream count), slowloris, idle-connection floods, the CORS allowlist.

use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn small_clip() -> Vec<u8> {
    h264_mp4(1, "96x64", false)
}

#[test]
fn uploads_are_rate_limited_per_client() {
    let s = Server::start(&["--uploads-per-minute", "2"]);
    for _ in 0..2 {
        upload_ok(&s, &small_clip(), FAST);
    }
    let r = upload(s.addr, &small_clip(), FAST);
    r.assert_error(429, "rate_limited");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
}

#[test]
fn decode_caps_refuse_huge_long_and_many_stream_files_with_nothing_stored() {
    let s = Server::start(&["--max-duration-secs", "3600", "--max-streams", "8"]);
    let huge = fixture(
        "hard-16000.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=gray:s=16000x16000:r=1",
            "-frames:v",
            "1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let long = fixture(
        "hard-10h.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=gray:s=16x16:r=1",
            "-t",
            "36000",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let mut many_args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=96x64:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine",
        "-t",
        "1",
    ];
    many_args.extend(["-map", "0:v"]);
    for _ in 0..12 {
        many_args.extend(["-map", "1:a"]);
    }
    many_args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]);
    let many = fixture("hard-13-streams.mkv", &many_args);
    for (what, data, needle) in [
        ("16000x16000", huge, "pixels"),
        ("10 h", long, "lasts"),
        ("13 streams", many, "streams"),
    ] {
        let r = upload(s.addr, &data, FAST);
        r.assert_error(422, "unprocessable_media");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{what}: {}",
            r.text()
        );
        assert_eq!(
            s.storage_entries(),
            Vec::<String>::new(),
            "{what} left files"
        );
    }
}

#[test]
fn slowloris_is_cut_off_at_the_header_timeout() {
    // One header byte a second, against a 2 s header timeout: the server
    // must close the connection long before the 130-byte head is complete.
    let s = Server::start(&["--header-timeout-secs", "2"]);
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(90)
    );
    let mut sent = 0;
    let closed = 'send: {
        for b in request.bytes() {
            if c.write_all(&[b]).is_err() {
                break 'send true;
            }
            sent += 1;
            // Paces the client (one byte a second), noticing a close.
            let mut buf = [0u8; 512];
            for _ in 0..5 {
                match c.read(&mut buf) {
                    Ok(0) => break 'send true,
                    Ok(_) => {}
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break 'send true,
                }
            }
        }
        false
    };
    assert!(closed, "the slow client was never cut off");
    assert!(
        sent < request.len(),
        "the whole head got through ({sent} bytes)"
    );
}

#[test]
fn two_hundred_idle_connections_do_not_stop_a_real_client() {
    let s = Server::start(&[]);
    // From four other addresses (one address alone is capped at 64).
    let idle: Vec<TcpStream> = (0..200)
        .map(|i| {
            connect_from(
                std::net::Ipv4Addr::new(127, 0, 9, 1 + (i % 4) as u8),
                s.addr,
            )
        })
        .collect();
    let r = s.get("/healthz");
    assert_eq!(r.status, 200);
    let id = upload_ok(&s, &small_clip(), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    drop(idle);
}

#[test]
fn cors_allowlist_answers_only_listed_origins() {
    let s = Server::start(&["--cors-origin", "https://a.example,https://b.example"]);
    // A playback path (CORS belongs to playback), answered even on a 404.
    let play = "/play/AAAAAAAAAAAAAAAAAAAAA/video.m3u8";
    let r = request(s.addr, "GET", play, &[("Origin", "https://b.example")], &[]);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://b.example")
    );
    assert!(r.header("vary").unwrap().contains("Origin"));
    let r = request(
        s.addr,
        "GET",
        play,
        &[("Origin", "https://evil.example")],
        &[],
    );
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = request(s.addr, "GET", play, &[], &[]);
    assert_eq!(r.header("access-control-allow-origin"), None);
    // The default stays the tutorial's `*`, and credentials are never allowed.
    let d = Server::start(&[]);
    let r = request(d.addr, "GET", play, &[("Origin", "https://x.example")], &[]);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-credentials"), None);
}

#[test]
fn an_audio_timestamp_jump_neither_bloats_memory_nor_the_output() {
    // Audio jumps 20,000 s ahead after ~2 s (within the 12 h cap, so the file
    // is accepted): `aresample=async` would fill
    // the gap with silence if such frames were not dropped.
    let data = fixture(
        "hard-audio-jump.mkv",
        &[
            "-f",
            "lavfi",
            "-t",
            "6",
            "-i",
            "testsrc2=size=160x120:rate=30",
            "-f",
            "lavfi",
            "-t",
            "6",
            "-i",
            "sine=sample_rate=48000",
            "-af",
            "asetpts='if(gt(N,100),PTS+20000/TB,PTS)'",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
        ],
    );
    // A process: its peak memory is measured.
    let s = Server::process(&[]);
    let id = upload_ok(&s, &data, FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    let d = rec["output"]["duration"].as_f64().unwrap();
    assert!((d - 6.0).abs() < 0.5, "output lasts {d} s");
    let peak = s.peak_rss_kib() / 1024;
    assert!(peak < 150, "peak RSS {peak} MiB");
}

#[test]
fn a_refused_upload_is_answered_at_once_even_while_the_encoder_is_busy() {
    // One transcode slot, taken by a slow job (veryslow: it surely outlasts
    // the refused upload); then an upload that passes the
    // probe but crosses the size limit must get its 413 now, not after the job.
    let s = Server::start(&[
        "--jobs",
        "1",
        "--x264-preset",
        "veryslow",
        "--max-upload-bytes",
        "2500000",
    ]);
    let busy = fixture(
        "hard-busy-30s.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-t",
            "20",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "35",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ],
    );
    assert!(busy.len() < 2_500_000, "{}", busy.len());
    let busy_id = upload_ok(&s, &busy, FAST);
    let big = fixture(
        "hard-big.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-t",
            "10",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "10",
        ],
    );
    assert!(big.len() > 3_000_000);
    let r = upload(
        s.addr,
        &big,
        Send::Chunked {
            chunk: 64 * 1024,
            pause: Duration::ZERO,
        },
    );
    r.assert_error(413, "too_large");
    // Answered while the busy job still runs, not after it.
    assert_eq!(
        s.get(&format!("/videos/{busy_id}")).json()["status"],
        "processing"
    );
    assert_eq!(s.storage_entries(), [busy_id]);
}

#[test]
fn a_slow_drip_upload_is_cut_off_and_leaves_nothing() {
    // 1 KiB every 200 ms (5 KiB/s), never silent for the idle timeout, but
    // far below the required average once the 2 s grace has passed.
    let s = Server::start(&[
        "--body-idle-timeout-secs",
        "2",
        "--min-upload-bytes-per-sec",
        "50000",
    ]);
    let r = upload(
        s.addr,
        &h264_mp4(8, "320x240", true),
        Send::Length {
            chunk: 1024,
            pause: Duration::from_millis(200),
        },
    );
    r.assert_error(408, "upload_too_slow");
    s.assert_storage_empty_soon();
}
