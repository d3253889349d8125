//! Instant clips (issue 29, item 3): `?start=&end=` on a playback URL
//! gives playlists trimmed to the segments that cover the range (no new
//! files): the master carries the range to every playlist it names, each
//! media playlist keeps exactly the overlapping segments (checked against
//! the whole playlist), the CLI decodes the clip whole; a single
//! rendition's playlist is trimmed itself until captions make it a master;
//! a range that is malformed, empty or after the end is a 400.

use crate::common::*;
use std::path::Path;

/// The segments of media playlist `text`: (uri, start, end) in seconds.
fn timeline(text: &str) -> Vec<(String, f64, f64)> {
    let mut at = 0.0;
    extinfs(text)
        .into_iter()
        .map(|(d, uri)| {
            at += d;
            (uri, at - d, at)
        })
        .collect()
}

/// The media playlists a master names (variants and renditions).
fn named(master: &str) -> Vec<String> {
    let mut out: Vec<String> = master
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for l in master.lines() {
        if let Some((_, rest)) = l.split_once("URI=\"") {
            out.push(rest.split('"').next().unwrap().to_owned());
        }
    }
    out
}

#[test]
fn an_instant_clip_plays_the_segments_that_cover_its_range() {
    let s = Server::start(&["--segment-seconds", "2"]);
    let id = upload_ok(&s, &h264_mp4(10, "854x480", true), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let (from, to) = (3.0, 6.5);
    let master = s.get(&format!("/play/{id}/video.m3u8?start=3&end=6.5"));
    assert_eq!(master.status, 200, "{}", master.text());
    let playlists = named(&master.text());
    assert!(
        playlists.len() >= 3,
        "a ladder and its I-frame playlists: {playlists:?}"
    );
    for uri in &playlists {
        assert!(uri.ends_with("start=3&end=6.5"), "{uri}");
        let clip = s.get(&format!("/play/{id}/{uri}"));
        assert_eq!(clip.status, 200, "{uri}");
        let whole = s.get(&format!("/play/{id}/{}", uri.split('?').next().unwrap()));
        let want: Vec<_> = timeline(&whole.text())
            .into_iter()
            .enumerate()
            .filter(|(_, (_, a, b))| *b > from && *a < to)
            .collect();
        let got: Vec<String> = timeline(&clip.text()).into_iter().map(|g| g.0).collect();
        let kept: Vec<String> = want.iter().map(|w| w.1 .0.clone()).collect();
        assert_eq!(got, kept, "{uri}:\n{}", clip.text());
        let first = want.first().map_or(0, |w| w.0);
        let sequence = format!("#EXT-X-MEDIA-SEQUENCE:{first}\n");
        assert!(clip.text().contains(&sequence), "{uri}: {}", clip.text());
        assert!(clip.text().ends_with("#EXT-X-ENDLIST\n"), "{uri}");
    }
    // The CLI plays the clip whole: what it covers, to the segment.
    let url = format!("http://{}/play/{id}/video.m3u8?start=3&end=6.5", s.addr);
    assert_cli_plays(&url);
    let probed = ffprobe(Path::new(&url), &["-show_entries", "format=duration"]);
    let secs: f64 = probed["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (4.0..=6.2).contains(&secs),
        "a 3.5 s clip on 2 s segments plays {secs} s"
    );
}

#[test]
fn a_single_renditions_clip_and_bad_ranges() {
    let s = Server::start(&["--segment-seconds", "2"]);
    let id = upload_ok(&s, &h264_mp4(4, "160x120", true), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    for q in [
        "start=5&end=2",
        "start=abc",
        "start=-1",
        "end=0",
        "start=60",
    ] {
        let r = s.get(&format!("/play/{id}/video.m3u8?{q}"));
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "bad_request", "{q}");
    }
    // Segments are not playlists: the range does not apply to them.
    let whole = s.get(&format!("/play/{id}/video.m3u8"));
    let seg = &timeline(&whole.text())[0].0;
    assert_eq!(s.get(&format!("/play/{id}/{seg}?start=60")).status, 200);
    // A single rendition's playlist is trimmed itself...
    let flat = s.get(&format!("/play/{id}/video.m3u8?start=2.5&end=3"));
    let uris = |t: &str, f: &dyn Fn(f64, f64) -> bool| -> Vec<String> {
        timeline(t)
            .into_iter()
            .filter(|s| f(s.1, s.2))
            .map(|s| s.0)
            .collect()
    };
    let kept = uris(&whole.text(), &|a, b| b > 2.5 && a < 3.0);
    assert_eq!(uris(&flat.text(), &|_, _| true), kept, "{}", flat.text());
    // ...until captions make it a master, which carries the range on.
    let vtt = "WEBVTT\n\n00:00.500 --> 00:01.500\nHello\n";
    let path = format!("/videos/{id}/captions/en");
    let put = request(s.addr, "PUT", &path, &[], vtt.as_bytes());
    assert!(put.status == 200 || put.status == 201, "{}", put.text());
    let master = s.get(&format!("/play/{id}/video.m3u8?start=2.5&end=3"));
    assert!(
        master.text().contains("#EXT-X-STREAM-INF:"),
        "{}",
        master.text()
    );
    for uri in named(&master.text()) {
        assert!(uri.ends_with("start=2.5&end=3"), "{uri}");
        assert_eq!(s.get(&format!("/play/{id}/{uri}")).status, 200, "{uri}");
    }
}

/// The path and query of a URL this server gave (`http://host/path?q`).
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_owned()
}

