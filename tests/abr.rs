//! Adaptive bitrate: the ladder, the master playlist's measured attributes,
//! keyframe alignment across rungs, I-frame playlists, the copy fast path
//! and fMP4 segments. Every check decodes what the server serves over HTTP
//! with the ffmpeg/ffprobe CLIs.

use crate::common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `secs` of `testsrc2` at `size` with a tone, H.264 (ultrafast) with a
/// keyframe every `gop` frames, AAC, in `container` (`mp4` or `ts`).
fn source(secs: u32, size: &str, gop: u32, extra: &[&str], container: &str) -> PathBuf {
    let name = format!("abr-{secs}s-{size}-g{gop}-{}.{container}", extra.join("_"));
    let (src, secs, gop) = (
        format!("testsrc2=size={size}:rate=30"),
        secs.to_string(),
        gop.to_string(),
    );
    let mut args: Vec<&str> = vec![
        "-f",
        "lavfi",
        "-i",
        &src,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        &secs,
        "-ac",
        "2",
        "-c:a",
        "aac",
        "-g",
        &gop,
        "-keyint_min",
        &gop,
        "-sc_threshold",
        "0",
    ];
    if !extra.contains(&"-c:v") {
        args.extend([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ]);
    }
    args.extend(extra);
    if container == "mp4" {
        // moov first, so a slow upload can be transcoded as it arrives.
        args.extend(["-movflags", "+faststart"]);
    }
    fixture_path(&name, &args)
}

/// One `#EXT-X-STREAM-INF` / `#EXT-X-I-FRAME-STREAM-INF` entry.
#[derive(Debug, Clone)]
struct Inf {
    attrs: HashMap<String, String>,
    uri: String,
}

/// Attribute list of an HLS tag (RFC 8216 §4.2), quoted strings unquoted.
fn attributes(list: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = list;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().to_owned();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap();
            (q[..end].to_owned(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        out.insert(key, value);
        rest = next.trim_start_matches(',');
    }
    out
}

/// The master playlist's variants and I-frame streams.
fn master(text: &str) -> (Vec<Inf>, Vec<Inf>) {
    assert!(text.starts_with("#EXTM3U"), "{text}");
    assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let mut variants = Vec::new();
    let mut iframes = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(a) = l.strip_prefix("#EXT-X-STREAM-INF:") {
            variants.push(Inf {
                attrs: attributes(a),
                uri: lines[i + 1].to_owned(),
            });
        } else if let Some(a) = l.strip_prefix("#EXT-X-I-FRAME-STREAM-INF:") {
            let attrs = attributes(a);
            let uri = attrs["URI"].clone();
            iframes.push(Inf { attrs, uri });
        }
    }
    (variants, iframes)
}

/// Downloads `/play/{id}/{path}` into `dir`, returns the file.
fn fetch(s: &Server, id: &str, path: &str, dir: &Path) -> PathBuf {
    let r = s.get(&format!("/play/{id}/{path}"));
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    let f = dir.join(path.replace('/', "_"));
    std::fs::write(&f, &r.body).unwrap();
    f
}

/// Video packets of a file: (pts seconds, keyframe).
fn video_packets(path: &Path) -> Vec<(f64, bool)> {
    let v = ffprobe(
        path,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags",
        ],
    );
    v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["pts_time"].as_str().unwrap().parse().unwrap(),
                p["flags"].as_str().unwrap().starts_with('K'),
            )
        })
        .collect()
}

/// What one variant turned out to be, measured from its files.
struct Measured {
    width: u64,
    height: u64,
    frames: usize,
    duration: f64,
    peak_bps: f64,
    avg_bps: f64,
    /// First video pts of each segment.
    starts: Vec<f64>,
    keyframes: usize,
    codec: String,
    pix_fmt: String,
    profile: String,
    level: i64,
    audio_profile: Option<String>,
}

