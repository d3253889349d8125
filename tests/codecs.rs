//! Issue 28: AV1 and HEVC codec groups beside the H.264 ladder. Each group
//! is a whole ladder in fMP4 with the H.264 ladder's rungs, cuts and
//! keyframes, listed in one master whose `CODECS` come from the init
//! segments' configuration boxes (checked here by a parser of our own);
//! each rendition decodes whole with the CLI. Uploads ask for groups
//! within what the server makes.

use crate::common::*;
use base64::Engine;

/// The body of the box at `path` (each a child of the one before; sample
/// entries inside `stsd` are walked past their fixed fields).
fn mp4_box<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> Option<&'a [u8]> {
    let (first, rest) = path.split_first()?;
    let mut i = 0;
    while i + 8 <= data.len() {
        let size = u32::from_be_bytes(data[i..i + 4].try_into().ok()?) as usize;
        if size < 8 || i + size > data.len() {
            return None;
        }
        let body = &data[i + 8..i + size];
        if &&data[i + 4..i + 8] == first {
            let skip = match *first {
                b"stsd" => 8,
                // VisualSampleEntry: 78 bytes before its child boxes.
                b"av01" | b"hvc1" => 78,
                _ => 0,
            };
            return if rest.is_empty() {
                Some(body)
            } else {
                mp4_box(body.get(skip..)?, rest)
            };
        }
        i += size;
    }
    None
}

/// The video `CODECS` an init segment's configuration box gives.
fn codec_string(init: &[u8]) -> String {
    let stbl: &[&[u8; 4]] = &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"];
    let with = |entry: &'static [u8; 4], conf: &'static [u8; 4]| {
        let mut p = stbl.to_vec();
        p.extend([entry, conf]);
        mp4_box(init, &p)
    };
    if let Some(c) = with(b"av01", b"av1C") {
        let depth = match (c[2] >> 6 & 1, c[2] >> 5 & 1) {
            (0, _) => "08",
            (1, 0) => "10",
            _ => "12",
        };
        let tier = ["M", "H"][usize::from(c[2] >> 7)];
        return format!("av01.{}.{:02}{tier}.{depth}", c[1] >> 5, c[1] & 31);
    }
    let c = with(b"hvc1", b"hvcC").expect("an av1C or hvcC box");
    let space = ["", "A", "B", "C"][usize::from(c[1] >> 6)];
    let mut compat = 0u32;
    for bit in 0..32 {
        let byte = c[2 + bit / 8];
        if byte & (0x80 >> (bit % 8)) != 0 {
            compat |= 1 << bit;
        }
    }
    let tier = if c[1] & 0x20 != 0 { "H" } else { "L" };
    let mut s = format!("hvc1.{space}{}.{compat:X}.{tier}{}", c[1] & 31, c[12]);
    let constraints = &c[6..12];
    let last = constraints
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..last] {
        s += &format!(".{b:X}");
    }
    s
}

/// `(CODECS, BANDWIDTH, URI)` of each variant of a master.
fn variants(master: &str) -> Vec<(String, u64, String)> {
    let lines: Vec<&str> = master.lines().collect();
    let attr = |l: &str, k: &str| {
        let at = l.find(&format!("{k}="))? + k.len() + 1;
        let v = &l[at..];
        Some(match v.strip_prefix('"') {
            Some(q) => q[..q.find('"')?].to_owned(),
            None => v.split(',').next()?.to_owned(),
        })
    };
    lines
        .windows(2)
        .filter(|w| w[0].starts_with("#EXT-X-STREAM-INF:"))
        .map(|w| {
            let bw = attr(w[0], "BANDWIDTH").unwrap().parse().unwrap();
            (attr(w[0], "CODECS").unwrap(), bw, w[1].to_owned())
        })
        .collect()
}

