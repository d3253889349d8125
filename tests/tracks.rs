//! Captions (embedded mov_text and SRT, uploaded WebVTT/SRT), alternate
//! audio, storyboards and MP4 downloads, checked with the ffmpeg CLI and
//! the strict HLS parser (every playlist fetched through `request`).

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const SRT: &str = "1\n00:00:01,000 --> 00:00:03,000\nHello from hlsd\n\n\
2\n00:00:05,500 --> 00:00:07,000\n<font color=\"red\">Second</font> {\\an8}line\n\n\
3\n00:00:09,000 --> 00:00:11,500\nThird\n";

fn srt_path() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tracks-subs.srt");
    if std::fs::read_to_string(&p).ok().as_deref() != Some(SRT) {
        let tmp = p.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, SRT).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
    }
    p
}

/// 12 s, two audio languages (English 440 Hz, French 880 Hz at 44.1 kHz),
/// English mov_text subtitles: an MP4 as a phone or an editor writes it.
fn two_languages() -> PathBuf {
    let srt = srt_path();
    let srt = srt.to_str().unwrap();
    fixture_path(
        "tracks-2audio-movtext.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=880:sample_rate=44100",
            "-i",
            srt,
            "-t",
            "12",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-map",
            "2:a",
            "-map",
            "3:s",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-c:s",
            "mov_text",
            "-metadata:s:a:0",
            "language=eng",
            "-metadata:s:a:1",
            "language=fra",
            "-metadata:s:s:0",
            "language=eng",
            "-movflags",
            "+faststart",
        ],
    )
}

/// 12 s with French SRT subtitles and one audio track, in Matroska.
fn srt_in_mkv() -> PathBuf {
    let srt = srt_path();
    let srt = srt.to_str().unwrap();
    fixture_path(
        "tracks-srt.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-i",
            srt,
            "-t",
            "12",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-map",
            "2:s",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-c:s",
            "srt",
            "-metadata:s:s:0",
            "language=fre",
        ],
    )
}

fn ready(s: &Server, file: &Path) -> (String, serde_json::Value) {
    let id = upload_ok(s, &std::fs::read(file).unwrap(), FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    (id, rec)
}

/// `(start, end, text)` of every cue in a WebVTT text.
fn cues(vtt: &str) -> Vec<(f64, f64, String)> {
    let secs = |t: &str| {
        let p: Vec<f64> = t.split(':').map(|x| x.parse().unwrap()).collect();
        p[0] * 3600.0 + p[1] * 60.0 + p[2]
    };
    let lines: Vec<&str> = vtt.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some((a, b)) = l.split_once(" --> ") {
            let text = lines.get(i + 1).copied().unwrap_or("").to_owned();
            out.push((
                secs(a.trim()),
                secs(b.split_whitespace().next().unwrap()),
                text,
            ));
        }
    }
    out
}

/// The caption track's `X-TIMESTAMP-MAP` maps cue time 0 to the first
/// video PTS of the video's first segment (what players align cues with).
fn assert_timestamp_map(s: &Server, id: &str, rec: &serde_json::Value, playlist: &str) {
    let media = rec["renditions"][0]["playlist"].as_str().unwrap();
    let dir = media
        .rsplit_once('/')
        .map_or(String::new(), |(d, _)| format!("{d}/"));
    let text = s.get(&format!("/play/{id}/{media}")).text();
    let first = extinfs(&text)[0].1.clone();
    let seg = s.get(&format!("/play/{id}/{dir}{first}"));
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("first.ts");
    std::fs::write(&path, &seg.body).unwrap();
    let probe = ffprobe(
        &path,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts",
            "-read_intervals",
            "%+#1",
        ],
    );
    let pts = probe["packets"][0]["pts"].as_u64().unwrap();
    let tdir = playlist.rsplit_once('/').unwrap().0;
    let captions = s.get(&format!("/play/{id}/{playlist}")).text();
    let vtt = s
        .get(&format!("/play/{id}/{tdir}/{}", extinfs(&captions)[0].1))
        .text();
    let map = vtt.lines().nth(1).unwrap();
    assert!(
        map.contains(&format!("MPEGTS:{pts},")),
        "{map} (first video PTS {pts})"
    );
}

