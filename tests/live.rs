//! Live broadcasts (issue 27): lives as resources, RTMP publishers pushed
//! with the ffmpeg CLI, the growing playlist while live, the broadcast
//! kept as a VOD, and every refusal of the RTMP door.

use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const RTMP: &[&str] = &["--rtmp-listen", "127.0.0.1:0"];
const BOTH: &[&str] = &[
    "--rtmp-listen",
    "127.0.0.1:0",
    "--srt-listen",
    "127.0.0.1:0",
];

/// `POST /lives` with `body`; the live's JSON.
pub(crate) fn new_live(s: &Server, body: &str) -> serde_json::Value {
    let json = [("Content-Type", "application/json")];
    let r = request(s.addr, "POST", "/lives", &json, body.as_bytes());
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

pub(crate) fn live(s: &Server, id: &str) -> serde_json::Value {
    let r = s.get(&format!("/lives/{id}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// What a push sends.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Streams {
    Both,
    VideoOnly,
    AudioOnly,
}

/// The ffmpeg CLI pushing `secs` of testsrc2 (640×360, 30 fps, a
/// keyframe every 2 s) and a sine to `url` in real time (`-re`): FLV
/// over RTMP, MPEG-TS over SRT.
pub(crate) fn push(url: &str, secs: u32, streams: Streams, extra: &[&str]) -> Child {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-nostdin", "-loglevel", "error"]);
    if streams != Streams::AudioOnly {
        c.args(["-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"]);
    }
    if streams != Streams::VideoOnly {
        c.args([
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
        ]);
    }
    c.args(["-t", &secs.to_string()]);
    if streams != Streams::AudioOnly {
        c.args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
        ]);
    }
    if streams != Streams::VideoOnly {
        c.args(["-c:a", "aac", "-b:a", "96k"]);
    }
    let format = if url.starts_with("srt://") {
        "mpegts"
    } else {
        "flv"
    };
    c.args(extra).args(["-f", format, url]);
    c.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg")
}

/// Waits for a push to end; true when ffmpeg succeeded.
pub(crate) fn finished(mut ff: Child) -> bool {
    let status = wait_for("the ffmpeg push to end", || ff.try_wait().unwrap());
    status.success()
}

/// The media playlist of the live's first variant (the master's first
/// `STREAM-INF`, or `video.m3u8` itself when it is one), once it exists.
pub(crate) fn media_playlist(s: &Server, id: &str) -> Option<String> {
    let r = s.get(&format!("/play/{id}/video.m3u8"));
    if r.status != 200 {
        return None;
    }
    let text = r.text();
    if !text.contains("#EXT-X-STREAM-INF") {
        return Some(text);
    }
    let uri = text
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let r = s.get(&format!("/play/{id}/{uri}"));
    (r.status == 200).then(|| r.text())
}

pub(crate) fn segments(playlist: &str) -> usize {
    playlist.matches("#EXTINF").count()
}

#[test]
fn a_broadcast_plays_while_live_and_is_kept_as_a_video() {
    let hooks = crate::common::hooks::Receiver::start(true);
    let secret = [
        "--webhook-url",
        &hooks.url,
        "--webhook-secret",
        "whsec-live-test-0123456789",
    ];
    let s = Server::start(&[RTMP, &secret[..]].concat());
    let l = new_live(&s, r#"{"title":"Show","record":true,"latency":"normal"}"#);
    let id = l["id"].as_str().unwrap().to_owned();
    assert_eq!(l["status"], "live");
    assert_eq!(l["publishing"], false);
    assert_eq!(l["title"], "Show");
    let key = l["stream_key"].as_str().unwrap();
    assert!(key.len() >= 32, "{l}");
    let url = l["rtmp_url"].as_str().unwrap();
    assert!(url.starts_with("rtmp://127.0.0.1:") && url.ends_with(&format!("/live/{key}")));
    assert_eq!(
        l["playback_url"],
        format!("http://{}/play/{id}/video.m3u8", s.addr)
    );
    // The key is the live's secret: the video's own JSON never shows it.
    let video = s.get(&format!("/videos/{id}")).text();
    assert!(!video.contains(key), "{video}");
    assert!(s.get("/lives").text().contains(&id));

    let ff = push(url, 10, Streams::Both, &[]);
    // While it arrives, the playlist grows (a strict parser reads each
    // fetch) and says it is not over.
    let growing = wait_for("the live playlist to hold 2 segments", || {
        media_playlist(&s, &id).filter(|p| segments(p) >= 2)
    });
    assert!(growing.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{growing}");
    assert!(!growing.contains("#EXT-X-ENDLIST"), "{growing}");
    let now = live(&s, &id);
    assert_eq!(now["status"], "live", "{now}");
    assert_eq!(now["publishing"], true, "{now}");
    let metrics = s.get("/metrics").text();
    assert!(metrics.contains("\nhlsd_lives_publishing 1\n"), "{metrics}");
    assert!(metrics.contains("\nhlsd_lives 1\n"), "{metrics}");

    assert!(finished(ff), "the push failed");
    let done = s.wait_done(&id);
    assert_eq!(done["status"], "ready", "{done}");
    let secs = done["output"]["duration"].as_f64().unwrap();
    assert!((8.0..=12.0).contains(&secs), "pushed 10 s, kept {secs} s");
    assert_eq!(live(&s, &id)["publishing"], false);
    let vod = media_playlist(&s, &id).unwrap();
    assert!(vod.contains("#EXT-X-ENDLIST"), "{vod}");
    let playback = format!("http://{}/play/{id}/video.m3u8", s.addr);
    assert_cli_plays(&playback);
    // Decoded independently: the whole broadcast, ±1 segment.
    let probed = ffprobe(std::path::Path::new(&playback), &["-show_format"]);
    let decoded: f64 = probed["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((8.0..=12.0).contains(&decoded), "{probed}");
    let metrics = s.get("/metrics").text();
    assert!(metrics.contains("\nhlsd_lives_publishing 0\n"), "{metrics}");
    let ingest = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hlsd_live_ingest_bytes_total "))
        .unwrap();
    assert!(ingest.parse::<u64>().unwrap() > 100_000, "{ingest}");
    // Webhooks: started, ended, then ready, each once with its stable id.
    for kind in ["video.created", "live.started", "live.ended", "video.ready"] {
        let want = format!("{id}-{kind}");
        wait_for(&format!("{want} delivered"), || {
            hooks.hits().into_iter().find(|h| {
                h.answered == 200 && h.json_opt().is_some_and(|j| j["id"] == want.as_str())
            })
        });
    }
    // Ended: its key opens nothing any more.
    assert!(!finished(push(url, 2, Streams::Both, &[])));
}

#[test]
fn wrong_keys_no_key_other_apps_and_a_second_publisher_are_refused() {
    let s = Server::start(RTMP);
    let l = new_live(&s, "");
    let id = l["id"].as_str().unwrap().to_owned();
    let url = l["rtmp_url"].as_str().unwrap().to_owned();
    let server = l["rtmp_server"].as_str().unwrap().to_owned();
    let key = l["stream_key"].as_str().unwrap().to_owned();
    for bad in [
        format!("{server}/not-the-key"),
        format!("{server}/"),
        url.replace("/live/", "/other/"),
    ] {
        assert!(
            !finished(push(&bad, 2, Streams::Both, &[])),
            "{bad} was let in"
        );
    }
    assert_eq!(s.storage_entries(), vec![id.clone()]);
    assert_eq!(live(&s, &id)["publishing"], false);

    let mut first = push(&url, 60, Streams::Both, &[]);
    wait_until("the first publisher to be on", || {
        live(&s, &id)["publishing"] == true
    });
    assert!(
        !finished(push(&url, 2, Streams::Both, &[])),
        "a second publisher was let in"
    );
    assert_eq!(live(&s, &id)["publishing"], true);
    wait_until("a segment", || {
        media_playlist(&s, &id).is_some_and(|p| segments(&p) >= 1)
    });
    // The publisher is cut (mid-GOP): what came is kept.
    first.kill().unwrap();
    first.wait().unwrap();
    let done = s.wait_done(&id);
    assert_eq!(done["status"], "ready", "{done}");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
    assert!(!key.is_empty());
}

/// Reads until the server closes the connection; the bytes it sent.
fn read_to_close(mut c: TcpStream) -> Vec<u8> {
    c.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
}

fn rtmp_addr(l: &serde_json::Value) -> std::net::SocketAddr {
    let server = l["rtmp_server"].as_str().unwrap();
    server["rtmp://".len()..]
        .trim_end_matches("/live")
        .parse()
        .unwrap()
}

/// RTMP's C0 (version 3) and C1 (time, zero, 1528 bytes).
fn c0_c1() -> Vec<u8> {
    let mut b = vec![3u8];
    b.extend_from_slice(&[0u8; 1536]);
    b
}

#[test]
fn garbage_and_half_handshakes_are_closed_and_cost_nothing() {
    let s = Server::start(RTMP);
    let l = new_live(&s, "");
    let addr = rtmp_addr(&l);
    // Not RTMP at all.
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    read_to_close(c);
    // Random bytes after a valid C0.
    let mut c = TcpStream::connect(addr).unwrap();
    let mut junk = c0_c1();
    junk.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    c.write_all(&junk).unwrap();
    read_to_close(c);
    // Half a handshake, then silence: closed by the handshake timeout.
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(&c0_c1()).unwrap();
    let answered = read_to_close(c);
    assert_eq!(answered.len(), 1 + 1536 + 1536, "S0, S1 and S2 come first");
    // A connection that says nothing at all.
    read_to_close(TcpStream::connect(addr).unwrap());
    assert_eq!(s.get("/healthz").status, 200);
    // The door still works.
    let id = l["id"].as_str().unwrap();
    assert!(finished(push(
        l["rtmp_url"].as_str().unwrap(),
        3,
        Streams::Both,
        &[]
    )));
    assert_eq!(s.wait_done(id)["status"], "ready");
}

#[test]
fn a_client_that_fails_keys_is_closed_before_its_handshake() {
    let s = Server::start(RTMP);
    let l = new_live(&s, "");
    let server = l["rtmp_server"].as_str().unwrap();
    for i in 0..5 {
        assert!(!finished(push(
            &format!("{server}/wrong-{i}"),
            1,
            Streams::Both,
            &[]
        )));
    }
    let mut c = TcpStream::connect(rtmp_addr(&l)).unwrap();
    let _ = c.write_all(&c0_c1());
    assert!(
        read_to_close(c).is_empty(),
        "a limited client got a handshake"
    );
    // Even its right key now (the other clients are not concerned).
    assert!(!finished(push(
        l["rtmp_url"].as_str().unwrap(),
        1,
        Streams::Both,
        &[]
    )));
}

#[test]
fn a_stream_without_video_is_refused_and_one_without_audio_is_kept() {
    let s = Server::start(RTMP);
    let l = new_live(&s, "");
    let id = l["id"].as_str().unwrap().to_owned();
    let url = l["rtmp_url"].as_str().unwrap().to_owned();
    let _ = finished(push(&url, 3, Streams::AudioOnly, &[]));
    // Refused by the probe: nothing of it stays, the live awaits.
    wait_until("the refused broadcast to be gone", || {
        let v = live(&s, &id);
        v["publishing"] == false && !s.storage.path().join(&id).join("source").exists()
    });
    let v = live(&s, &id);
    assert_eq!(v["status"], "live", "{v}");
    assert_eq!(v["renditions"], serde_json::json!([]), "{v}");

    assert!(finished(push(&url, 4, Streams::VideoOnly, &[])));
    let done = s.wait_done(&id);
    assert_eq!(done["status"], "ready", "{done}");
    assert!(done["output"]["audio_codec"].is_null(), "{done}");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

#[test]
fn a_publisher_above_the_bit_rate_cap_is_cut() {
    let s = Server::start(&["--rtmp-listen", "127.0.0.1:0", "--live-max-kbps", "200"]);
    let l = new_live(&s, "");
    let id = l["id"].as_str().unwrap().to_owned();
    // Lossless testsrc2: megabits a second.
    let heavy = ["-qp", "0"];
    let url = l["rtmp_url"].as_str().unwrap();
    assert!(!finished(push(url, 60, Streams::Both, &heavy)), "not cut");
    wait_until("the publisher to be gone", || {
        live(&s, &id)["publishing"] == false
    });
    assert_eq!(s.get("/healthz").status, 200);
}

#[test]
fn deleting_a_live_cuts_its_publisher_and_leaves_nothing() {
    let s = Server::start(RTMP);
    let l = new_live(&s, "");
    let id = l["id"].as_str().unwrap().to_owned();
    let ff = push(l["rtmp_url"].as_str().unwrap(), 60, Streams::Both, &[]);
    wait_until("a segment", || {
        media_playlist(&s, &id).is_some_and(|p| segments(&p) >= 1)
    });
    let r = request(s.addr, "DELETE", &format!("/lives/{id}"), &[], &[]);
    assert!(matches!(r.status, 200 | 202 | 204), "{}", r.text());
    assert!(!finished(ff), "the publisher went on");
    s.assert_storage_empty_soon();
    assert_eq!(s.get(&format!("/lives/{id}")).status, 404);
    assert_eq!(s.get(&format!("/videos/{id}")).status, 404);
}

#[test]
fn a_reset_key_opens_the_live_and_the_old_one_nothing() {
    let s = Server::start(RTMP);
    let l = new_live(&s, "");
    let id = l["id"].as_str().unwrap().to_owned();
    let old = l["rtmp_url"].as_str().unwrap().to_owned();
    let r = request(s.addr, "POST", &format!("/lives/{id}/reset-key"), &[], &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let new = r.json()["rtmp_url"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(!finished(push(&old, 2, Streams::Both, &[])));
    assert!(finished(push(&new, 3, Streams::Both, &[])));
    assert_eq!(s.wait_done(&id)["status"], "ready");
    // A live's routes are the API's, and only lives are lives.
    let open = Server::start(&[
        "--rtmp-listen",
        "127.0.0.1:0",
        "--api-token",
        "0123456789abcdef0123456789abcdef",
    ]);
    assert_eq!(request(open.addr, "POST", "/lives", &[], b"").status, 401);
    assert_eq!(s.get(&format!("/lives/{}", "A".repeat(21))).status, 404);
    let plain = Server::start(&[]);
    assert_eq!(request(plain.addr, "POST", "/lives", &[], b"").status, 409);
}

#[test]
fn a_broadcast_cut_by_a_crash_is_kept_at_the_next_start() {
    let mut s = Server::process(RTMP);
    let l = new_live(&s, "");
    let id = l["id"].as_str().unwrap().to_owned();
    let ff = push(l["rtmp_url"].as_str().unwrap(), 60, Streams::Both, &[]);
    wait_until("two segments", || {
        media_playlist(&s, &id).is_some_and(|p| segments(&p) >= 2)
    });
    s.crash();
    let _ = finished(ff);
    s.restart(RTMP);
    let done = s.wait_done(&id);
    assert_eq!(done["status"], "ready", "{done}");
    assert!(
        done["output"]["duration"].as_f64().unwrap() >= 2.0,
        "{done}"
    );
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

/// The SRT URL of live `l` with another stream id.
fn srt_with(l: &serde_json::Value, stream_id: &str) -> String {
    let url = l["srt_url"].as_str().unwrap();
    let base = url.split('?').next().unwrap();
    format!("{base}?streamid={stream_id}")
}

#[test]
fn a_broadcast_pushed_over_srt_is_checked_in_the_handshake_and_kept() {
    let s = Server::start(BOTH);
    let l = new_live(&s, "");
    let id = l["id"].as_str().unwrap().to_owned();
    let key = l["stream_key"].as_str().unwrap().to_owned();
    let url = l["srt_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("srt://127.0.0.1:"), "{url}");
    assert!(
        url.ends_with(&format!("?streamid=#!::r=live/{key},m=publish")),
        "{url}"
    );
    for bad in [
        srt_with(&l, "#!::r=live/wrong,m=publish"),
        srt_with(&l, &format!("#!::r=live/{key},m=request")),
        url.split('?').next().unwrap().to_owned(),
    ] {
        assert!(
            !finished(push(&bad, 2, Streams::Both, &[])),
            "{bad} was let in"
        );
    }
    assert_eq!(s.storage_entries(), vec![id.clone()]);
    // Garbage datagrams cost nothing.
    let addr = url["srt://".len()..].split('?').next().unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..64u8 {
        udp.send_to(&[i; 64], addr).unwrap();
    }

    let first = push(&url, 8, Streams::Both, &[]);
    wait_until("the SRT publisher to be on", || {
        live(&s, &id)["publishing"] == true
    });
    // The same live over RTMP meanwhile: a second publisher, refused.
    assert!(!finished(push(
        l["rtmp_url"].as_str().unwrap(),
        2,
        Streams::Both,
        &[]
    )));
    let growing = wait_for("the live playlist to grow", || {
        media_playlist(&s, &id).filter(|p| segments(p) >= 2)
    });
    assert!(!growing.contains("#EXT-X-ENDLIST"), "{growing}");
    assert!(finished(first), "the SRT push failed");
    let done = s.wait_done(&id);
    assert_eq!(done["status"], "ready", "{done}");
    let secs = done["output"]["duration"].as_f64().unwrap();
    assert!((6.0..=10.0).contains(&secs), "pushed 8 s, kept {secs} s");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

/// The seconds a media playlist holds.
fn seconds(playlist: &str) -> f64 {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse::<f64>().unwrap())
        .sum()
}

/// Every media playlist of video `id` (variants and renditions): its URI
/// and the start (seconds) of each segment after `EXT-X-DISCONTINUITY`.
fn discontinuities(s: &Server, id: &str) -> Vec<(String, Vec<f64>)> {
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    let mut uris: Vec<String> = master
        .lines()
        .filter_map(|l| match l.starts_with('#') {
            false => Some(l.to_owned()),
            true => l
                .split("URI=\"")
                .nth(1)
                .map(|u| u.split('"').next().unwrap().to_owned()),
        })
        .filter(|u| !u.contains("iframes"))
        .collect();
    if !master.contains("#EXT-X-STREAM-INF") {
        uris = vec!["video.m3u8".to_owned()];
    }
    uris.into_iter()
        .map(|uri| {
            let text = s.get(&format!("/play/{id}/{uri}")).text();
            let (mut at, mut cut, mut starts) = (0.0, false, Vec::new());
            for l in text.lines() {
                if l == "#EXT-X-DISCONTINUITY" {
                    cut = true;
                } else if let Some(d) = l.strip_prefix("#EXTINF:") {
                    if std::mem::take(&mut cut) {
                        starts.push(at);
                    }
                    at += d.trim_end_matches(',').parse::<f64>().unwrap();
                }
            }
            (uri, starts)
        })
        .collect()
}

/// A publisher cut (kill -9) and back within the reconnect window
/// continues the same video, over RTMP and over SRT: every playlist
/// starts a segment where it came back, after `EXT-X-DISCONTINUITY`, on
/// the grid of cuts (`grid` seconds: a segment, or a part at low latency).
fn reconnect_continues(door: &str, body: &str, grid: f64, flags: &[&str]) {
    let s = Server::start(&[BOTH, flags].concat());
    let l = new_live(&s, body);
    let id = l["id"].as_str().unwrap().to_owned();
    let url = l[door].as_str().unwrap().to_owned();
    let mut first = push(&url, 60, Streams::Both, &[]);
    let before = wait_for("two segments before the cut", || {
        media_playlist(&s, &id).filter(|p| segments(p) >= 2)
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let cut = seconds(&before);
    // Back at once (the window is 10 s), and this time it stops by
    // itself. Until the server sees the first one gone (an SRT link is
    // lost only after its silence), the key is taken: the publisher
    // retries, as OBS does.
    wait_until("the reconnect to be let in and pushed whole", || {
        finished(push(&url, 4, Streams::Both, &[]))
    });
    let done = s.wait_done(&id);
    assert_eq!(done["status"], "ready", "{done}");
    let secs = done["output"]["duration"].as_f64().unwrap();
    assert!(secs >= cut + 3.0, "{cut} s before the cut, {secs} s kept");
    assert_eq!(s.storage_entries(), vec![id.clone()], "one video");
    let vod = media_playlist(&s, &id).unwrap();
    assert!(vod.contains("#EXT-X-ENDLIST"), "{vod}");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
    let cuts = discontinuities(&s, &id);
    assert!(cuts.len() >= 2, "{cuts:?}");
    let at = cuts[0].1.first().copied().unwrap_or(-1.0);
    for (uri, starts) in &cuts {
        assert_eq!(starts.len(), 1, "{uri}: {cuts:?}");
        assert!((starts[0] - at).abs() < 0.05, "{uri}: {cuts:?}");
    }
    assert!(at >= cut - 0.1, "{cut} s before the cut; {cuts:?}");
    let off_grid = (at / grid - (at / grid).round()).abs() * grid;
    assert!(off_grid < 0.01, "not on the {grid} s grid: {cuts:?}");
}

#[test]
fn an_rtmp_publisher_back_within_the_window_continues_the_same_video() {
    reconnect_continues("rtmp_url", r#"{"ladder":"360,240"}"#, 2.0, &[]);
}

#[test]
fn an_srt_publisher_back_within_the_window_continues_the_same_video() {
    reconnect_continues("srt_url", r#"{"ladder":"360,240"}"#, 2.0, &[]);
}

/// A live kept nowhere whose publisher came back: its window shows the
/// tag, then, once that segment slid out, counts it in
/// `EXT-X-DISCONTINUITY-SEQUENCE` (every playlist strictly parsed).
#[test]
fn a_sliding_window_counts_the_discontinuities_it_slid_past() {
    let s = Server::start(&["--rtmp-listen", "127.0.0.1:0", "--live-window-secs", "6"]);
    let l = new_live(&s, r#"{"record":false}"#);
    let id = l["id"].as_str().unwrap().to_owned();
    let url = l["rtmp_url"].as_str().unwrap().to_owned();
    let mut first = push(&url, 60, Streams::Both, &[]);
    wait_for("two segments before the cut", || {
        media_playlist(&s, &id).filter(|p| segments(p) >= 2)
    });
    first.kill().unwrap();
    first.wait().unwrap();
    wait_until("the broadcast to await its publisher", || {
        live(&s, &id)["publishing"] == false
    });
    // Until the server sees the first one gone, the key is taken: retry.
    let mut back = (0..20)
        .find_map(|_| {
            let mut c = push(&url, 30, Streams::Both, &[]);
            let on = wait_for("the publisher back, or refused", || {
                if live(&s, &id)["publishing"] == true {
                    return Some(true);
                }
                c.try_wait().unwrap().map(|_| false)
            });
            on.then_some(c)
        })
        .expect("the publisher let in again");
    let shown = wait_for("the window to show the discontinuity", || {
        media_playlist(&s, &id).filter(|p| p.contains("#EXT-X-DISCONTINUITY\n"))
    });
    assert!(!shown.contains("#EXT-X-DISCONTINUITY-SEQUENCE"), "{shown}");
    let slid = wait_for("the discontinuity to slide out", || {
        media_playlist(&s, &id).filter(|p| p.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"))
    });
    assert!(!slid.contains("#EXT-X-DISCONTINUITY\n"), "{slid}");
    back.kill().unwrap();
    back.wait().unwrap();
}

#[test]
fn a_low_latency_publisher_back_continues_after_a_discontinuity() {
    reconnect_continues(
        "rtmp_url",
        r#"{"latency":"low","ladder":"360,240"}"#,
        0.2,
        &[],
    );
}

/// The same, encrypted: the segment the publisher's return closes early
/// and the one it opens are each under their own key (the CLI decrypts
/// and decodes the kept video whole).
#[test]
fn an_encrypted_low_latency_publisher_back_continues_after_a_discontinuity() {
    let body = r#"{"latency":"low","ladder":"360,240"}"#;
    reconnect_continues("rtmp_url", body, 0.2, &["--encrypt"]);
}

/// A publisher back within the window with another picture size: the
/// broadcast ends at the cut (kept, decoding cleanly at its own size:
/// before, the copied rung went on with the new stream and decoded with
/// errors), and the new stream is cut at its first configuration.
fn other_parameters_end_the_broadcast(door: &str) {
    let s = Server::start(BOTH);
    let l = new_live(&s, "");
    let id = l["id"].as_str().unwrap().to_owned();
    let url = l[door].as_str().unwrap().to_owned();
    let mut first = push(&url, 60, Streams::Both, &[]);
    wait_for("two segments before the cut", || {
        media_playlist(&s, &id).filter(|p| segments(p) >= 2)
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let cut = |s: &Server| {
        let m = s.get("/metrics").text();
        m.lines()
            .find_map(|l| l.strip_prefix("hlsd_lives_cut_total "))
            .map_or(0, |v| v.trim().parse::<u64>().unwrap())
    };
    // Let in as the same publisher back (tried until the server has seen
    // the first one gone), then cut at its new configuration.
    wait_until("the new stream to be let in and cut", || {
        let _ = finished(push(&url, 4, Streams::Both, &["-s", "320x180"]));
        cut(&s) == 1
    });
    let done = s.wait_done(&id);
    assert_eq!(done["status"], "ready", "{done}");
    let url = format!("http://{}/play/{id}/video.m3u8", s.addr);
    assert_eq!(decode_errors(Path::new(&url)), "", "{done}");
    assert_eq!(ffprobe_size(&url), (640, 360));
}

#[test]
fn an_rtmp_publisher_back_with_other_parameters_ends_the_broadcast_cleanly() {
    other_parameters_end_the_broadcast("rtmp_url");
}

#[test]
fn an_srt_publisher_back_with_other_parameters_ends_the_broadcast_cleanly() {
    other_parameters_end_the_broadcast("srt_url");
}

/// Width and height of the first video stream of `input`.
fn ffprobe_size(input: &str) -> (u64, u64) {
    let v = ffprobe(
        Path::new(input),
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
        ],
    );
    let s = &v["streams"][0];
    (s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap())
}

/// `secs` of testsrc2 + sine as MPEG-TS, its timestamps from the start.
fn ts_file(dir: &std::path::Path, name: &str, secs: u32) -> Vec<u8> {
    let path = dir.join(name);
    let ok = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t",
            &secs.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args([
            "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts",
        ])
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::fs::read(path).unwrap()
}

/// Sends `bytes` as an SRT publisher of `stream_id` would (1316-byte
/// packets, paced), then closes.
fn srt_send(addr: &str, stream_id: &str, bytes: &[u8]) {
    use futures_util::SinkExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut sock = srt_tokio::SrtSocket::builder()
            .call(addr, Some(stream_id))
            .await
            .expect("the SRT publisher was let in");
        for (i, chunk) in bytes.chunks(1316).enumerate() {
            let packet = (
                std::time::Instant::now(),
                bytes::Bytes::copy_from_slice(chunk),
            );
            sock.send(packet).await.unwrap();
            if i % 8 == 7 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        sock.close().await.unwrap();
    });
}

#[test]
fn timestamps_jumping_backwards_leave_a_playable_video() {
    let s = Server::start(&["--srt-listen", "127.0.0.1:0", "--live-reconnect-secs", "0"]);
    let l = new_live(&s, "");
    let id = l["id"].as_str().unwrap().to_owned();
    let key = l["stream_key"].as_str().unwrap();
    let url = l["srt_url"].as_str().unwrap();
    let addr = url["srt://".len()..].split('?').next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A publisher whose muxer restarted: its clock goes back 4 s, twice.
    let a = ts_file(dir.path(), "a.ts", 4);
    let b = ts_file(dir.path(), "b.ts", 4);
    srt_send(
        addr,
        &format!("#!::r=live/{key},m=publish"),
        &[&a[..], &b, &a].concat(),
    );
    let done = s.wait_done(&id);
    assert_eq!(done["status"], "ready", "{done}");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
    assert_eq!(s.get("/healthz").status, 200);
}

#[test]
fn a_live_is_signed_encrypted_and_takes_its_own_ladder() {
    const TOKEN: &str = "live-api-token-0123456789abcdef";
    let s = Server::start(&[
        "--rtmp-listen",
        "127.0.0.1:0",
        "--encrypt",
        "--signing-key",
        "live-signing-key-0123456789",
        "--api-token",
        TOKEN,
    ]);
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    assert_eq!(request(s.addr, "POST", "/lives", &[], b"{}").status, 401);
    let r = request(s.addr, "POST", "/lives", &auth, br#"{"ladder":"200"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    let l = r.json();
    let id = l["id"].as_str().unwrap().to_owned();
    let playback = l["playback_url"].as_str().unwrap().to_owned();
    assert!(playback.contains("token="), "{playback}");
    assert_eq!(s.get(&format!("/play/{id}/video.m3u8")).status, 403);
    assert!(finished(push(
        l["rtmp_url"].as_str().unwrap(),
        4,
        Streams::Both,
        &[]
    )));
    let done = wait_for("the live to be ready", || {
        let v = request(s.addr, "GET", &format!("/videos/{id}"), &auth, b"").json();
        (v["status"] == "ready" || v["status"] == "failed").then_some(v)
    });
    assert_eq!(done["status"], "ready", "{done}");
    // Its ladder: 200p encoded (beside the source's own packets, copied
    // into their rendition as with --ladder 200; the server's auto ladder
    // has no 200p).
    let encoded: Vec<u64> = done["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["copied"] != true)
        .map(|r| r["height"].as_u64().unwrap())
        .collect();
    assert_eq!(encoded, vec![200], "{done}");
    let (_, token) = playback.split_once('?').unwrap();
    let media = s.get(&format!("/play/{id}/200p/video.m3u8?{token}")).text();
    assert!(media.contains("#EXT-X-KEY:METHOD=AES-128"), "{media}");
    assert_cli_plays(&playback);
}

/// A live kept nowhere holds a bounded spool: the broadcast (about 7.8 MB
/// in 30 s) sends more than `--max-upload-bytes` (3 MB) and is not cut,
/// the spool on disk staying under it (its past let go, a hole punched).
#[test]
fn a_live_kept_nowhere_slides_its_window_and_leaves_nothing() {
    const CAP: u64 = 3_000_000;
    let s = Server::start(&[
        "--rtmp-listen",
        "127.0.0.1:0",
        "--live-window-secs",
        "6",
        "--max-upload-bytes",
        &CAP.to_string(),
    ]);
    let l = new_live(&s, r#"{"record":false}"#);
    assert_eq!(l["record"], false, "{l}");
    let id = l["id"].as_str().unwrap().to_owned();
    let ff = push(l["rtmp_url"].as_str().unwrap(), 30, Streams::Both, &[]);
    // A live playlist (no type) whose window slides: the sequence moves
    // on, at most the window's segments (and a partial one) are listed.
    let sliding = wait_for("the window to slide", || {
        let p = media_playlist(&s, &id)?;
        let seq: u64 = p
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?
            .parse()
            .ok()?;
        (seq >= 7).then_some(p)
    });
    assert!(!sliding.contains("#EXT-X-PLAYLIST-TYPE"), "{sliding}");
    assert!(!sliding.contains("#EXT-X-ENDLIST"), "{sliding}");
    let listed = segments(&sliding);
    assert!((3..=4).contains(&listed), "{sliding}");
    // What left the window (and its grace of 3) is gone from the store,
    // while the broadcast goes on: its first segment.
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    let rung = master
        .lines()
        .find(|l| l.ends_with(".m3u8"))
        .map_or("", |u| {
            u.trim_end_matches("video.m3u8").trim_end_matches('/')
        });
    let seg = sliding.lines().find(|l| l.ends_with(".ts")).unwrap();
    let digits = seg
        .trim_end_matches(".ts")
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .count();
    let stem = &seg[..seg.len() - 3 - digits];
    let oldest = s
        .storage
        .path()
        .join(&id)
        .join(rung)
        .join(format!("{stem}{}.ts", "0".repeat(digits)));
    wait_until("the oldest segment to go while live", || {
        let gone = !oldest.exists();
        let v = live(&s, &id);
        gone && v["publishing"] == true && v["status"] == "live"
    });
    let spool = s.storage.path().join(&id).join("source");
    wait_until("more sent than the limit, less held on disk", || {
        use std::os::unix::fs::MetadataExt;
        let sent = s.get(&format!("/videos/{id}")).json()["bytes_received"]
            .as_u64()
            .unwrap_or(0);
        let held = std::fs::metadata(&spool).map_or(u64::MAX, |m| m.blocks() * 512);
        assert!(held < CAP || sent == 0, "{held} bytes held on disk");
        sent > CAP + 1_000_000
    });
    assert!(finished(ff), "the push failed (cut at the size limit?)");
    // Ended: nothing kept, the live gone with it.
    wait_until("the live to be gone", || {
        s.get(&format!("/videos/{id}")).status == 404
    });
    assert_eq!(s.get(&format!("/lives/{id}")).status, 404);
    s.assert_storage_empty_soon();
}

/// A live kept nowhere whose copied rung gives up at a damaged packet
/// (ffmpeg's `noise` filter, deterministic: about 22 s in) after its spool
/// let go of its start: the copy's second pass, starting over, reads the
/// head (FLV header and configurations) then what was kept, and its
/// segments come and decode. Before the head held no frame, that pass
/// published nothing.
#[test]
fn a_live_kept_nowhere_falls_back_from_its_copy_after_letting_go() {
    use std::os::unix::fs::MetadataExt;
    let s = Server::start(&[
        "--rtmp-listen",
        "127.0.0.1:0",
        "--max-upload-bytes",
        "3000000",
    ]);
    let l = new_live(&s, r#"{"record":false}"#);
    let id = l["id"].as_str().unwrap().to_owned();
    let source = av_fixture_path("live-40s-640x360.flv", 40, "640x360", 60, &["-b:a", "96k"]);
    let ff = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
            "-i",
        ])
        .arg(&source)
        .args(["-c", "copy", "-bsf:v", "noise=amount=1500000", "-f", "flv"])
        .arg(l["rtmp_url"].as_str().unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let spool = s.storage.path().join(&id).join("source");
    let (seg, held) = wait_for("the second pass's first segment", || {
        let p = media_playlist(&s, &id)?;
        let seg = p.lines().find(|l| l.starts_with("g1_"))?.to_owned();
        let m = std::fs::metadata(&spool).ok()?;
        Some((seg, (m.blocks() * 512, m.len())))
    });
    assert!(
        held.0 + 2_000_000 < held.1,
        "{held:?}: nothing was let go of"
    );
    let bytes = s.get(&format!("/play/{id}/{seg}"));
    assert_eq!(bytes.status, 200, "{seg}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bytes.body).unwrap();
    assert_eq!(decode_errors(file.path()), "", "{seg}");
    assert!(finished(ff), "the push failed");
}

#[test]
fn a_live_kept_nowhere_cut_by_a_crash_is_gone_at_the_next_start() {
    let mut s = Server::process(RTMP);
    let l = new_live(&s, r#"{"record":false}"#);
    let id = l["id"].as_str().unwrap().to_owned();
    let ff = push(l["rtmp_url"].as_str().unwrap(), 60, Streams::Both, &[]);
    wait_until("a segment", || {
        media_playlist(&s, &id).is_some_and(|p| segments(&p) >= 1)
    });
    s.crash();
    let _ = finished(ff);
    s.restart(RTMP);
    assert_eq!(s.get(&format!("/videos/{id}")).status, 404);
    s.assert_storage_empty_soon();
}

/// An SRT induction request (handshake v4, the caller's first packet).
fn srt_induction() -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    for word in [4u32, 2, 0x1234, 1500, 8192, 1, 0x00ab_cdef, 0] {
        p.extend(word.to_be_bytes());
    }
    p.extend([127, 0, 0, 1]);
    p.extend([0; 12]);
    p
}

#[test]
fn garbage_and_half_handshakes_on_the_srt_door_cost_nothing() {
    let s = Server::start(BOTH);
    let l = new_live(&s, "");
    let url = l["srt_url"].as_str().unwrap();
    let door = url
        .trim_start_matches("srt://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // Garbage datagrams, a truncated header, a data packet for no
    // connection: nothing answers, nothing breaks.
    let junk: Vec<u8> = (0..1316u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    for d in [&junk[..], &[0x80, 0][..], &[0u8; 16][..]] {
        udp.send_to(d, &door).unwrap();
    }
    // Half a handshake: the induction is answered, then the caller is
    // never heard from again; many of them.
    for _ in 0..200 {
        udp.send_to(&srt_induction(), &door).unwrap();
    }
    let mut buf = [0u8; 1500];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert!(
        n >= 64 && buf[0] & 0x80 != 0,
        "an induction answer ({n} bytes)"
    );
    assert_eq!(s.get("/healthz").status, 200);
    // The door still works.
    let id = l["id"].as_str().unwrap();
    assert!(finished(push(url, 3, Streams::Both, &[])));
    assert_eq!(s.wait_done(id)["status"], "ready");
}

#[test]
fn an_encrypted_live_kept_nowhere_keeps_its_key_as_it_slides() {
    let s = Server::start(&[
        "--rtmp-listen",
        "127.0.0.1:0",
        "--live-window-secs",
        "6",
        "--encrypt",
    ]);
    let l = new_live(&s, r#"{"record":false,"ladder":"source"}"#);
    let id = l["id"].as_str().unwrap().to_owned();
    let ff = push(l["rtmp_url"].as_str().unwrap(), 20, Streams::Both, &[]);
    // Slid past the segment that set the key: the window still says it.
    let sliding = wait_for("the window to slide past the first key", || {
        let p = media_playlist(&s, &id)?;
        let seq: u64 = p
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?
            .parse()
            .ok()?;
        (seq >= 3).then_some(p)
    });
    let key = sliding
        .find("#EXT-X-KEY:METHOD=AES-128,")
        .unwrap_or_else(|| panic!("{sliding}"));
    assert!(key < sliding.find("#EXTINF").unwrap(), "{sliding}");
    assert!(finished(ff), "the push failed");
    wait_until("the live to be gone", || {
        s.get(&format!("/videos/{id}")).status == 404
    });
    s.assert_storage_empty_soon();
}
