//! Issue 27, Low-Latency HLS: a live created with `latency: low` lists
//! parts, a preload hint, server control, part info, program dates and
//! rendition reports (a strict parser reads every playlist fetched);
//! blocking reloads are held until the part they ask for is out, and
//! refused when they ask too far ahead; the hinted part is held until it
//! is cut; a whole segment is its parts end to end; the broadcast ends as
//! a plain VOD that decodes whole, with no part left on disk.

use crate::common::*;
use crate::live::{finished, live, new_live, push, segments, Streams};

/// The live's first variant: (its URI under `/play/{id}/`, its playlist)
/// once it lists `whole` whole segments.
fn variant(s: &Server, id: &str, whole: usize) -> (String, String) {
    wait_for("the low-latency playlist's first segments", || {
        let master = s.get(&format!("/play/{id}/video.m3u8"));
        if master.status != 200 {
            return None;
        }
        let text = master.text();
        let uri = match text.contains("#EXT-X-STREAM-INF") {
            true => text
                .lines()
                .find(|l| !l.is_empty() && !l.starts_with('#'))?
                .to_owned(),
            false => "video.m3u8".to_owned(),
        };
        let p = s.get(&format!("/play/{id}/{uri}"));
        (p.status == 200 && segments(&p.text()) >= whole).then(|| (uri, p.text()))
    })
}

/// (media sequence of the open segment, parts it lists) of a playlist.
fn edge_of(playlist: &str) -> (u64, u64) {
    let first: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .parse()
        .unwrap();
    let tail = playlist.rsplit(".ts\n").next().unwrap_or("");
    let parts = tail.matches("#EXT-X-PART:").count() as u64;
    (first + segments(playlist) as u64, parts)
}

/// The URI of the preload hint.
fn hint_of(playlist: &str) -> String {
    let line = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
        .unwrap_or_else(|| panic!("no preload hint in\n{playlist}"));
    line.trim_end_matches('"').to_owned()
}

/// The first whole segment listed with its parts: (parts, segment).
fn segment_with_parts(playlist: &str) -> (Vec<String>, String) {
    let mut parts = Vec::new();
    for l in playlist.lines() {
        if let Some(p) = l.strip_prefix("#EXT-X-PART:") {
            let uri = p.split("URI=\"").nth(1).unwrap().split('"').next().unwrap();
            parts.push(uri.to_owned());
        } else if !l.starts_with('#') && !parts.is_empty() {
            return (parts, l.to_owned());
        } else if !l.starts_with('#') {
            parts.clear();
        }
    }
    panic!("no whole segment with parts in\n{playlist}");
}