/// Every cue of a caption track (its playlist and segments fetched).
fn track_cues(s: &Server, id: &str, playlist: &str) -> Vec<(f64, f64, String)> {
    let dir = playlist.rsplit_once('/').unwrap().0;
    let text = s.get(&format!("/play/{id}/{playlist}")).text();
    let mut all = Vec::new();
    for (_, seg) in extinfs(&text) {
        let vtt = s.get(&format!("/play/{id}/{dir}/{seg}"));
        assert_eq!(vtt.status, 200);
        assert_eq!(vtt.header("content-type"), Some("text/vtt; charset=utf-8"));
        assert!(
            vtt.text().starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:"),
            "{}",
            vtt.text()
        );
        for c in cues(&vtt.text()) {
            if !all.contains(&c) {
                all.push(c);
            }
        }
    }
    all
}

#[test]
fn two_audio_languages_and_mov_text_become_hls_groups() {
    let s = Server::start(&["--segment-seconds", "2"]);
    let (id, rec) = ready(&s, &two_languages());
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(
        master.contains("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"en\""),
        "{master}"
    );
    assert!(
        master.contains("TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"fr\",NAME=\"Français\",DEFAULT=NO"),
        "{master}"
    );
    assert!(
        master.contains("TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\""),
        "{master}"
    );
    for line in master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
    {
        assert!(
            line.contains("AUDIO=\"aud\"") && line.contains("SUBTITLES=\"subs\""),
            "{line}"
        );
        assert!(line.contains("mp4a.40.2"), "{line}");
    }
    assert_eq!(rec["audio_tracks"].as_array().unwrap().len(), 2, "{rec}");
    assert_eq!(rec["captions"][0]["source"], "embedded");
    // Each audio rendition decodes, at its own pitch's sample rate, on
    // the video's timeline.
    for t in rec["audio_tracks"].as_array().unwrap() {
        let url = format!(
            "http://{}/play/{id}/{}/video.m3u8",
            s.addr,
            t["dir"].as_str().unwrap()
        );
        assert_cli_plays(&url);
        let d = ffprobe_duration(&url);
        assert!((d - 12.0).abs() < 0.5, "{url}: {d}");
    }
    // The cues, at their times, styling stripped.
    let got = track_cues(
        &s,
        &id,
        &format!("{}/v1.m3u8", rec["captions"][0]["dir"].as_str().unwrap()),
    );
    assert_eq!(
        got,
        vec![
            (1.0, 3.0, "Hello from hlsd".to_owned()),
            (5.5, 7.0, "Second line".to_owned()),
            (9.0, 11.5, "Third".to_owned()),
        ]
    );
    // The whole stream plays in the CLI.
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

fn ffprobe_duration(url: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            url,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}

#[test]
fn srt_subtitles_in_matroska_become_a_caption_track() {
    let s = Server::start(&["--segment-seconds", "2"]);
    let (id, rec) = ready(&s, &srt_in_mkv());
    assert_eq!(rec["captions"][0]["lang"], "fr", "{rec}");
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(
        master.contains("TYPE=SUBTITLES") && !master.contains("TYPE=AUDIO"),
        "{master}"
    );
    let got = track_cues(
        &s,
        &id,
        &format!("{}/v1.m3u8", rec["captions"][0]["dir"].as_str().unwrap()),
    );
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((got[1].0, got[1].2.as_str()), (5.5, "Second line"));
}

const VTT: &str = "WEBVTT\n\n00:00:02.000 --> 00:00:04.000\nBonjour\n\n00:00:07.000 --> 00:00:30.000\nJusqu'au bout\n\n00:01:00.000 --> 00:01:02.000\nAprès la fin\n";

fn put_captions(s: &Server, id: &str, lang: &str, body: &[u8]) -> Response {
    request(
        s.addr,
        "PUT",
        &format!("/videos/{id}/captions/{lang}?name=Fran%C3%A7ais"),
        &[("Content-Type", "text/vtt")],
        body,
    )
}

#[test]
fn captions_uploaded_later_to_ready_and_processing_videos() {
    let s = Server::start(&["--segment-seconds", "2"]);
    // A ready single-rendition video: its master appears with the track.
    let (id, _) = ready(&s, &h264_mp4_path(8, "320x240", true));
    let before = s.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(!before.contains("#EXT-X-STREAM-INF"));
    let bad = put_captions(&s, &id, "fr", b"this is not a caption file");
    bad.assert_error(415, "unsupported_captions");
    assert_eq!(s.get(&format!("/play/{id}/video.m3u8")).text(), before);
    let r = put_captions(&s, &id, "fr", VTT.as_bytes());
    assert_eq!(r.status, 201, "{}", r.text());
    let rec = r.json();
    assert_eq!(rec["captions"][0]["name"], "Français");
    assert_eq!(rec["captions"][0]["source"], "uploaded");
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(
        master.contains("LANGUAGE=\"fr\"") && master.contains("#EXT-X-STREAM-INF"),
        "{master}"
    );
    // Clipped to the video: the cue past the end goes, the long one ends
    // with the video.
    let got = track_cues(&s, &id, "cc-fr/v1.m3u8");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!((got[1].1 - 8.0).abs() < 0.1, "{got:?}");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
    // Replaced (a new version), then removed.
    let r = put_captions(&s, &id, "fr", SRT.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["captions"][0]["version"], 2);
    assert_eq!(s.get(&format!("/play/{id}/cc-fr/v1.m3u8")).status, 404);
    let r = request(
        s.addr,
        "DELETE",
        &format!("/videos/{id}/captions/fr"),
        &[],
        &[],
    );
    assert_eq!(r.status, 204);
    assert!(!s
        .get(&format!("/play/{id}/video.m3u8"))
        .text()
        .contains("SUBTITLES"));
    assert_eq!(
        request(
            s.addr,
            "DELETE",
            &format!("/videos/{id}/captions/fr"),
            &[],
            &[]
        )
        .status,
        404
    );

    // A video still arriving takes captions too; they are there when ready.
    let data = std::fs::read(h264_mp4_path(12, "320x240", true)).unwrap();
    let upload = PartialUpload::start(s.addr, &data, data.len() / 2);
    let first = id;
    let id = wait_for("the new video's folder", || {
        s.storage_entries()
            .into_iter()
            .find(|e| *e != first && !e.starts_with('.'))
    });
    let r = wait_for("the upload to be recognised as a video", || {
        let r = put_captions(&s, &id, "de", VTT.as_bytes());
        // 404 before its record exists, 503 before its probe decided.
        (r.status != 404 && r.status != 503).then_some(r)
    });
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(upload.finish().status, 201);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready");
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(master.contains("LANGUAGE=\"de\""), "{master}");
    // Refitted to the finished video: cut at its segments, clipped to it.
    let de = &rec["captions"][0];
    let playlist = format!("{}/v{}.m3u8", de["dir"].as_str().unwrap(), de["version"]);
    assert!(master.contains(&playlist), "{master}");
    let got = track_cues(&s, &id, &playlist);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!((got[1].1 - 12.0).abs() < 0.2, "{got:?}");
}

#[test]
fn the_storyboard_covers_the_video_and_its_tiles_show_its_frames() {
    let s = Server::start(&[]);
    let (id, rec) = ready(&s, &h264_mp4_path(12, "320x240", true));
    let url = rec["storyboard_url"].as_str().unwrap();
    assert_eq!(url, format!("http://{}/play/{id}/storyboard.vtt", s.addr));
    let vtt = s.get(&format!("/play/{id}/storyboard.vtt")).text();
    let duration = rec["output"]["duration"].as_f64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut end = 0.0;
    let lines: Vec<&str> = vtt.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let Some((a, b)) = l.split_once(" --> ") else {
            continue;
        };
        let (start, stop) = (
            cues(&format!("{a} --> {b}"))[0].0,
            cues(&format!("{a} --> {b}"))[0].1,
        );
        assert!((start - end).abs() < 1e-6, "a gap before {l}");
        end = stop;
        let (sheet, xywh) = lines[i + 1].split_once("#xywh=").unwrap();
        let v: Vec<u32> = xywh.split(',').map(|n| n.parse().unwrap()).collect();
        let img = dir.path().join(sheet);
        if !img.exists() {
            let r = s.get(&format!("/play/{id}/{sheet}"));
            assert_eq!(
                (r.status, r.header("content-type")),
                (200, Some("image/jpeg"))
            );
            std::fs::write(&img, &r.body).unwrap();
        }
        let size = ffprobe(&img, &["-show_entries", "stream=width,height"]);
        let (w, h) = (
            size["streams"][0]["width"].as_u64().unwrap() as u32,
            size["streams"][0]["height"].as_u64().unwrap() as u32,
        );
        assert!(
            v[0] + v[2] <= w && v[1] + v[3] <= h,
            "{xywh} outside {w}x{h}"
        );
        // The tile against the CLI's frame at that time (gray, 16×9).
        let tile = gray(
            &img,
            &format!("crop={}:{}:{}:{}", v[2], v[3], v[0], v[1]),
            None,
        );
        let hls = format!("http://{}/play/{id}/video.m3u8", s.addr);
        let frame = gray(Path::new(&hls), "null", Some(start + 0.05));
        let diff: f64 = tile
            .iter()
            .zip(&frame)
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum::<f64>()
            / tile.len() as f64;
        assert!(
            diff < 24.0,
            "tile at {start}s differs from the frame by {diff}"
        );
    }
    assert!(
        (end - duration).abs() < 1e-3,
        "cues end at {end}, the video at {duration}"
    );
}