/// Fetches a variant playlist and all its segments, and measures them.
fn measure(s: &Server, id: &str, uri: &str, dir: &Path) -> Measured {
    let text = s.get(&format!("/play/{id}/{uri}")).text();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{text}");
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
    let base = uri
        .rsplit_once('/')
        .map_or(String::new(), |(b, _)| format!("{b}/"));
    let (mut peak, mut bits, mut secs) = (0f64, 0f64, 0f64);
    let (mut frames, mut keyframes) = (0, 0);
    let mut starts = Vec::new();
    let mut first = None;
    for (d, name) in extinfs(&text) {
        let f = fetch(s, id, &format!("{base}{name}"), dir);
        let b = std::fs::metadata(&f).unwrap().len() as f64 * 8.0;
        peak = peak.max(b / d);
        bits += b;
        secs += d;
        let p = video_packets(&f);
        assert!(p[0].1, "{uri} {name} does not start with a keyframe");
        starts.push(p.iter().map(|x| x.0).fold(f64::INFINITY, f64::min));
        frames += p.len();
        keyframes += p.iter().filter(|x| x.1).count();
        first.get_or_insert(f);
    }
    let first = first.unwrap();
    let st = ffprobe(
        &first,
        &[
            "-show_entries",
            "stream=codec_type,codec_name,pix_fmt,width,height,profile,level",
        ],
    );
    let streams = st["streams"].as_array().unwrap();
    let v = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    let a = streams.iter().find(|s| s["codec_type"] == "audio");
    Measured {
        width: v["width"].as_u64().unwrap(),
        height: v["height"].as_u64().unwrap(),
        frames,
        duration: secs,
        peak_bps: peak,
        avg_bps: bits / secs,
        starts,
        keyframes,
        codec: v["codec_name"].as_str().unwrap().to_owned(),
        pix_fmt: v["pix_fmt"].as_str().unwrap().to_owned(),
        profile: v["profile"].as_str().unwrap().to_owned(),
        level: v["level"].as_i64().unwrap(),
        audio_profile: a.map(|a| a["profile"].as_str().unwrap().to_owned()),
    }
}

/// `avc1.PPCCLL` → (profile_idc, level_idc).
fn avc1(codecs: &str) -> (u8, u8) {
    let c = codecs
        .split(',')
        .find_map(|c| c.strip_prefix("avc1."))
        .unwrap_or_else(|| panic!("no avc1 in {codecs}"));
    assert_eq!(c.len(), 6, "{codecs}");
    let byte = |i: usize| u8::from_str_radix(&c[i..i + 2], 16).unwrap();
    (byte(0), byte(4))
}

fn profile_idc(name: &str) -> u8 {
    match name {
        "High" => 100,
        "Main" => 77,
        "Baseline" | "Constrained Baseline" => 66,
        other => panic!("unexpected profile {other}"),
    }
}

fn within(a: f64, b: f64, frac: f64) -> bool {
    (a - b).abs() <= b * frac
}