#[test]
fn a_clips_token_grants_that_clip_and_nothing_more() {
    let s = Server::start(&[
        "--segment-seconds",
        "2",
        "--signing-key",
        "clip-key",
        "--allow-open-api",
    ]);
    let r = upload(s.addr, &h264_mp4(10, "854x480", true), FAST);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let whole_url = path_of(r.json()["playback_url"].as_str().unwrap());
    let path = format!("/videos/{id}/playback-token");
    let body = br#"{"start": 3, "end": 6.5}"#;
    let t = request(s.addr, "POST", &path, &[], body);
    assert_eq!(t.status, 200, "{}", t.text());
    let t = t.json();
    assert_eq!(t["clip"], serde_json::json!({"start": 3.0, "end": 6.5}));
    let token = t["token"].as_str().unwrap().to_owned();
    assert!(t["embed_url"].as_str().unwrap().contains(&token), "{t}");
    // Every playlist the clip's master names is trimmed to the range.
    let master = s.get(&path_of(t["playback_url"].as_str().unwrap()));
    assert_eq!(master.status, 200, "{}", master.text());
    let mut inside = Vec::new();
    for uri in named(&master.text()) {
        assert!(uri.contains(&token), "{uri}");
        let clip = s.get(&format!("/play/{id}/{uri}"));
        assert_eq!(clip.status, 200, "{uri}: {}", clip.text());
        let dir = uri.rsplit_once('/').map_or("", |d| d.0);
        for (seg, a, b) in timeline(&clip.text()) {
            let seg = seg.split('?').next().unwrap().to_owned();
            inside.push(format!("{dir}/{seg}"));
            assert!(b > 3.0 - 2.1 && a < 6.5, "{uri}: {seg} at {a}..{b}");
        }
    }
    let url = format!(
        "http://{}{}",
        s.addr,
        path_of(t["playback_url"].as_str().unwrap())
    );
    assert_cli_plays(&url);
    // The rest of the video: segments outside the range, the download and
    // the storyboard are refused to the clip's token, served to the whole
    // video's.
    let whole_master = s.get(&whole_url).text();
    let whole_token = whole_url.split("token=").nth(1).unwrap();
    let rung = named(&whole_master)
        .into_iter()
        .find(|u| u.contains("/video.m3u8"))
        .unwrap();
    let dir = rung.split('/').next().unwrap();
    let rung_text = s.get(&format!("/play/{id}/{rung}")).text();
    let (first, last) = {
        let tl = timeline(&rung_text);
        (tl[0].0.clone(), tl[tl.len() - 1].0.clone())
    };
    let mut outside = 0;
    for seg in [&first, &last] {
        let name = seg.split('?').next().unwrap();
        assert!(!inside.contains(&format!("{dir}/{name}")));
        let denied = s.get(&format!("/play/{id}/{dir}/{name}?token={token}"));
        assert_eq!(denied.status, 403, "{name}");
        assert_eq!(denied.json()["error"]["code"], "outside_clip");
        let whole = s.get(&format!("/play/{id}/{dir}/{name}?token={whole_token}"));
        assert_eq!(whole.status, 200, "{name}");
        outside += 1;
    }
    assert_eq!(outside, 2);
    for (file, with_clip) in [
        ("download.mp4", 403),
        ("storyboard.vtt", 403),
        ("poster.jpg", 200),
    ] {
        let r = s.get(&format!("/play/{id}/{file}?token={token}"));
        assert_eq!(r.status, with_clip, "{file}: {}", r.text());
        let r = s.get(&format!("/play/{id}/{file}?token={whole_token}"));
        assert_eq!(r.status, 200, "{file}");
    }
    // A range asked of the clip's token stays within it; one outside it
    // is refused, and a token whose range was widened is forged.
    let later = s.get(&format!("/play/{id}/{rung}?token={token}&start=8"));
    assert_eq!(later.status, 403, "{}", later.text());
    let forged = token.replacen("-3000-", "-0-", 1);
    let r = s.get(&format!("/play/{id}/video.m3u8?token={forged}"));
    assert_eq!(r.json()["error"]["code"], "invalid_token");
    let bad = request(s.addr, "POST", &path, &[], br#"{"start": "soon"}"#);
    assert_eq!(bad.status, 400, "{}", bad.text());
}

#[test]
fn an_exact_clip_is_a_new_video_of_exactly_its_range() {
    // Cut from the kept upload (the other tests' clips come from the
    // download: --keep-source until-ready is the default).
    let s = Server::start(&["--segment-seconds", "2", "--keep-source", "always"]);
    let source = h264_mp4_path(10, "640x360", true);
    let id = upload_ok(&s, &std::fs::read(&source).unwrap(), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let path = format!("/videos/{id}/clips");
    let body = br#"{"start": 2.5, "end": 6.0, "title": "The middle"}"#;
    let r = request(s.addr, "POST", &path, &[], body);
    assert_eq!(r.status, 201, "{}", r.text());
    let clip = r.json()["id"].as_str().unwrap().to_owned();
    assert_ne!(clip, id);
    let rec = s.wait_done(&clip);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["title"], "The middle");
    assert_eq!(rec["clipped_from"], id.as_str());
    assert_eq!(rec["clip"], serde_json::json!({"start": 2.5, "end": 6.0}));
    assert_cli_plays(&format!("http://{}/play/{clip}/video.m3u8", s.addr));
    // Its download: 3.5 s to the frame (105 frames at 30 fps, ± 1), from
    // the frame at 2.5 s.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    std::fs::write(&file, s.get(&format!("/play/{clip}/download.mp4")).body).unwrap();
    let p = ffprobe(
        &file,
        &[
            "-count_frames",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=nb_read_frames",
        ],
    );
    let frames: i64 = p["streams"][0]["nb_read_frames"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((104..=106).contains(&frames), "{frames} frames");
    // Frames of the clip are the source's 2.5 s later (each closer to
    // that frame than to the source's half a second either side).
    for (at, from) in [(0.0, 2.5), (2.0, 4.5)] {
        let ours = gray(&file, "null", Some(at));
        let right = gray_diff(&ours, &gray(&source, "null", Some(from)));
        let before = gray_diff(&ours, &gray(&source, "null", Some(from - 0.5)));
        let after = gray_diff(&ours, &gray(&source, "null", Some(from + 0.5)));
        assert!(
            right < 24.0 && right < before && right < after,
            "clip at {at}: {right} from {from} s, {before} before, {after} after"
        );
    }
    // A poster of its own.
    assert_eq!(s.get(&format!("/play/{clip}/poster.jpg")).status, 200);
    for bad in [
        &br#"{"start": 5, "end": 2}"#[..],
        br#"{"start": 2, "end": 60}"#,
        br#"{"start": "soon"}"#,
        br#"{"start": 1, "end": 1.05}"#,
    ] {
        let r = request(s.addr, "POST", &path, &[], bad);
        assert_eq!(
            r.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(bad),
            r.text()
        );
    }
    let r = request(
        s.addr,
        "POST",
        "/videos/V1StGXR8_Z5jdHi6B-myT/clips",
        &[],
        body,
    );
    assert_eq!(r.status, 404);
}

#[test]
fn a_clip_is_encrypted_and_in_the_codec_groups_its_source_was() {
    // The server's defaults: no encryption, H.264 and AV1; the source
    // asked for encryption and H.264 only.
    let s = Server::start(&[
        "--segment-seconds",
        "2",
        "--keep-source",
        "always",
        "--codecs",
        "h264,av1",
    ]);
    let source = h264_mp4_path(6, "320x180", true);
    let answer = curl(&[
        "-F",
        "encrypt=1",
        "-F",
        "codecs=h264",
        "-F",
        &format!("video=@{}", source.display()),
        &format!("http://{}/upload", s.addr),
    ]);
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(
        (&rec["encrypted"], &rec["codecs"]),
        (&serde_json::json!(true), &serde_json::json!(["h264"])),
        "{rec}"
    );
    let body = br#"{"start": 1.0, "end": 4.0}"#;
    let r = request(s.addr, "POST", &format!("/videos/{id}/clips"), &[], body);
    assert_eq!(r.status, 201, "{}", r.text());
    let clip = r.json()["id"].as_str().unwrap().to_owned();
    let rec = s.wait_done(&clip);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["encrypted"], true, "{rec}");
    assert_eq!(rec["codecs"], serde_json::json!(["h264"]), "{rec}");
    let top = rec["renditions"][0]["playlist"].as_str().unwrap();
    let media = s.get(&format!("/play/{clip}/{top}")).text();
    assert!(media.contains("#EXT-X-KEY:METHOD=AES-128"), "{media}");
    assert_cli_plays(&format!("http://{}/play/{clip}/video.m3u8", s.addr));
}

/// The slice NAL units (types 1 and 5) of an H.264 file's video, as the
/// CLI writes it in Annex B.
fn slices(input: &Path, dir: &Path) -> Vec<Vec<u8>> {
    let raw = dir.join(format!(
        "{}.h264",
        input.file_name().unwrap().to_string_lossy()
    ));
    let (input, raw_path) = (input.to_str().unwrap(), raw.to_str().unwrap());
    ffmpeg_ok([
        "-y",
        "-i",
        input,
        "-map",
        "0:v",
        "-c",
        "copy",
        "-bsf:v",
        "h264_mp4toannexb",
        "-f",
        "h264",
        raw_path,
    ]);
    let b = std::fs::read(&raw).unwrap();
    // Split at every 00 00 01 (a 4-byte start code leaves a trailing 0).
    let starts: Vec<usize> = (0..b.len().saturating_sub(3))
        .filter(|&i| b[i..i + 3] == [0, 0, 1])
        .map(|i| i + 3)
        .collect();
    let mut units = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(b.len(), |&n| n - 3);
        let mut nal = &b[s..end];
        while nal.last() == Some(&0) {
            nal = &nal[..nal.len() - 1];
        }
        if matches!(nal.first().map(|h| h & 0x1f), Some(1 | 5)) {
            units.push(nal.to_vec());
        }
    }
    units
}