#[test]
fn the_mp4_download_decodes_whole_with_its_index_first() {
    let s = Server::start(&[]);
    let (id, rec) = ready(&s, &two_languages());
    let url = rec["download_url"].as_str().unwrap();
    assert_eq!(url, format!("http://{}/play/{id}/download.mp4", s.addr));
    let r = s.get(&format!("/play/{id}/download.mp4"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    let cd = r.header("content-disposition").unwrap();
    assert!(
        cd.starts_with("attachment; filename=\"") && cd.contains(".mp4"),
        "{cd}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("download.mp4");
    std::fs::write(&file, &r.body).unwrap();
    assert_eq!(decode_errors(&file), "");
    let moov = r.body.windows(4).position(|w| w == b"moov").unwrap();
    let mdat = r.body.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov < mdat, "moov at {moov}, mdat at {mdat}");
    let p = ffprobe(
        &file,
        &["-show_entries", "stream=codec_type,duration,r_frame_rate"],
    );
    let streams = p["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2, "{p}");
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    let d: f64 = video["duration"].as_str().unwrap().parse().unwrap();
    let hls = rec["output"]["duration"].as_f64().unwrap();
    assert!(
        (d - hls).abs() <= 1.0 / 30.0 + 1e-3,
        "download {d} s, HLS {hls} s"
    );
    // Ranges work, as for segments.
    let r = request(
        s.addr,
        "GET",
        &format!("/play/{id}/download.mp4"),
        &[("Range", "bytes=0-99")],
        &[],
    );
    assert_eq!((r.status, r.body.len()), (206, 100));
}

#[test]
fn downloads_can_be_turned_off_and_signing_covers_the_new_files() {
    let s = Server::start(&[
        "--downloads",
        "off",
        "--signing-key",
        "a-signing-key-for-tests",
        "--allow-open-api",
    ]);
    let r = upload(s.addr, &std::fs::read(srt_in_mkv()).unwrap(), FAST);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert!(rec.get("download_url").is_none(), "{rec}");
    let sb = rec["storyboard_url"].as_str().unwrap();
    let token = sb.split("token=").nth(1).unwrap();
    // Without the token nothing is served; with it the storyboard's
    // sheets and every caption URI carry it.
    assert_eq!(s.get(&format!("/play/{id}/storyboard.vtt")).status, 403);
    let vtt = s
        .get(&format!("/play/{id}/storyboard.vtt?token={token}"))
        .text();
    assert!(
        vtt.contains(&format!("storyboard_0.jpg?token={token}#xywh=")),
        "{vtt}"
    );
    let master = s
        .get(&format!("/play/{id}/video.m3u8?token={token}"))
        .text();
    let subs = master
        .lines()
        .find(|l| l.contains("TYPE=SUBTITLES"))
        .unwrap();
    assert!(subs.contains(&format!("?token={token}")), "{subs}");
    assert_eq!(
        s.get(&format!("/play/{id}/download.mp4?token={token}"))
            .status,
        404
    );
    assert!(!s.storage.path().join(&id).join("download.mp4").exists());
}

/// `mp4` with every duration its header gives (`mvhd`, `tkhd`, `mdhd`,
/// version 0) cut to a quarter: a container that says less than its
/// frames hold (libavformat probes the short length, and decodes them all).
fn short_header(mut mp4: Vec<u8>) -> Vec<u8> {
    let quarter = |b: &mut [u8], at: usize| {
        let d = u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
        b[at..at + 4].copy_from_slice(&(d / 4).to_be_bytes());
    };
    // Offsets of the duration from the box's type: version and flags,
    // then times, timescale and ids (ISO/IEC 14496-12, version 0).
    for (tag, offset) in [(b"mvhd", 20), (b"mdhd", 20), (b"tkhd", 24)] {
        let mut at = 0;
        while let Some(i) = mp4[at..].windows(4).position(|w| w == tag) {
            let i = at + i;
            assert_eq!(mp4[i + 4], 0, "a version 0 box");
            quarter(&mut mp4, i + offset);
            at = i + 4;
        }
    }
    mp4
}

#[test]
fn captions_sent_while_a_short_probed_video_processes_keep_their_later_cues() {
    let s = Server::start(&["--segment-seconds", "2"]);
    let data = short_header(h264_mp4(12, "320x240", true));
    let upload = PartialUpload::start(s.addr, &data, data.len() / 2);
    let id = wait_for("the video's folder", || {
        s.storage_entries()
            .into_iter()
            .find(|e| !e.starts_with('.'))
    });
    let r = wait_for("the upload to be recognised as a video", || {
        let r = put_captions(&s, &id, "de", VTT.as_bytes());
        (r.status != 404 && r.status != 503).then_some(r)
    });
    assert_eq!(r.status, 201, "{}", r.text());
    let probed = r.json()["source"]["duration"].as_f64().unwrap();
    assert!(probed < 4.0, "the probe saw {probed} s");
    assert_eq!(upload.finish().status, 201);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    let real = rec["output"]["duration"].as_f64().unwrap();
    assert!((real - 12.0).abs() < 0.2, "{rec}");
    // The cue from 7 s, past the probed length, is there, clipped to the
    // real one; the one past the end is not.
    let de = &rec["captions"][0];
    let playlist = format!("{}/v{}.m3u8", de["dir"].as_str().unwrap(), de["version"]);
    let got = track_cues(&s, &id, &playlist);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], (2.0, 4.0, "Bonjour".to_string()));
    assert_eq!((got[1].0, got[1].2.as_str()), (7.0, "Jusqu'au bout"));
    assert!((got[1].1 - real).abs() < 0.1, "{got:?}");
    assert_timestamp_map(&s, &id, &rec, &playlist);
}

#[test]
fn a_caption_that_claims_to_last_for_ages_is_cut_at_the_longest_video() {
    let s = Server::start(&["--segment-seconds", "2", "--max-duration-secs", "60"]);
    let data = h264_mp4(4, "160x120", true);
    // A resumable upload that has sent nothing: not recognised yet, so no
    // captions (503 with Retry-After, as the README says).
    let len = data.len().to_string();
    let tus = ("Tus-Resumable", "1.0.0");
    let r = request(
        s.addr,
        "POST",
        "/files",
        &[tus, ("Upload-Length", &len)],
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let vtt = "WEBVTT\n\n00:00.000 --> 1000000:00:00.000\nforever\n";
    let r = put_captions(&s, &id, "en", vtt.as_bytes());
    r.assert_error(503, "not_ready");
    assert!(r.header("retry-after").is_some());
    // Half of it sent: recognised, but still receiving. The cue is cut at
    // the longest video there can be, in a bounded number of windows.
    let half = &data[..data.len() / 2];
    let octets = ("Content-Type", "application/offset+octet-stream");
    let head = [tus, octets, ("Upload-Offset", "0")];
    let r = request(s.addr, "PATCH", &format!("/files/{id}"), &head, half);
    assert_eq!(r.status, 204, "{}", r.text());
    let r = wait_for("the upload to be recognised", || {
        let r = put_captions(&s, &id, "en", vtt.as_bytes());
        (r.status != 503).then_some(r)
    });
    assert_eq!(r.status, 201, "{}", r.text());
    let playlist = format!("cc-en/v{}.m3u8", r.json()["captions"][0]["version"]);
    let text = s.get(&format!("/play/{id}/{playlist}")).text();
    let windows = extinfs(&text);
    assert!(!windows.is_empty() && windows.len() <= 30, "{text}");
    let total: f64 = windows.iter().map(|w| w.0).sum();
    assert!((total - 60.0).abs() < 0.01, "{text}");
}