#[test]
fn a_low_latency_live_serves_parts_and_blocking_reloads() {
    let s = Server::start(&["--rtmp-listen", "127.0.0.1:0"]);
    let l = new_live(
        &s,
        r#"{"latency":"low","title":"Quick","ladder":"360,180"}"#,
    );
    assert_eq!(l["latency"], "low", "{l}");
    let id = l["id"].as_str().unwrap().to_owned();
    let ff = push(l["rtmp_url"].as_str().unwrap(), 24, Streams::Both, &[]);
    let (uri, text) = variant(&s, &id, 2);
    for tag in [
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=",
        "#EXT-X-PART-INF:PART-TARGET=",
        "#EXT-X-PROGRAM-DATE-TIME:",
        "INDEPENDENT=YES",
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=",
        "#EXT-X-RENDITION-REPORT:URI=\"../",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ] {
        assert!(text.contains(tag), "{tag} missing in\n{text}");
    }
    let dir = uri.rsplit_once('/').map_or("", |(d, _)| d);
    let at = |q: &str| format!("/play/{id}/{uri}?{q}");

    // A blocking reload for the part after the last listed one is held
    // until that part is out; the playlist then lists it.
    let (msn, parts) = edge_of(&text);
    let hinted = hint_of(&text);
    let r = s.get(&at(&format!("_HLS_msn={msn}&_HLS_part={parts}")));
    assert_eq!(r.status, 200, "{}", r.text());
    let next = r.text();
    assert!(
        next.contains(&format!("URI=\"{hinted}\"")),
        "{hinted} not in\n{next}"
    );
    assert!(
        edge_of(&next) > (msn, parts) || edge_of(&next).0 > msn,
        "{next}"
    );
    // Too far ahead, a part without a segment, not numbers: 400.
    for q in [
        format!("_HLS_msn={}", msn + 10),
        "_HLS_part=1".into(),
        "_HLS_msn=x".into(),
    ] {
        let r = s.get(&at(&q));
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert!(!r.json()["error"].is_null(), "{q}: {}", r.text());
    }
    // The hinted part, asked for before it is cut, is held and served.
    let hint = hint_of(&next);
    let p = s.get(&format!("/play/{id}/{dir}/{hint}"));
    assert_eq!(p.status, 200);
    assert!(
        !p.body.is_empty() && p.body.len().is_multiple_of(188),
        "{}",
        p.body.len()
    );
    // A whole segment is its parts, end to end.
    let (parts, segment) = segment_with_parts(&next);
    let whole = s.get(&format!("/play/{id}/{dir}/{segment}"));
    assert_eq!(whole.status, 200);
    let joined: Vec<u8> = parts
        .iter()
        .flat_map(|p| s.get(&format!("/play/{id}/{dir}/{p}")).body)
        .collect();
    assert_eq!(joined.len(), whole.body.len(), "{parts:?} vs {segment}");
    assert!(joined == whole.body, "{segment} is not its parts");
    let metrics = s.get("/metrics").text();
    let held = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hlsd_blocking_reloads_total "))
        .unwrap();
    assert!(held.parse::<u64>().unwrap() >= 1, "{metrics}");
    // The live's encoder against real time, and no frame dropped.
    let speed = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("hlsd_live_encoder_speed{{video=\"{id}\"}} ")))
        .unwrap_or_else(|| panic!("no encoder speed in {metrics}"));
    assert!(speed.parse::<f64>().unwrap() > 0.0, "{metrics}");
    assert!(
        metrics.contains(&format!("\nhlsd_live_dropped_frames{{video=\"{id}\"}} 0\n")),
        "{metrics}"
    );

    // A delta update: the segments before the skip boundary (12 s before
    // the end) are one EXT-X-SKIP.
    let (_, full) = variant(&s, &id, 7);
    let delta = s.get(&at("_HLS_skip=YES")).text();
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="), "{delta}");
    assert!(segments(&delta) < segments(&full), "{delta}");
    assert!(full.contains("CAN-SKIP-UNTIL=12.0"), "{full}");
    assert!(finished(ff), "the push failed");
    let done = s.wait_done(&id);
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(live(&s, &id)["latency"], "low");
    assert!(!s
        .get("/metrics")
        .text()
        .contains(&format!("{{video=\"{id}\"}}")));
    // The VOD: plain segments, closed, decoding whole (24 s ± a segment).
    let vod = s.get(&format!("/play/{id}/{uri}")).text();
    assert!(
        vod.contains("#EXT-X-ENDLIST") && !vod.contains("#EXT-X-PART"),
        "{vod}"
    );
    let playback = format!("http://{}/play/{id}/video.m3u8", s.addr);
    assert_cli_plays(&playback);
    let probed = ffprobe(std::path::Path::new(&playback), &["-show_format"]);
    let secs: f64 = probed["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((22.0..=26.0).contains(&secs), "{probed}");
    // No part is left behind.
    let folder = s.storage.path().join(&id);
    wait_until("the parts to be removed", || !has_parts(&folder));
}

/// True when a file named `*part_*` is under `dir`.
fn has_parts(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let p = e.path();
            match p.is_dir() {
                true => has_parts(&p),
                false => e.file_name().to_string_lossy().contains("part_"),
            }
        })
}