/// Checks every variant of `id` against what the master says, and the
/// keyframe alignment across rungs; returns the measurements by URI.
fn check_master(s: &Server, id: &str, source_frames: usize) -> Vec<(Inf, Measured)> {
    let dir = tempfile::tempdir().unwrap();
    let text = s.get(&format!("/play/{id}/video.m3u8")).text();
    let (variants, iframes) = master(&text);
    let mut out = Vec::new();
    for v in &variants {
        let m = measure(s, id, &v.uri, dir.path());
        let a = &v.attrs;
        assert_eq!(
            a["RESOLUTION"],
            format!("{}x{}", m.width, m.height),
            "{text}"
        );
        let bw: f64 = a["BANDWIDTH"].parse().unwrap();
        let avg: f64 = a["AVERAGE-BANDWIDTH"].parse().unwrap();
        assert!(
            within(bw, m.peak_bps, 0.10),
            "BANDWIDTH {bw} vs measured peak {}",
            m.peak_bps
        );
        assert!(
            within(avg, m.avg_bps, 0.10),
            "AVERAGE-BANDWIDTH {avg} vs {}",
            m.avg_bps
        );
        let fr: f64 = a["FRAME-RATE"].parse().unwrap();
        assert!((fr - 30.0).abs() < 0.01, "{text}");
        let (p, l) = avc1(&a["CODECS"]);
        assert_eq!(
            p,
            profile_idc(&m.profile),
            "{} vs {}",
            a["CODECS"],
            m.profile
        );
        assert_eq!(
            i64::from(l),
            m.level,
            "{} vs level {}",
            a["CODECS"],
            m.level
        );
        if let Some(ap) = &m.audio_profile {
            assert_eq!(ap, "LC");
            assert!(a["CODECS"].contains("mp4a.40.2"), "{text}");
        }
        assert_eq!(m.frames, source_frames, "{}", v.uri);
        assert!(
            (m.duration - source_frames as f64 / 30.0).abs() < 0.1,
            "{}",
            m.duration
        );
        out.push((v.clone(), m));
    }
    // Segment N of every rung starts at the same instant (within a frame).
    let top = &out[0].1.starts;
    for (v, m) in &out[1..] {
        assert_eq!(m.starts.len(), top.len(), "{} segment count", v.uri);
        for (i, (a, b)) in m.starts.iter().zip(top).enumerate() {
            assert!(
                (a - b).abs() <= 1.0 / 30.0 + 1e-6,
                "{} segment {i}: {a} vs {b}",
                v.uri
            );
        }
    }
    // One I-frame playlist per rung; each byte range is one decodable IDR.
    assert_eq!(iframes.len(), variants.len(), "{text}");
    for (inf, (v, m)) in iframes.iter().zip(&out) {
        assert_eq!(inf.attrs["RESOLUTION"], v.attrs["RESOLUTION"]);
        let text = s.get(&format!("/play/{id}/{}", inf.uri)).text();
        assert!(text.contains("#EXT-X-I-FRAMES-ONLY"), "{text}");
        let base = inf.uri.rsplit_once('/').unwrap().0;
        let lines: Vec<&str> = text.lines().collect();
        let mut count = 0;
        for (i, l) in lines.iter().enumerate() {
            let Some(range) = l.strip_prefix("#EXT-X-BYTERANGE:") else {
                continue;
            };
            let (len, off) = range.split_once('@').unwrap();
            let (len, off): (u64, u64) = (len.parse().unwrap(), off.parse().unwrap());
            let r = request(
                s.addr,
                "GET",
                &format!("/play/{id}/{base}/{}", lines[i + 1]),
                &[("Range", &format!("bytes={off}-{}", off + len - 1))],
                &[],
            );
            assert_eq!(r.status, 206);
            let f = dir.path().join(format!("iframe-{count}.ts"));
            std::fs::write(&f, &r.body).unwrap();
            let p = video_packets(&f);
            assert_eq!(p.len(), 1, "{} entry {count}", inf.uri);
            assert!(p[0].1);
            let dec = ffprobe(
                &f,
                &[
                    "-count_frames",
                    "-select_streams",
                    "v:0",
                    "-show_entries",
                    "stream=nb_read_frames",
                ],
            );
            assert_eq!(dec["streams"][0]["nb_read_frames"], "1", "{}", inf.uri);
            count += 1;
        }
        assert_eq!(count, m.keyframes, "{}", inf.uri);
    }
    out
}

fn rungs(rec: &serde_json::Value) -> Vec<String> {
    rec["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}x{}",
                r["name"].as_str().unwrap(),
                r["width"],
                r["height"]
            )
        })
        .collect()
}