#[test]
fn an_exact_clip_copies_the_sources_frames_between_its_cut_gops() {
    // H.264 with B-frames (decoded ahead of when they are shown) and an
    // IDR every second: a clip of 2.5-7.3 s encodes 2.5-3.0 and 7.0-7.3
    // and copies the 120 frames of 3.0-7.0 as they are.
    let s = Server::start(&["--segment-seconds", "2", "--keep-source", "always"]);
    let source = av_fixture_path("smartcut.mp4", 10, "640x360", 30, &["-bf", "2"]);
    let id = upload_ok(&s, &std::fs::read(&source).unwrap(), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let body = br#"{"start": 2.5, "end": 7.3}"#;
    let r = request(s.addr, "POST", &format!("/videos/{id}/clips"), &[], body);
    assert_eq!(r.status, 201, "{}", r.text());
    let clip = r.json()["id"].as_str().unwrap().to_owned();
    let rec = s.wait_done(&clip);
    assert_eq!(rec["status"], "ready");
    // Its rungs are encoded from the cut (whose parameter sets change).
    assert_eq!(rec["copied"], false, "{rec}");
    let note = rec["copy_note"].as_str().unwrap_or_default();
    assert!(note.contains("exact clip"), "{rec}");
    // The clip's own upload (kept) is the cut: it decodes cleanly, and
    // 120 of its slices are the source's, byte for byte.
    let cut = s.storage.path().join(&clip).join("source");
    assert_eq!(decode_errors(&cut), "");
    let dir = tempfile::tempdir().unwrap();
    let theirs: std::collections::HashSet<Vec<u8>> =
        slices(&source, dir.path()).into_iter().collect();
    let ours = slices(&cut, dir.path());
    let copied = ours.iter().filter(|n| theirs.contains(*n)).count();
    assert_eq!(copied, 120, "{} slices, {copied} copied", ours.len());
    assert!((143..=145).contains(&ours.len()), "{} frames", ours.len());
    // Head, copy and tail are in place, and the sound with them.
    let file = dir.path().join("clip.mp4");
    std::fs::write(&file, s.get(&format!("/play/{clip}/download.mp4")).body).unwrap();
    for (at, from) in [(0.2, 2.7), (2.0, 4.5), (4.6, 7.1)] {
        let ours = gray(&file, "null", Some(at));
        let right = gray_diff(&ours, &gray(&source, "null", Some(from)));
        let before = gray_diff(&ours, &gray(&source, "null", Some(from - 0.1)));
        let after = gray_diff(&ours, &gray(&source, "null", Some(from + 0.1)));
        assert!(
            right < 24.0 && right < before && right < after,
            "clip at {at}: {right} from {from} s, {before} before, {after} after"
        );
    }
    // The cut's sound starts with its picture: the video's first frame
    // and the audio's first sample (its packets begin 1024 samples of
    // encoder priming earlier) at the same instant, though the copied
    // packets keep the source's reordering delay (2 frames).
    let p = ffprobe(&cut, &["-show_entries", "stream=codec_type,start_time"]);
    let start = |kind: &str| -> f64 {
        let streams = p["streams"].as_array().unwrap();
        let s = streams.iter().find(|s| s["codec_type"] == kind).unwrap();
        s["start_time"].as_str().unwrap().parse().unwrap()
    };
    let gap = start("video") - (start("audio") + 1024.0 / 48000.0);
    assert!(gap.abs() < 0.005, "{gap} s: {p}");
}

#[test]
fn an_exact_clip_of_a_rotated_video_is_upright() {
    // Stored landscape with a 90° display rotation: its renditions are
    // portrait, and so are its clips, cut from the kept upload (turned
    // while encoded: MPEG-TS carries no rotation) or from the download
    // (already upright, copied between the cut GOPs).
    let plain = av_fixture_path("clip-to-rotate.mp4", 6, "320x240", 30, &[]);
    let rotated = crate::transcode::rotated_copy(&plain);
    for downloads in ["on", "off"] {
        let s = Server::start(&["--keep-source", "always", "--downloads", downloads]);
        let id = upload_ok(&s, &std::fs::read(&rotated).unwrap(), FAST);
        let rec = s.wait_done(&id);
        assert_eq!(rec["status"], "ready", "{rec}");
        let size = |r: &serde_json::Value| (r["width"].clone(), r["height"].clone());
        let top = size(&rec["renditions"][0]);
        assert_eq!(top, (240.into(), 320.into()), "{rec}");
        let body = br#"{"start": 1.5, "end": 4.2}"#;
        let r = request(s.addr, "POST", &format!("/videos/{id}/clips"), &[], body);
        assert_eq!(r.status, 201, "{}", r.text());
        let clip = r.json()["id"].as_str().unwrap().to_owned();
        let rec = s.wait_done(&clip);
        assert_eq!(rec["status"], "ready", "{rec}");
        assert_eq!(
            size(&rec["renditions"][0]),
            top,
            "downloads {downloads}: {rec}"
        );
        assert_cli_plays(&format!("http://{}/play/{clip}/video.m3u8", s.addr));
    }
}