#[test]
fn a_low_latency_live_kept_nowhere_slides_its_window() {
    let s = Server::start(&["--rtmp-listen", "127.0.0.1:0", "--live-window-secs", "6"]);
    let l = new_live(&s, r#"{"latency":"low","record":false,"ladder":"source"}"#);
    let id = l["id"].as_str().unwrap().to_owned();
    let ff = push(l["rtmp_url"].as_str().unwrap(), 16, Streams::Both, &[]);
    let sliding = wait_for("the low-latency window to slide", || {
        let (_, p) = variant(&s, &id, 1);
        let seq: u64 = p
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?
            .parse()
            .ok()?;
        (seq >= 3).then_some(p)
    });
    assert!(!sliding.contains("#EXT-X-PLAYLIST-TYPE"), "{sliding}");
    assert!(sliding.contains("#EXT-X-PART:"), "{sliding}");
    assert!(
        !sliding.contains("#EXT-X-RENDITION-REPORT"),
        "one rendition: {sliding}"
    );
    assert!(finished(ff), "the push failed");
    wait_until("the live to be gone", || {
        s.get(&format!("/videos/{id}")).status == 404
    });
    s.assert_storage_empty_soon();
}

/// `data` decrypted by the openssl CLI (AES-128-CBC, PKCS#7) under the key
/// at `key_uri` and `iv` (`0x…`).
fn decrypt(s: &Server, key_uri: &str, iv: &str, data: &[u8]) -> Vec<u8> {
    let key = s.get(key_uri);
    assert_eq!((key.status, key.body.len()), (200, 16), "{key_uri}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sealed");
    std::fs::write(&file, data).unwrap();
    let hex: String = key.body.iter().map(|b| format!("{b:02x}")).collect();
    let out = std::process::Command::new("openssl")
        .args([
            "enc",
            "-d",
            "-aes-128-cbc",
            "-K",
            &hex,
            "-iv",
            iv.trim_start_matches("0x"),
            "-in",
        ])
        .arg(&file)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn an_encrypted_low_latency_live_encrypts_each_part_and_segment() {
    let s = Server::start(&["--rtmp-listen", "127.0.0.1:0", "--encrypt"]);
    let l = new_live(&s, r#"{"latency":"low","ladder":"source"}"#);
    let id = l["id"].as_str().unwrap().to_owned();
    let ff = push(l["rtmp_url"].as_str().unwrap(), 8, Streams::Both, &[]);
    let (uri, text) = variant(&s, &id, 2);
    // The key comes before the first part; each part decrypts alone, a
    // segment decrypts whole, both to MPEG-TS, the segment being its parts.
    let key_line = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-KEY:METHOD=AES-128,"))
        .unwrap_or_else(|| panic!("no key in\n{text}"));
    assert!(
        text.find(key_line).unwrap() < text.find("#EXT-X-PART:").unwrap(),
        "{text}"
    );
    let key_uri = key_line
        .split("URI=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let iv = key_line.split("IV=").nth(1).unwrap();
    let dir = uri.rsplit_once('/').map_or("", |(d, _)| d);
    let at = |name: &str| {
        format!(
            "/play/{id}/{}{name}",
            if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            }
        )
    };
    let (parts, segment) = segment_with_parts(&text);
    let mut joined = Vec::new();
    for p in &parts {
        let plain = decrypt(&s, key_uri, iv, &s.get(&at(p)).body);
        assert_eq!(plain.first(), Some(&0x47), "{p} is not TS once decrypted");
        joined.extend(plain);
    }
    let whole = decrypt(&s, key_uri, iv, &s.get(&at(&segment)).body);
    assert!(whole == joined, "{segment} is not its parts");
    assert!(finished(ff), "the push failed");
    assert_eq!(s.wait_done(&id)["status"], "ready");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

#[test]
fn a_low_latency_live_in_fmp4_marks_its_keyframe_parts() {
    let s = Server::start(&["--rtmp-listen", "127.0.0.1:0", "--segment-format", "fmp4"]);
    let l = new_live(&s, r#"{"latency":"low","ladder":"source"}"#);
    let id = l["id"].as_str().unwrap().to_owned();
    let ff = push(l["rtmp_url"].as_str().unwrap(), 8, Streams::Both, &[]);
    let (uri, text) = variant(&s, &id, 2);
    assert!(text.contains("#EXT-X-MAP:URI=\""), "{text}");
    assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS"), "{text}");
    // Read from the fragments' sample flags: each segment's first part.
    let (parts, segment) = segment_with_parts(&text);
    assert!(
        segment.ends_with(".m4s") && parts[0].ends_with(".m4s"),
        "{text}"
    );
    let first = text.lines().find(|l| l.contains(&parts[0])).unwrap();
    assert!(first.ends_with(",INDEPENDENT=YES"), "{text}");
    let second = text.lines().find(|l| l.contains(&parts[1])).unwrap();
    assert!(!second.contains("INDEPENDENT"), "{text}");
    assert!(finished(ff), "the push failed");
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let vod = s.get(&format!("/play/{id}/{uri}")).text();
    assert!(
        vod.contains("#EXT-X-ENDLIST") && !vod.contains("#EXT-X-PART"),
        "{vod}"
    );
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

#[test]
fn captions_uploaded_while_live_are_listed_and_kept() {
    let s = Server::start(&["--rtmp-listen", "127.0.0.1:0"]);
    let l = new_live(&s, r#"{"latency":"low","ladder":"360,180"}"#);
    let id = l["id"].as_str().unwrap().to_owned();
    let ff = push(l["rtmp_url"].as_str().unwrap(), 12, Streams::Both, &[]);
    variant(&s, &id, 1);
    let vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nBonjour\n\n00:00:05.000 --> 00:00:09.000\nEn direct\n";
    let r = request(
        s.addr,
        "PUT",
        &format!("/videos/{id}/captions/fr"),
        &[("Content-Type", "text/vtt")],
        vtt.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(live(&s, &id)["status"], "live", "added while live");
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(
        master.contains("TYPE=SUBTITLES") && master.contains("LANGUAGE=\"fr\""),
        "{master}"
    );
    assert!(finished(ff), "the push failed");
    let done = s.wait_done(&id);
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["captions"][0]["lang"], "fr", "{done}");
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(master.contains("LANGUAGE=\"fr\""), "{master}");
    let dir = done["captions"][0]["dir"].as_str().unwrap();
    // Refitted to the whole broadcast at its end: a new version.
    let v = done["captions"][0]["version"].as_u64().unwrap();
    let track = s.get(&format!("/play/{id}/{dir}/v{v}.m3u8"));
    assert_eq!(track.status, 200);
    let cues: String = track
        .text()
        .lines()
        .filter(|l| l.ends_with(".vtt"))
        .map(|u| s.get(&format!("/play/{id}/{dir}/{u}")).text())
        .collect();
    assert!(
        cues.contains("Bonjour") && cues.contains("En direct"),
        "{cues}"
    );
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

#[test]
fn a_low_latency_live_on_a_bucket_is_served_by_another_node() {
    let s3 = crate::common::s3::S3Server::start();
    let a = s3.start_node("lib", "node-a", &["--rtmp-listen", "127.0.0.1:0"]);
    let b = s3.start_node("lib", "node-b", &[]);
    let l = new_live(&a, r#"{"latency":"low","ladder":"360,180"}"#);
    let id = l["id"].as_str().unwrap().to_owned();
    let ff = push(l["rtmp_url"].as_str().unwrap(), 10, Streams::Both, &[]);
    // Node B reads the playlists from the bucket: parts and all, and the
    // parts are there too.
    let (uri, text) = variant(&b, &id, 1);
    let dir = uri.rsplit_once('/').map_or("", |(d, _)| d);
    let (parts, _) = segment_with_parts(&text);
    let part = b.get(&format!("/play/{id}/{dir}/{}", parts[0]));
    assert_eq!(part.status, 200, "{}", parts[0]);
    assert!(!part.body.is_empty());
    // A blocking reload on node B, for the first part of the segment after
    // the open one (a second or two ahead): held until B's mirror of the
    // edge sees the bucket's playlist list it (answered at once, without
    // it, before the part exists).
    let (msn, _) = edge_of(&text);
    let asked = format!("/play/{id}/{uri}?_HLS_msn={}&_HLS_part=0", msn + 1);
    let held = b.get(&asked);
    assert_eq!(held.status, 200, "{}", held.text());
    let (open, listed) = edge_of(&held.text());
    assert!(
        open > msn + 1 || (open == msn + 1 && listed >= 1),
        "asked for part 0 of {}, got {open}/{listed}:\n{}",
        msn + 1,
        held.text()
    );
    // And the part it hints next is held until it is cut, then served.
    let hint = hint_of(&held.text());
    let next = b.get(&format!("/play/{id}/{dir}/{hint}"));
    assert_eq!(next.status, 200, "{hint}: {}", next.text());
    assert!(finished(ff), "the push failed");
    assert_eq!(a.wait_done(&id)["status"], "ready");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", b.addr));
    // No part is left in the bucket.
    wait_until("the parts to leave the bucket", || {
        !s3.keys_under(&format!("lib/{id}"))
            .iter()
            .any(|k| k.contains("part_"))
    });
}

#[test]
fn low_frame_rates_get_parts_a_strict_parser_accepts() {
    // 9 and 13 fps: 0.4 s parts alternated 4 and 3 frames (5 and 6),
    // under 85% of the part target. Every playlist fetched is read by the
    // strict parser (`s.get`).
    let s = Server::start(&["--rtmp-listen", "127.0.0.1:0"]);
    let lives: Vec<(String, String, std::process::Child)> = ["9", "13"]
        .into_iter()
        .map(|fps| {
            let l = new_live(&s, r#"{"latency":"low","ladder":"source"}"#);
            let g = (fps.parse::<u32>().unwrap() * 2).to_string();
            let extra = ["-r", fps, "-g", g.as_str()];
            let ff = push(l["rtmp_url"].as_str().unwrap(), 12, Streams::Both, &extra);
            (fps.to_owned(), l["id"].as_str().unwrap().to_owned(), ff)
        })
        .collect();
    for (fps, id, _) in &lives {
        let (_, p) = variant(&s, id, 2);
        let target: f64 = p
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-PART-INF:PART-TARGET="))
            .unwrap_or_else(|| panic!("{fps} fps: no part info in\n{p}"))
            .parse()
            .unwrap();
        // A second: a whole number of frames at any whole rate (the
        // target a frame above it where the rate read from milliseconds
        // came out a little over: 13 fps as 13.16).
        assert!((1.0..1.1).contains(&target), "{fps} fps: {p}");
    }
    for (fps, _, ff) in lives {
        assert!(finished(ff), "the {fps} fps push failed");
    }
}