#[test]
fn a_1080p_source_gets_four_aligned_rungs_with_measured_attributes() {
    let src = source(4, "1920x1080", 30, &[], "mp4");
    let s = Server::start(&[
        "--copy",
        "never",
        "--segment-seconds",
        "2",
        "--x264-preset",
        "ultrafast",
    ]);
    let id = upload_ok(&s, &std::fs::read(&src).unwrap(), FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(
        rungs(&rec),
        [
            "1080p:1920x1080",
            "720p:1280x720",
            "480p:854x480",
            "360p:640x360"
        ]
    );
    assert_eq!(rec["copied"], false);
    assert_eq!(rec["copy_note"], "copy disabled (--copy never)");
    let out = check_master(&s, &id, 120);
    assert_eq!(out.len(), 4);
    // The record carries the same measured numbers as the master.
    for (r, (v, _)) in rec["renditions"].as_array().unwrap().iter().zip(&out) {
        assert_eq!(r["bandwidth"].to_string(), v.attrs["BANDWIDTH"]);
        assert_eq!(r["codecs"], v.attrs["CODECS"]);
        assert_eq!(r["progress"], 1.0);
    }
    // Bit rates fall with the rungs.
    let peaks: Vec<f64> = out.iter().map(|(_, m)| m.avg_bps).collect();
    assert!(peaks.windows(2).all(|w| w[0] > w[1]), "{peaks:?}");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

#[test]
fn a_480p_source_is_not_upscaled_and_a_tiny_one_is_a_single_rendition() {
    let s = Server::start(&["--copy", "never", "--x264-preset", "ultrafast"]);
    let id = upload_ok(
        &s,
        &std::fs::read(source(4, "854x480", 30, &[], "mp4")).unwrap(),
        FAST,
    );
    let rec = s.wait_done(&id);
    assert_eq!(rungs(&rec), ["480p:854x480", "360p:640x360"]);
    check_master(&s, &id, 120);

    let id = upload_ok(
        &s,
        &std::fs::read(source(4, "160x120", 30, &[], "mp4")).unwrap(),
        FAST,
    );
    let rec = s.wait_done(&id);
    assert_eq!(rungs(&rec), ["120p:160x120"]);
    // One rendition: video.m3u8 is its media playlist (no master).
    let text = s.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(!text.contains("#EXT-X-STREAM-INF"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let m = measure(&s, &id, "video.m3u8", dir.path());
    assert_eq!((m.width, m.height, m.frames), (160, 120, 120));
}

#[test]
fn an_explicit_ladder_is_followed_without_upscaling() {
    let s = Server::start(&["--ladder", "1080,480,240", "--x264-preset", "ultrafast"]);
    let id = upload_ok(
        &s,
        &std::fs::read(source(2, "854x480", 30, &[], "mp4")).unwrap(),
        FAST,
    );
    let rec = s.wait_done(&id);
    // The source's 1 s GOP makes it copyable: 480p is the copy.
    assert_eq!(rungs(&rec), ["480p:854x480", "240p:428x240"]);
    assert_eq!(rec["renditions"][0]["copied"], true);
    let s2 = Server::start(&["--ladder", "source"]);
    let id = upload_ok(&s2, &h264_mp4(2, "320x240", true), FAST);
    assert_eq!(rungs(&s2.wait_done(&id)), ["240p:320x240"]);
}

#[test]
fn an_eligible_source_is_copied_bit_for_bit_into_the_top_rung() {
    let src = source(12, "1280x720", 60, &[], "mp4");
    let s = Server::start(&["--x264-preset", "ultrafast"]);
    let id = upload_ok(&s, &std::fs::read(&src).unwrap(), FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["copied"], true, "{rec}");
    assert!(rec.get("copy_note").is_none(), "{rec}");
    assert_eq!(
        rungs(&rec),
        ["720p:1280x720", "480p:854x480", "360p:640x360"]
    );
    assert_eq!(rec["renditions"][0]["copied"], true);
    assert_eq!(rec["renditions"][1]["copied"], false);
    // Encoded rungs cut where the copied one does (the source's keyframes).
    check_master(&s, &id, 360);
    // The top rung's packets are the source's: same bytes, packet by packet
    // (both through the same Annex B conversion and TS muxer).
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref.ts");
    let ok = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&src)
        .args([
            "-map",
            "0:v",
            "-c",
            "copy",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "mpegts",
        ])
        .arg(&reference)
        .status()
        .unwrap();
    assert!(ok.success());
    let hashes = |input: &str| -> Vec<String> {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i", input])
            .args(["-map", "0:v", "-c", "copy", "-f", "framemd5", "-"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            // stream, dts, pts, duration, size, hash[, side data…]
            .map(|l| l.split(',').nth(5).unwrap().trim().to_owned())
            .collect()
    };
    let ours = hashes(&format!("http://{}/play/{id}/720p/video.m3u8", s.addr));
    let theirs = hashes(reference.to_str().unwrap());
    assert_eq!(ours.len(), 360);
    assert_eq!(ours, theirs);
}

/// The copy path is taken when it can be and not when told not to (how
/// much faster it is lives in `benches/cli_compare.rs` and BENCHMARKS.md).
#[test]
fn the_copy_path_is_taken_unless_turned_off() {
    let src = std::fs::read(source(12, "1280x720", 60, &[], "mp4")).unwrap();
    for copy in ["auto", "never"] {
        let s = Server::start(&["--ladder", "source", "--copy", copy]);
        let id = upload_ok(&s, &src, FAST);
        let rec = s.wait_done(&id);
        assert_eq!(rec["status"], "ready", "{rec}");
        assert_eq!(rec["copied"], copy == "auto", "{rec}");
        assert_eq!(rec["renditions"][0]["copied"], copy == "auto", "{rec}");
        assert!(rec["output"]["processing_seconds"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn ineligible_sources_are_encoded() {
    let s = Server::start(&["--ladder", "source", "--x264-preset", "ultrafast"]);
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        // 10 s GOP with 6 s segments: known from the mp4 index.
        (
            "long GOP",
            source(12, "640x360", 300, &[], "mp4"),
            "keyframes",
        ),
        // The same in MPEG-TS (no index): found while copying, then redone.
        (
            "long GOP (ts)",
            source(12, "640x360", 300, &[], "ts"),
            "keyframes",
        ),
        (
            "10-bit",
            source(
                4,
                "640x360",
                30,
                &["-c:v", "libx264", "-pix_fmt", "yuv420p10le"],
                "mp4",
            ),
            "4:2:0",
        ),
        (
            "HEVC",
            source(
                4,
                "640x360",
                30,
                &["-c:v", "libx265", "-x265-params", "log-level=error"],
                "mp4",
            ),
            "not H.264",
        ),
    ];
    for (what, path, why) in cases {
        let id = upload_ok(&s, &std::fs::read(&path).unwrap(), FAST);
        let rec = s.wait_done(&id);
        assert_eq!(rec["status"], "ready", "{what}: {rec}");
        assert_eq!(rec["copied"], false, "{what}: {rec}");
        let note = rec["copy_note"].as_str().unwrap_or_default();
        assert!(note.contains(why), "{what}: {note}");
        let dir = tempfile::tempdir().unwrap();
        let m = measure(&s, &id, "video.m3u8", dir.path());
        // Encoded: 8-bit H.264 with our 2 s keyframe grid.
        assert_eq!(
            (m.codec.as_str(), m.pix_fmt.as_str()),
            ("h264", "yuv420p"),
            "{what}"
        );
        profile_idc(&m.profile);
        assert_eq!(m.keyframes, (m.duration / 2.0).ceil() as usize, "{what}");
        assert!(m.frames >= 119, "{what}: {}", m.frames);
    }
}

#[test]
fn fmp4_segments_play() {
    let s = Server::start(&[
        "--segment-format",
        "fmp4",
        "--copy",
        "never",
        "--x264-preset",
        "ultrafast",
    ]);
    let id = upload_ok(
        &s,
        &std::fs::read(source(4, "640x360", 30, &[], "mp4")).unwrap(),
        FAST,
    );
    let rec = s.wait_done(&id);
    assert_eq!(rungs(&rec), ["360p:640x360"]);
    let text = s.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{text}");
    let segs = extinfs(&text);
    assert!(segs.iter().all(|(_, n)| n.ends_with(".m4s")), "{text}");
    let init = s.get(&format!("/play/{id}/init.mp4"));
    assert_eq!(init.header("content-type"), Some("video/mp4"));
    let seg = s.get(&format!("/play/{id}/{}", segs[0].1));
    assert_eq!(seg.header("content-type"), Some("video/iso.segment"));
    // Init + first segment decode on their own.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("joined.mp4");
    std::fs::write(&f, [init.body, seg.body].concat()).unwrap();
    let p = video_packets(&f);
    assert!(p[0].1 && p.len() >= 30, "{}", p.len());
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
    // With a ladder too.
    let s = Server::start(&[
        "--segment-format",
        "fmp4",
        "--ladder",
        "360,240",
        "--x264-preset",
        "ultrafast",
    ]);
    let id = upload_ok(
        &s,
        &std::fs::read(source(4, "640x360", 30, &[], "mp4")).unwrap(),
        FAST,
    );
    s.wait_done(&id);
    let text = s.get(&format!("/play/{id}/360p/video.m3u8")).text();
    assert!(text.contains("#EXT-X-MAP"), "{text}");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

/// The master is published while the upload is still arriving, once every
/// rung has a segment; its variants grow as EVENT playlists, and the record
/// shows each rung's progress.
#[test]
fn the_master_playlist_and_rung_progress_appear_while_uploading() {
    let data = std::fs::read(source(12, "1280x720", 60, &[], "mp4")).unwrap();
    let s = Server::start(&[
        "--segment-seconds",
        "2",
        "--copy",
        "never",
        "--x264-preset",
        "ultrafast",
    ]);
    // Half the body goes now; the rest only once the test has seen what it
    // must see while the upload is arriving.
    let upload = PartialUpload::start(s.addr, &data, data.len() / 2);
    let id = s.wait_video_folder();
    // Long-polls until the master exists (never a 404 for a video whose
    // folder exists: 200, or 503 not_ready while the job has not started).
    let r = wait_for("the master playlist", || {
        let r = s.get(&format!("/play/{id}/video.m3u8"));
        assert!(
            r.status == 200 || r.status == 503,
            "{}: {}",
            r.status,
            r.text()
        );
        (r.status == 200).then_some(r)
    });
    let (variants, _) = master(&r.text());
    assert_eq!(variants.len(), 3);
    let v = s.get(&format!("/play/{id}/{}", variants[2].uri)).text();
    assert!(v.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{v}");
    assert!(!v.contains("#EXT-X-ENDLIST"));
    let rec = s.wait_record(&id, "every rung's progress", |rec| {
        let r = rec["renditions"].as_array().unwrap();
        r.len() == 3 && r.iter().all(|x| x["progress"].as_f64().unwrap() > 0.0)
    });
    assert_eq!(rec["status"], "receiving", "{rec}");
    let r = rec["renditions"].as_array().unwrap();
    let least = r
        .iter()
        .map(|x| x["progress"].as_f64().unwrap())
        .fold(1.0, f64::min);
    assert!(least > 0.0 && least < 1.0, "{rec}");
    assert!(
        (rec["progress"].as_f64().unwrap() - least).abs() < 1e-9,
        "{rec}"
    );
    assert_eq!(upload.finish().status, 201);
    assert_eq!(s.wait_done(&id)["status"], "ready");
}

#[test]
fn encrypted_ladders_have_a_key_series_per_rung() {
    let s = Server::start(&["--encrypt", "--ladder", "240,144", "--copy", "never"]);
    let id = upload_ok(&s, &h264_mp4(4, "320x240", true), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let mut keys = Vec::new();
    for rung in ["240p", "144p"] {
        let text = s.get(&format!("/play/{id}/{rung}/video.m3u8")).text();
        let uri = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-KEY:"))
            .map(attributes)
            .unwrap()["URI"]
            .clone();
        let key = s.get(&uri);
        assert_eq!(key.status, 200, "{uri}");
        assert_eq!(key.body.len(), 16);
        keys.push(key.body);
    }
    assert_ne!(keys[0], keys[1]);
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

/// Each rendition of `id`, top first, as an H.264 elementary stream: the
/// video copied out of the served HLS stream by the ffmpeg CLI.
fn rung_streams(s: &Server, id: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    lint_playlist("video.m3u8", &master);
    let uris: Vec<String> = if master.contains("#EXT-X-STREAM-INF") {
        master
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        vec!["video.m3u8".into()]
    };
    let dir = tempfile::tempdir().unwrap();
    let streams = uris
        .iter()
        .map(|uri| {
            let out = dir.path().join(format!("{}.h264", uri.replace('/', "_")));
            let status = std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-allowed_extensions", "ALL", "-i"])
                .arg(format!("http://{}/play/{id}/{uri}", s.addr))
                .args(["-map", "0:v", "-c", "copy", "-f", "h264"])
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success(), "{uri}");
            out
        })
        .collect();
    (dir, streams)
}

/// x264's options (the text of its SEI in the first picture) of each
/// rendition of `id`, top first, and whether its sequence header says its
/// frames come at a fixed rate (`fixed_frame_rate_flag`, read by the ffmpeg
/// CLI's `trace_headers`).
fn x264_options(s: &Server, id: &str) -> Vec<(String, bool)> {
    let (_dir, streams) = rung_streams(s, id);
    streams
        .iter()
        .map(|h264| {
            let bytes = std::fs::read(h264).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            let at = text
                .find("options: ")
                .unwrap_or_else(|| panic!("{}: no x264 SEI", h264.display()));
            let trace = std::process::Command::new("ffmpeg")
                .args(["-hide_banner", "-i"])
                .arg(h264)
                .args(["-c", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"])
                .output()
                .unwrap();
            assert!(trace.status.success(), "{}", h264.display());
            let flags: Vec<bool> = String::from_utf8_lossy(&trace.stderr)
                .lines()
                .filter(|l| l.contains(" fixed_frame_rate_flag "))
                .map(|l| l.trim_end().ends_with("= 1"))
                .collect();
            assert!(!flags.is_empty(), "{}: no timing info", h264.display());
            let fixed = flags.iter().all(|&f| f);
            assert!(fixed || flags.iter().all(|&f| !f), "{flags:?}");
            (text[at..].split('\0').next().unwrap().to_owned(), fixed)
        })
        .collect()
}

/// One x264 option's value in an options string (`threads=2` → "2").
fn option<'a>(options: &'a str, name: &str) -> &'a str {
    options
        .split_whitespace()
        .find_map(|o| o.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {options}"))
}

#[test]
fn encoders_bound_their_lookahead_and_a_ladders_threads() {
    let src = std::fs::read(source(2, "854x480", 30, &[], "mp4")).unwrap();
    // A ladder of a constant rate source: each rung looks 5 frames ahead
    // (veryfast's own is 10), never slices its frames, has no B-pyramid and
    // says its rate is fixed (issue 17: memory without a cost in quality).
    let vf = ["--x264-preset", "veryfast"];
    let s = Server::start(&[&vf[..], &["--ladder", "480,360", "--copy", "never"]].concat());
    let id = upload_ok(&s, &src, FAST);
    s.wait_done(&id);
    let rungs = x264_options(&s, &id);
    assert_eq!(rungs.len(), 2);
    for (o, fixed) in &rungs {
        assert_eq!(option(o, "rc_lookahead"), "5", "{o}");
        assert_eq!(option(o, "sliced_threads"), "0", "{o}");
        assert_eq!(option(o, "b_pyramid"), "0", "{o}");
        assert!(fixed, "{o}");
    }
    // A rung alone keeps frame threads; the cap never raises a preset's
    // own lookahead, and 0 turns the lookahead (and so mbtree) off. A
    // variable rate source (a third of each second's frames dropped) keeps
    // its timestamps' durations; `--x264-b-pyramid` gives the pyramid back.
    let vfr = std::fs::read(source(
        2,
        "854x480",
        30,
        &["-vf", "select='lt(mod(n,30),20)'", "-fps_mode", "vfr"],
        "mp4",
    ))
    .unwrap();
    for (cap, pyramid, upload) in [("30", "normal", &vfr), ("0", "none", &src)] {
        let alone = ["--ladder", "source", "--copy", "never"];
        let flags = ["--x264-lookahead", cap, "--x264-b-pyramid", pyramid];
        let s = Server::start(&[&vf[..], &alone[..], &flags[..]].concat());
        let id = upload_ok(&s, upload, FAST);
        s.wait_done(&id);
        let (o, fixed) = &x264_options(&s, &id)[0];
        assert_eq!(option(o, "sliced_threads"), "0", "{o}");
        match cap {
            "30" => {
                assert_eq!(option(o, "rc_lookahead"), "10", "{o}");
                assert_eq!(option(o, "b_pyramid"), "2", "{o}");
                assert!(!fixed, "{o}");
            }
            _ => {
                assert_eq!(option(o, "mbtree"), "0", "{o}");
                assert!(fixed, "{o}");
            }
        }
    }
    let (code, err) = exit_of(&["--x264-b-pyramid", "sideways"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = exit_of(&["--x264-lookahead", "251"]);
    assert_eq!(code, Some(2), "{err}");
}