/// Keyframe times of a rendition, from its first packet.
fn keyframes(url: &str) -> Vec<f64> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries"])
        .args(["packet=pts_time,flags", "-of", "csv=p=0", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<(f64, bool)> = text
        .lines()
        .filter_map(|l| {
            let (t, f) = l.split_once(',')?;
            Some((t.parse().ok()?, f.starts_with('K')))
        })
        .collect();
    let first = rows.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    rows.iter().filter(|r| r.1).map(|r| r.0 - first).collect()
}

#[test]
fn codec_groups_share_the_ladders_cuts_and_say_their_codecs() {
    let s = Server::start(&[
        "--codecs",
        "h264,av1,hevc",
        "--ladder",
        "360,240",
        "--segment-seconds",
        "2",
    ]);
    let id = upload_ok(&s, &h264_mp4(6, "640x360", true), FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["codecs"], serde_json::json!(["h264", "av1", "hevc"]));
    let names: Vec<(&str, &str)> = rec["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["codec"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("360p", "h264"),
            ("240p", "h264"),
            ("av1-360p", "av1"),
            ("av1-240p", "av1"),
            ("hevc-360p", "hevc"),
            ("hevc-240p", "hevc"),
        ]
    );
    let base = format!("http://{}/play/{id}", s.addr);
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    let v = variants(&master);
    assert_eq!(v.len(), 6, "{master}");
    // One audio group (the source's one track), named by every variant.
    assert_eq!(
        master.matches("#EXT-X-MEDIA:TYPE=AUDIO").count(),
        1,
        "{master}"
    );
    assert_eq!(master.matches("AUDIO=\"aud\"").count(), 6, "{master}");
    let h264_cuts = extinfs(&s.get(&format!("/play/{id}/360p/video.m3u8")).text());
    let h264_keys = keyframes(&format!("{base}/360p/video.m3u8"));
    for (i, (codecs, bw, uri)) in v.iter().enumerate() {
        let rung = uri.split('/').next().unwrap();
        let media = s.get(&format!("/play/{id}/{uri}")).text();
        // The same cuts as the H.264 ladder, the same keyframes.
        let cuts = extinfs(&media);
        assert_eq!(cuts.len(), h264_cuts.len(), "{uri}");
        for (a, b) in cuts.iter().zip(&h264_cuts) {
            assert!(
                (a.0 - b.0).abs() < 0.05,
                "{uri}: {cuts:?} against {h264_cuts:?}"
            );
        }
        let keys = keyframes(&format!("{base}/{uri}"));
        assert_eq!(
            keys.len(),
            h264_keys.len(),
            "{uri}: {keys:?} against {h264_keys:?}"
        );
        for (a, b) in keys.iter().zip(&h264_keys) {
            assert!(
                (a - b).abs() < 0.05,
                "{uri}: {keys:?} against {h264_keys:?}"
            );
        }
        assert_cli_plays(&format!("{base}/{uri}"));
        // Video only: the audio is the group's.
        let streams = ffprobe(
            std::path::Path::new(&format!("{base}/{uri}")),
            &["-show_entries", "stream=codec_type"],
        );
        let kinds: Vec<&str> = streams["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["codec_type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["video"], "{uri}");
        if rung.contains('-') {
            let init = s.get(&format!("/play/{id}/{rung}/init.mp4"));
            assert_eq!(init.status, 200, "{rung}");
            assert_eq!(
                *codecs,
                format!("{},mp4a.40.2", codec_string(&init.body)),
                "{master}"
            );
        } else {
            assert!(codecs.starts_with("avc1."), "{master}");
        }
        // BANDWIDTH falls with the rung within each group.
        if i % 2 == 1 {
            assert!(*bw < v[i - 1].1, "{master}");
        }
    }
    // The download is the H.264 top rung with the group's audio.
    let dl = ffprobe(
        std::path::Path::new(&format!("{base}/download.mp4")),
        &["-show_entries", "stream=codec_name"],
    );
    let names: Vec<&str> = dl["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["h264", "aac"], "{dl}");
    // HEVC is tagged hvc1 (the parameter sets in the init segment).
    let probe = ffprobe(
        std::path::Path::new(&format!("{base}/hevc-360p/video.m3u8")),
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "stream=codec_name,codec_tag_string",
        ],
    );
    assert_eq!(probe["streams"][0]["codec_tag_string"], "hvc1", "{probe}");
}

/// `curl -F` fields, then the file; the status and the JSON answer.
fn post(s: &Server, fields: &[&str]) -> (u16, serde_json::Value) {
    let clip = h264_mp4_path(2, "160x120", true);
    let file = format!("video=@{};filename=clip.mp4", clip.display());
    let url = format!("http://{}/upload", s.addr);
    let mut args = vec!["-w", "\n%{http_code}", url.as_str()];
    for f in fields.iter().chain([&file.as_str()]) {
        args.extend(["-F", f]);
    }
    let text = curl(&args);
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), serde_json::from_str(body).unwrap())
}

fn groups(rec: &serde_json::Value) -> Vec<String> {
    let mut g: Vec<String> = rec["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["codec"].as_str().unwrap().to_owned())
        .collect();
    g.dedup();
    g
}

#[test]
fn uploads_ask_for_codec_groups_within_what_the_server_makes() {
    // A server that makes H.264 only refuses an upload asking for more.
    let plain = Server::start(&[]);
    for asked in ["codecs=av1", "codecs=h264,hevc", "codecs=vp9"] {
        let (code, body) = post(&plain, &[asked]);
        assert_eq!(
            (code, body["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{asked}: {body}"
        );
    }
    let s = Server::start(&["--codecs", "h264,hevc", "--ladder", "source"]);
    // Silent: what the server makes; asked: that much; more: 400.
    for (fields, want) in [
        (&[][..], vec!["h264", "hevc"]),
        (&["codecs=h264"][..], vec!["h264"]),
        (&["codecs=HEVC"][..], vec!["h264", "hevc"]),
    ] {
        let (code, body) = post(&s, fields);
        assert_eq!(code, 201, "{fields:?}: {body}");
        let rec = s.wait_done(body["id"].as_str().unwrap());
        assert_eq!(rec["status"], "ready", "{rec}");
        assert_eq!(groups(&rec), want, "{fields:?}: {rec}");
    }
    let (code, body) = post(&s, &["codecs=av1"]);
    assert_eq!(code, 400, "{body}");
    // After the file it would come too late.
    let clip = h264_mp4_path(2, "160x120", true);
    let file = format!("video=@{};filename=clip.mp4", clip.display());
    let url = format!("http://{}/upload", s.addr);
    let text = curl(&[
        "-w",
        "\n%{http_code}",
        &url,
        "-F",
        &file,
        "-F",
        "codecs=h264",
    ]);
    assert!(text.ends_with("\n400"), "{text}");
    // A tus upload says it in its metadata.
    let data = std::fs::read(&clip).unwrap();
    let meta = format!(
        "codecs {}",
        base64::engine::general_purpose::STANDARD.encode("h264")
    );
    let len = data.len().to_string();
    let h = [
        ("Tus-Resumable", "1.0.0"),
        ("Content-Type", "application/offset+octet-stream"),
        ("Upload-Length", len.as_str()),
        ("Upload-Metadata", meta.as_str()),
    ];
    let r = request(s.addr, "POST", "/files", &h, &data);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(groups(&s.wait_done(&id)), ["h264"]);
    // An encrypted video gets its groups too (encrypted by hlsd: see
    // an_encrypted_videos_codec_groups_are_encrypted_too).
    let (code, body) = post(&s, &["encrypt=1"]);
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        groups(&s.wait_done(body["id"].as_str().unwrap())),
        ["h264", "hevc"]
    );
}

/// The HEVC group plays whole in GStreamer's `playbin` (its HLS demuxer,
/// libav's HEVC decoder), as a GStreamer-based player would play it.
#[test]
fn gstreamer_plays_the_hevc_group_whole() {
    let s = Server::start(&[
        "--codecs",
        "h264,hevc",
        "--ladder",
        "240",
        "--segment-seconds",
        "2",
    ]);
    let id = upload_ok(&s, &h264_mp4(5, "320x240", true), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let url = format!("http://{}/play/{id}/hevc-240p/video.m3u8", s.addr);
    let out = std::process::Command::new("timeout")
        .args(["120", "gst-launch-1.0", "-v", "playbin"])
        .arg(format!("uri={url}"))
        .args(["video-sink=fakesink", "audio-sink=fakesink"])
        .output()
        .expect("gst-launch-1.0 (make test-deps)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Got EOS"), "{text}");
    assert!(
        !text.contains("ERROR") && !text.contains("WARNING"),
        "{text}"
    );
    assert!(text.contains("avdec_h265"), "no HEVC decoder ran:\n{text}");
}

/// On a bucket, a codec group lives beside the H.264 ladder: its init
/// segment and segments go up, and another node serves it whole.
#[test]
fn a_codec_group_lives_in_the_bucket_and_another_node_serves_it() {
    let s3 = crate::common::s3::S3Server::start();
    let a = s3.start_node(
        "lib",
        "node-a",
        &["--segment-seconds", "2", "--codecs", "h264,hevc"],
    );
    let b = s3.start_node("lib", "node-b", &["--cache-bytes", "0"]);
    let id = upload_ok(&a, &h264_mp4(4, "320x240", true), FAST);
    let rec = a.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    let keys = s3.keys_under(&format!("lib/{id}"));
    for k in [
        "hevc-240p/init.mp4",
        "hevc-240p/video.m3u8",
        "240p/video.m3u8",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
    }
    let master = b.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(
        master.contains("hevc-240p/video.m3u8") && master.contains("hvc1."),
        "{master}"
    );
    assert_cli_plays(&format!("http://{}/play/{id}/hevc-240p/video.m3u8", b.addr));
}

/// An AV1 source (what the AV1 group makes) is accepted and encoded as any
/// other: to the H.264 ladder alone by default, and to both with the group.
#[test]
fn an_av1_source_becomes_h264_and_its_own_group() {
    let av1 = fixture(
        "av1-source.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=3",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=3",
            "-c:v",
            "libsvtav1",
            "-preset",
            "12",
            "-c:a",
            "aac",
        ],
    );
    for (flags, want) in [
        (&[][..], vec!["h264"]),
        (&["--codecs", "h264,av1"][..], vec!["h264", "av1"]),
    ] {
        let s = Server::start(flags);
        let id = upload_ok(&s, &av1, FAST);
        let rec = s.wait_done(&id);
        assert_eq!(rec["status"], "ready", "{rec}");
        assert_eq!(rec["source"]["video"]["codec"], "av1", "{rec}");
        assert_eq!(groups(&rec), want, "{rec}");
        assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
    }
}

/// SVT-AV1's banner and settings stay out of the server's log, so a JSON
/// log stays JSON (its errors alone would show).
#[test]
fn svt_av1_keeps_out_of_the_servers_log() {
    let log = std::env::temp_dir().join(format!("hlsd-svt-{}.log", std::process::id()));
    let s = Server::process_logged(&["--codecs", "h264,av1", "--log-format", "json"], &log);
    let id = upload_ok(&s, &h264_mp4(2, "160x120", true), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(!text.contains("Svt["), "{text}");
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = serde_json::from_str::<serde_json::Value>(line);
        assert!(parsed.is_ok(), "not JSON: {line}");
    }
}

#[test]
fn an_encrypted_videos_codec_groups_are_encrypted_too() {
    let s = Server::start(&[
        "--codecs",
        "h264,hevc,av1",
        "--ladder",
        "240",
        "--segment-seconds",
        "2",
        "--encrypt",
        "--key-rotation-segments",
        "2",
    ]);
    let id = upload_ok(&s, &h264_mp4(5, "320x240", true), FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    let mut made = groups(&rec);
    made.sort();
    assert_eq!(made, ["av1", "h264", "hevc"], "{rec}");
    for group in ["hevc-240p", "av1-240p"] {
        let list = s.get(&format!("/play/{id}/{group}/video.m3u8")).text();
        // The init section stays clear (its EXT-X-MAP comes before any
        // key); a new key every two segments.
        let map = list.find("#EXT-X-MAP:").unwrap();
        let key = list.find("#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/").unwrap();
        assert!(map < key, "{list}");
        assert_eq!(list.matches("#EXT-X-KEY:").count(), 2, "{list}");
        let seg = list.lines().find(|l| l.ends_with(".m4s")).unwrap();
        let bytes = s.get(&format!("/play/{id}/{group}/{seg}")).body;
        assert!(
            bytes.len().is_multiple_of(16),
            "AES-CBC blocks: {}",
            bytes.len()
        );
        assert!(
            mp4_box(&bytes, &[b"moof"]).is_none(),
            "{group}: {seg} is not encrypted"
        );
        // Decrypted and decoded whole by the CLI (the key from /keys).
        assert_cli_plays(&format!("http://{}/play/{id}/{group}/video.m3u8", s.addr));
    }
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

/// Each entry of an fMP4 I-frame playlist: (its map, (segment, length,
/// offset)).
fn iframe_entries(list: &str) -> (String, Vec<(String, u64, u64)>) {
    let map = list
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .unwrap_or_else(|| panic!("no map in\n{list}"))
        .trim_end_matches('"')
        .to_owned();
    let mut out = Vec::new();
    let mut range = None;
    for l in list.lines() {
        if let Some(r) = l.strip_prefix("#EXT-X-BYTERANGE:") {
            let (len, off) = r.split_once('@').unwrap();
            range = Some((len.parse().unwrap(), off.parse().unwrap()));
        } else if !l.starts_with('#') && !l.is_empty() {
            let (len, off) = range.take().unwrap();
            out.push((l.to_owned(), len, off));
        }
    }
    (map, out)
}

#[test]
fn fmp4_rungs_have_iframe_playlists_whose_ranges_decode_alone() {
    let s = Server::start(&[
        "--codecs",
        "h264,hevc",
        "--ladder",
        "240,120",
        "--segment-seconds",
        "2",
        "--segment-format",
        "fmp4",
    ]);
    let id = upload_ok(&s, &h264_mp4(6, "320x240", true), FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    let dir = tempfile::tempdir().unwrap();
    for r in rec["renditions"].as_array().unwrap() {
        let f = r["iframe_playlist"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"));
        assert!(master.contains(&format!("URI=\"{f}\"")), "{master}");
        let rung = f.rsplit_once('/').unwrap().0;
        let list = s.get(&format!("/play/{id}/{f}")).text();
        let (map, entries) = iframe_entries(&list);
        let media = s
            .get(&format!("/play/{id}/{}", r["playlist"].as_str().unwrap()))
            .text();
        assert_eq!(entries.len(), media.matches("#EXTINF").count(), "{list}");
        let init = s.get(&format!("/play/{id}/{rung}/{map}")).body;
        // Each range, after the init section, is a keyframe that decodes.
        for (i, (seg, len, off)) in entries.iter().enumerate() {
            let range = format!("bytes={off}-{}", off + len - 1);
            let path = format!("/play/{id}/{rung}/{seg}");
            let part = request(s.addr, "GET", &path, &[("Range", range.as_str())], &[]);
            assert_eq!((part.status, part.body.len() as u64), (206, *len), "{path}");
            let file = dir
                .path()
                .join(format!("{}-{i}.mp4", rung.replace('/', "_")));
            std::fs::write(&file, [&init[..], &part.body[..]].concat()).unwrap();
            let v = ffprobe(
                &file,
                &[
                    "-select_streams",
                    "v:0",
                    "-show_frames",
                    "-show_entries",
                    "frame=key_frame",
                ],
            );
            let frames = v["frames"].as_array().unwrap();
            assert!(!frames.is_empty(), "{rung} entry {i}: nothing decodes");
            assert_eq!(frames[0]["key_frame"], 1, "{rung} entry {i}: {v}");
        }
    }
}

/// 6 s of testsrc2 (640x360, 30 fps) and a sine in AAC, the video
/// encoded with `codec` and `keys` (its keyframe options), 8-bit 4:2:0.
fn clip(name: &str, codec: &[&str], keys: &[&str]) -> std::path::PathBuf {
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=30:duration=6",
    ];
    args.extend([
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=6",
    ]);
    args.extend(codec);
    args.extend(keys);
    args.extend(["-pix_fmt", "yuv420p", "-c:a", "aac"]);
    fixture_path(name, &args)
}

/// `(size, md5)` of each video packet of `url`, as stored (no decoding);
/// H.264 as Annex B without access unit delimiters (what MPEG-TS carries
/// of an mp4's packets).
fn packet_hashes(url: &str) -> Vec<String> {
    let h264 = ffprobe(
        std::path::Path::new(url),
        &["-select_streams", "v", "-show_entries", "stream=codec_name"],
    )["streams"][0]["codec_name"]
        == "h264";
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i", url, "-map", "0:v", "-c", "copy"])
        .args(match h264 {
            true => &["-bsf:v", "h264_mp4toannexb,filter_units=remove_types=9"][..],
            false => &[],
        })
        .args(["-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(',').skip(4).take(2).collect::<Vec<_>>().join(","))
        .collect()
}

/// An HEVC source is copied into the HEVC group's top rung, packet for
/// packet (issue 28 item 4), tagged `hvc1`; the H.264 rungs and the
/// group's lower rung are encoded with their keyframes where the source
/// has its own.
#[test]
fn an_hevc_source_is_copied_into_its_own_groups_top_rung() {
    let path = clip(
        "hevc-source.mp4",
        &["-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1"],
        &[
            "-x265-params",
            "log-level=error:keyint=60:min-keyint=60:scenecut=0",
        ],
    );
    let hevc = std::fs::read(&path).unwrap();
    let s = Server::start(&["--codecs", "h264,hevc", "--ladder", "360,240"]);
    let id = upload_ok(&s, &hevc, FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["copied"], true, "{rec}");
    let rungs: Vec<(&str, &str, bool)> = rec["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let name = r["name"].as_str().unwrap();
            (name, r["codec"].as_str().unwrap(), r["copied"] == true)
        })
        .collect();
    assert_eq!(
        rungs,
        [
            ("360p", "h264", false),
            ("240p", "h264", false),
            ("hevc-360p", "hevc", true),
            ("hevc-240p", "hevc", false),
        ],
        "{rec}"
    );
    let base = format!("http://{}/play/{id}", s.addr);
    let source = path.to_str().unwrap();
    assert_eq!(
        packet_hashes(&format!("{base}/hevc-360p/video.m3u8")),
        packet_hashes(source)
    );
    let probe = ffprobe(
        std::path::Path::new(&format!("{base}/hevc-360p/video.m3u8")),
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "stream=codec_tag_string",
        ],
    );
    assert_eq!(probe["streams"][0]["codec_tag_string"], "hvc1", "{probe}");
    let want_keys = keyframes(source);
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    let v = variants(&master);
    assert_eq!(v.len(), 4, "{master}");
    for (codecs, _, uri) in &v {
        let keys = keyframes(&format!("{base}/{uri}"));
        assert_eq!(
            keys.len(),
            want_keys.len(),
            "{uri}: {keys:?} against {want_keys:?}"
        );
        for (a, b) in keys.iter().zip(&want_keys) {
            assert!(
                (a - b).abs() < 0.05,
                "{uri}: {keys:?} against {want_keys:?}"
            );
        }
        assert_cli_plays(&format!("{base}/{uri}"));
        let rung = uri.split('/').next().unwrap();
        if rung.starts_with("hevc") {
            let init = s.get(&format!("/play/{id}/{rung}/init.mp4"));
            assert_eq!(*codecs, format!("{},mp4a.40.2", codec_string(&init.body)));
        }
    }
    // Without an HEVC group the same source is encoded, as before.
    let s = Server::start(&["--ladder", "360,240"]);
    let id = upload_ok(&s, &hevc, FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["copied"], false, "{rec}");
}

/// With an AV1 group every rung cuts on SVT-AV1's grid of frames, so a
/// source is copied only when its keyframes are on such a grid: an AV1
/// source into the AV1 group's top rung, an H.264 one into H.264's; one
/// whose keyframes are not is encoded, and says why (issue 28 item 4).
#[test]
fn sources_with_keyframes_on_a_grid_of_frames_are_copied_beside_an_av1_group() {
    let av1 = clip(
        "av1-grid.mp4",
        &["-c:v", "libsvtav1", "-preset", "12"],
        &["-g", "60"],
    );
    let x264 = ["-c:v", "libx264", "-preset", "ultrafast"];
    let grid = ["-x264-params", "keyint=60:min-keyint=60:scenecut=0"];
    let h264 = clip("h264-grid.mp4", &x264, &grid);
    let odd = clip(
        "h264-off-grid.mp4",
        &x264,
        &["-g", "600", "-force_key_frames", "0,2,4.1"],
    );
    let s = Server::start(&[
        "--codecs",
        "h264,av1",
        "--ladder",
        "360,240",
        "--segment-seconds",
        "2",
    ]);
    for (path, copied_rung) in [
        (&av1, Some("av1-360p")),
        (&h264, Some("360p")),
        (&odd, None),
    ] {
        let id = upload_ok(&s, &std::fs::read(path).unwrap(), FAST);
        let rec = s.wait_done(&id);
        assert_eq!(rec["status"], "ready", "{rec}");
        let copied: Vec<&str> = rec["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["copied"] == true)
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(copied, copied_rung.into_iter().collect::<Vec<_>>(), "{rec}");
        let base = format!("http://{}/play/{id}", s.addr);
        let Some(rung) = copied_rung else {
            let note = rec["copy_note"].as_str().unwrap_or_default();
            assert!(note.contains("every N frames"), "{note}");
            continue;
        };
        let source = path.to_str().unwrap();
        assert_eq!(
            packet_hashes(&format!("{base}/{rung}/video.m3u8")),
            packet_hashes(source)
        );
        // Every variant cuts where the source has its keyframes.
        let want = keyframes(source);
        assert_eq!(want.len(), 3, "{want:?}");
        let master = s.get(&format!("/play/{id}/video.m3u8")).text();
        for (codecs, _, uri) in variants(&master) {
            let keys = keyframes(&format!("{base}/{uri}"));
            assert_eq!(keys.len(), want.len(), "{uri}: {keys:?} against {want:?}");
            for (a, b) in keys.iter().zip(&want) {
                assert!((a - b).abs() < 0.05, "{uri}: {keys:?} against {want:?}");
            }
            assert_cli_plays(&format!("{base}/{uri}"));
            let r = uri.split('/').next().unwrap();
            if r.starts_with("av1") {
                let init = s.get(&format!("/play/{id}/{r}/init.mp4"));
                assert_eq!(codecs, format!("{},mp4a.40.2", codec_string(&init.body)));
            }
        }
    }
}
