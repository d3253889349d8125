//! Odd files play right: timestamps that jump back, repeat or overlap,
//! audio longer than its video, fragmented and truncated MP4, edit lists,
//! absurd frame rates, damaged packets in a copied source, more than 8
//! audio channels, an audio format that changes mid-stream, a lean source
//! under a ladder. Every output is checked with the ffmpeg CLI: no warning
//! at all when decoded, audio and video end together, and the duration
//! follows the video.

use crate::common::*;
use std::path::Path;
use std::process::Command;

const V: &[&str] = &[
    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
];

fn server() -> Server {
    Server::start(&["--ladder", "source"])
}

/// Uploads `data`, waits, and returns (record, top playlist URL).
fn process(s: &Server, data: &[u8]) -> (serde_json::Value, String) {
    let id = upload_ok(s, data, FAST);
    let rec = s.wait_done(&id);
    let top = rec["renditions"][0]["playlist"]
        .as_str()
        .unwrap_or("video.m3u8")
        .to_owned();
    let url = format!("http://{}/play/{id}/{top}", s.addr);
    (rec, url)
}

/// Decoding `url` with the CLI prints nothing, not even a warning.
fn assert_decodes_cleanly(url: &str) {
    let out = Command::new("ffmpeg")
        .args(["-v", "warning", "-i", url, "-f", "null", "-"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "{url}:\n{err}"
    );
}

/// Where each stream of `url` ends (pts + duration of its last packet), by
/// codec type.
fn stream_ends(url: &str) -> (f64, f64) {
    let v = ffprobe(
        Path::new(url),
        &[
            "-show_entries",
            "packet=codec_type,pts_time,duration_time:stream=index,codec_type",
            "-show_streams",
        ],
    );
    let kinds: Vec<String> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_type"].as_str().unwrap().to_owned())
        .collect();
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_entries",
            "packet=stream_index,pts_time,duration_time",
            url,
        ])
        .output()
        .unwrap();
    let p: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let (mut video, mut audio) = (0f64, 0f64);
    for pkt in p["packets"].as_array().unwrap() {
        let t: f64 = pkt["pts_time"]
            .as_str()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0.0);
        let d: f64 = pkt["duration_time"]
            .as_str()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0.0);
        let kind = &kinds[pkt["stream_index"].as_u64().unwrap() as usize];
        if kind == "video" {
            video = video.max(t + d);
        } else {
            audio = audio.max(t + d);
        }
    }
    (video, audio)
}

/// The output plays cleanly, its audio ends with its video (within
/// 100 ms) and lasts `secs`.
fn assert_plays_in_sync(url: &str, rec: &serde_json::Value, secs: f64) {
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_decodes_cleanly(url);
    let (video, audio) = stream_ends(url);
    assert!(
        (video - audio).abs() < 0.1,
        "video ends at {video}, audio at {audio}"
    );
    let d = rec["output"]["duration"].as_f64().unwrap();
    assert!((d - secs).abs() < 0.1, "lasts {d} s, not {secs}: {rec}");
}

// ------------------------------------------------------------- MPEG-TS splices

/// Joins MPEG-TS files as one byte stream (legal for TS), renumbering each
/// PID's continuity counter so the join itself is clean.
fn ts_concat(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut cc: std::collections::HashMap<u16, u8> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for part in parts {
        for p in part.chunks(188) {
            let mut p = p.to_vec();
            if p.len() == 188 && p[0] == 0x47 {
                let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
                let payload = p[3] & 0x10 != 0;
                let next = match cc.get(&pid) {
                    Some(last) if payload => (last + 1) & 0x0f,
                    Some(last) => *last,
                    None => p[3] & 0x0f,
                };
                p[3] = (p[3] & 0xf0) | next;
                cc.insert(pid, next);
            }
            out.extend_from_slice(&p);
        }
    }
    out
}

/// Two seconds of video and audio in TS, starting at `video` and `audio`
/// seconds (the audio offset includes AAC's 1024-sample priming).
fn ts_part(name: &str, video: &str, audio: &str, tone: &str) -> Vec<u8> {
    let src = "testsrc2=size=320x240:rate=30:duration=2".to_string();
    let sine = format!("sine=frequency={tone}:sample_rate=48000:duration=2");
    let mut args = vec![
        "-itsoffset",
        video,
        "-f",
        "lavfi",
        "-i",
        &src,
        "-itsoffset",
        audio,
    ];
    args.extend(["-f", "lavfi", "-i", &sine]);
    args.extend(V);
    args.extend(["-bf", "0", "-g", "30", "-c:a", "aac", "-b:a", "96k"]);
    args.extend([
        "-copyts",
        "-muxdelay",
        "0",
        "-muxpreload",
        "0",
        "-f",
        "mpegts",
    ]);
    fixture(name, &args)
}

fn splice(video: &str, audio: &str) -> Vec<u8> {
    let a = ts_part("odd-a.ts", "0", "0.021333", "440");
    let b = ts_part(&format!("odd-b-{video}-{audio}.ts"), video, audio, "880");
    ts_concat(&[a, b])
}

#[test]
fn timestamps_that_jump_back_or_repeat_are_repaired_in_every_stream() {
    let s = server();
    // Part two restarts its video 1 s back (with its audio, or not), its
    // first video frame on the last one's timestamp, its first audio frame
    // on the last one's: each stream goes on continuously.
    for (video, audio) in [
        ("1.0", "1.048"),
        ("1.0", "2.048"),
        ("1.966667", "2.048"),
        ("2.0", "2.026667"),
    ] {
        let (rec, url) = process(&s, &splice(video, audio));
        assert_plays_in_sync(&url, &rec, 4.0);
        assert_eq!(rec["output"]["frames"], 120, "{rec}");
    }
    // Its audio restarts 1 s back while its video goes on: that second is
    // audio sent again, trimmed (as the CLI does); the rest is where its
    // timestamps say, so the audio ends a second before the video.
    let (rec, url) = process(&s, &splice("2.0", "1.048"));
    assert_eq!(rec["output"]["frames"], 120, "{rec}");
    let (video, audio) = stream_ends(&url);
    assert!(
        (video - 4.0).abs() < 0.1 && (audio - 3.05).abs() < 0.1,
        "{video} {audio}"
    );
    assert_decodes_cleanly(&url);
}

/// Moves every block of Matroska track `track` at `from_ms` or later
/// `by_ms` earlier (block timestamps are 16-bit offsets from their
/// cluster's), which no muxer writes (they refuse timestamps going back).
fn mkv_move_back(mut data: Vec<u8>, track: u64, from_ms: i64, by_ms: i16) -> Vec<u8> {
    fn vint(b: &[u8], i: usize, marker: bool) -> (u64, usize) {
        let n = b[i].leading_zeros() as usize + 1;
        let mut v = if marker {
            u64::from(b[i])
        } else {
            u64::from(b[i]) & (0xff >> n)
        };
        for k in 1..n {
            v = (v << 8) | u64::from(b[i + k]);
        }
        (v, n)
    }
    fn walk(d: &mut [u8], mut i: usize, end: usize, tc: &mut i64, m: (u64, i64, i16)) {
        while i < end {
            let (id, n) = vint(d, i, true);
            let (size, k) = vint(d, i + n, false);
            i += n + k;
            let body = if size == (1 << (7 * k)) - 1 {
                end
            } else {
                i + size as usize
            };
            match id {
                // Segment, cluster, block group.
                0x1853_8067 | 0x1F43_B675 | 0xA0 => walk(d, i, body, tc, m),
                0xE7 => *tc = d[i..body].iter().fold(0, |a, b| (a << 8) | i64::from(*b)),
                0xA3 | 0xA1 => {
                    let (t, k) = vint(d, i, false);
                    let rel = i16::from_be_bytes([d[i + k], d[i + k + 1]]);
                    if t == m.0 && *tc + i64::from(rel) >= m.1 {
                        d[i + k..i + k + 2].copy_from_slice(&(rel - m.2).to_be_bytes());
                    }
                }
                _ => {}
            }
            i = body;
        }
    }
    let end = data.len();
    walk(&mut data, 0, end, &mut 0, (track, from_ms, by_ms));
    data
}

/// The pitch of `url`'s audio from `at` for `secs` seconds, in Hz (by
/// zero crossings of its first channel).
fn pitch(url: &str, at: f64, secs: f64) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", url, "-ss", &at.to_string(), "-t"])
        .args([
            &secs.to_string(),
            "-ac",
            "1",
            "-f",
            "f32le",
            "-ar",
            "48000",
            "-",
        ])
        .output()
        .unwrap();
    let samples: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / 48_000.0)
}

/// Seconds that `path` lasts, by the CLI's probe.
fn duration_of(path: &Path) -> f64 {
    let v = ffprobe(path, &["-show_entries", "format=duration"]);
    v["format"]["duration"].as_str().unwrap().parse().unwrap()
}

#[test]
fn audio_sent_again_is_trimmed_to_what_is_new_as_the_cli_does() {
    let s = server();
    // MPEG-4 ASP and 5.1 AAC in Matroska, 3.6 s, whose audio restarts at
    // 2.26 s: 2.26 s at 440 Hz, then 3.6 s from 0 again, at 880 Hz for
    // the 2.26 s sent again and at 1320 Hz for what is new. And the same
    // as H.264 and stereo AAC, which the copy path takes.
    let mpeg4: &[&str] = &["-c:v", "mpeg4", "-q:v", "4", "-ac", "6"];
    let h264: &[&str] = &[
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "0",
    ];
    for (name, codecs) in [("mpeg4", mpeg4), ("h264", h264)] {
        let mut args = vec![
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=3.6",
            "-f",
            "lavfi",
            "-i",
            "aevalsrc=sin(2*PI*if(lt(t\\,2.26)\\,440\\,if(lt(t\\,4.52)\\,880\\,1320))*t):s=48000:d=5.86",
            "-c:a",
            "aac",
            "-b:a",
            "192k",
        ];
        args.extend(codecs);
        let made = fixture_path(&format!("odd-resent-{name}.mkv"), &args);
        let resent = mkv_move_back(std::fs::read(&made).unwrap(), 2, 2260, 2260);
        let (rec, url) = process(&s, &resent);
        assert_trimmed_as_the_cli(&resent, &rec, &url);
    }
}

/// `resent`'s output lasts as long as the CLI's, its audio ends with its
/// video (the repeated 2.26 s went, not played over a frozen frame), and
/// what plays after 2.26 s is what is new there, not the repeat.
fn assert_trimmed_as_the_cli(resent: &[u8], rec: &serde_json::Value, url: &str) {
    let path = std::env::temp_dir().join(format!("hlsd-resent-{}.mkv", std::process::id()));
    std::fs::write(&path, resent).unwrap();
    // The CLI's output for scale (a skilled user's one command).
    let cli = path.with_extension("mp4");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&path)
        .args(["-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac"])
        .arg(&cli)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_secs = duration_of(&cli);
    let _ = (std::fs::remove_file(&path), std::fs::remove_file(&cli));
    assert!(
        (cli_secs - 3.6).abs() < 0.15,
        "the CLI's lasts {cli_secs} s"
    );
    assert_plays_in_sync(url, rec, 3.6);
    let (video, audio) = stream_ends(url);
    assert!(
        (video - cli_secs).abs() < 0.15,
        "{video} s against the CLI's {cli_secs} s"
    );
    assert!(
        (audio - cli_secs).abs() < 0.15,
        "audio {audio} s against {cli_secs} s"
    );
    let (first, then) = (pitch(url, 0.3, 1.5), pitch(url, 2.6, 0.8));
    assert!((first - 440.0).abs() < 20.0, "{first} Hz first");
    assert!(
        (then - 1320.0).abs() < 40.0,
        "{then} Hz after the restart: {rec}"
    );
}

#[test]
fn audio_that_runs_longer_than_its_video_or_overlaps_ends_with_the_video() {
    let s = server();
    // Matroska whose audio lasts 6 s against 4 s of video.
    let longer = fixture(
        "odd-audio-longer.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=4",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
    );
    // Opus packets stamped 19 ms apart though each lasts 20 ms (200 ms of
    // overlap by the end).
    let overlapping = fixture(
        "odd-opus-overlap.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=4",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=4",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "libopus",
            "-b:a",
            "64k",
            "-bsf:a",
            "setts=ts=TS-N",
        ],
    );
    for data in [longer, overlapping] {
        let (rec, url) = process(&s, &data);
        assert_plays_in_sync(&url, &rec, 4.0);
    }
}

/// A fragmented MP4 whose upload stopped part way: what arrived plays,
/// cleanly.
#[test]
fn a_truncated_fragmented_mp4_plays_what_arrived_cleanly() {
    let whole = fixture(
        "odd-frag.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "30",
            "-c:a",
            "aac",
            "-movflags",
            "frag_keyframe+empty_moov+default_base_moof",
        ],
    );
    let s = server();
    let (rec, url) = process(&s, &whole[..whole.len() * 6 / 10]);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_decodes_cleanly(&url);
    let d = rec["output"]["duration"].as_f64().unwrap();
    assert!(d > 2.0 && d < 5.0, "{rec}");
}

// ----------------------------------------------------------------- edit lists

/// An 8×8 grey thumbnail of a frame of `input` (`select` picks it).
fn tiny(input: &str, select: &str) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", input, "-vf"])
        .arg(format!("select={select},format=rgb24,scale=8:8:flags=area"))
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    // In RGB, converted at full size before averaging: the outputs are
    // BT.709 whatever the source's matrix was (an untagged SD source's luma
    // is not the same numbers), and a chroma plane averaged down to 4x4
    // before the conversion smears colour across the blocks.
    assert!(out.status.success() && out.stdout.len() == 192, "{input}");
    out.stdout
}

fn distance(a: &[u8], b: &[u8]) -> u32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| u32::from(x.abs_diff(*y)))
        .sum()
}

#[test]
fn a_trimmed_mp4_starts_at_its_cut() {
    // 6 s with B-frames and a keyframe every 2 s, trimmed at 1.3 s without
    // re-encoding: its edit list hides a pre-roll from the keyframe at 0 s,
    // and the first frame it shows is not a keyframe.
    let src = fixture_path(
        "odd-editlist-src.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "60",
            "-bf",
            "3",
            "-c:a",
            "aac",
        ],
    );
    let trimmed = fixture_path(
        "odd-editlist-trimmed.mp4",
        &["-ss", "1.3", "-i", src.to_str().unwrap(), "-c", "copy"],
    );
    let s = Server::start(&["--ladder", "source", "--copy", "auto"]);
    let (rec, url) = process(&s, &std::fs::read(&trimmed).unwrap());
    assert_plays_in_sync(&url, &rec, 4.7);
    // Within a frame of the edit list's 4.7 s, and never the copy (its
    // first shown frame would need the hidden pre-roll).
    assert_eq!(rec["copied"], false, "{rec}");
    assert!(
        rec["copy_note"].as_str().unwrap().contains("keyframe"),
        "{rec}"
    );
    assert_eq!(rec["output"]["frames"], 141, "{rec}");
    // The first frame shown is the source's frame at 1.3 s, not its first.
    let first = tiny(&url, "eq(n\\,0)");
    let at_cut = tiny(src.to_str().unwrap(), "eq(n\\,39)");
    let at_start = tiny(src.to_str().unwrap(), "eq(n\\,0)");
    assert!(
        distance(&first, &at_cut) * 3 < distance(&first, &at_start),
        "cut {} vs start {}",
        distance(&first, &at_cut),
        distance(&first, &at_start)
    );
}

// --------------------------------------------------------- absurd timestamps

#[test]
fn timestamps_of_a_nanosecond_a_frame_or_1000_fps_are_refused() {
    let s = server();
    let base = fixture_path(
        "odd-8s-nobf.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=8",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-bf",
            "0",
            "-g",
            "30",
        ],
    );
    let ns = fixture(
        "odd-1ns.mp4",
        &[
            "-i",
            base.to_str().unwrap(),
            "-c",
            "copy",
            "-bsf:v",
            "setts=ts=N:duration=1:time_base=1/1000000000",
            "-video_track_timescale",
            "1000000000",
        ],
    );
    let fast = fixture(
        "odd-1000fps.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=1000:duration=2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    for data in [ns, fast] {
        let id = upload_ok(&s, &data, FAST);
        let rec = s.wait_done(&id);
        assert_eq!(rec["status"], "failed", "{rec}");
        assert_eq!(rec["error"]["code"], "unprocessable_media", "{rec}");
        assert!(
            rec["error"]["message"].as_str().unwrap().contains("240"),
            "{rec}"
        );
    }
}

// ------------------------------------------------------------ damaged copies

/// `src` with `n` bytes XORed half way into packet `index` of `stream`.
fn corrupt(src: &Path, stream: u32, index: usize, n: usize) -> Vec<u8> {
    let v = ffprobe(
        src,
        &[
            "-select_streams",
            &stream.to_string(),
            "-show_entries",
            "packet=pos,size",
        ],
    );
    let p = &v["packets"][index];
    let pos: usize = p["pos"].as_str().unwrap().parse().unwrap();
    let size: usize = p["size"].as_str().unwrap().parse().unwrap();
    let mut data = std::fs::read(src).unwrap();
    let at = pos + size / 2;
    for b in &mut data[at..at + n] {
        *b ^= 0xff;
    }
    data
}

#[test]
fn a_copy_eligible_source_with_damaged_packets_is_encoded_and_decodes_cleanly() {
    let valid = fixture_path(
        "odd-copyable.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "high",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
            "-movflags",
            "+faststart",
        ],
    );
    let s = Server::start(&["--copy", "auto"]);
    // The clean file is copied.
    let (rec, _) = process(&s, &std::fs::read(&valid).unwrap());
    assert_eq!(rec["copied"], true, "{rec}");
    // One damaged IDR, one damaged P frame, one damaged AAC packet.
    for (stream, index) in [(0, 60), (0, 75), (1, 100)] {
        let (rec, url) = process(&s, &corrupt(&valid, stream, index, 8));
        assert_eq!(rec["status"], "ready", "{rec}");
        assert_eq!(rec["copied"], false, "{rec}");
        assert!(
            rec["copy_note"].as_str().unwrap().contains("decode"),
            "{rec}"
        );
        assert_cli_plays(&url);
    }
}

// --------------------------------------------------------------- odd audio

#[test]
fn twelve_channels_and_a_mid_stream_audio_change_become_stereo_aac() {
    let s = server();
    let exprs: Vec<String> = (1..=12)
        .map(|i| format!("0.2*sin({}*2*PI*t)", 200 + 50 * i))
        .collect();
    let twelve = fixture(
        "odd-12ch.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=3",
            "-f",
            "lavfi",
            "-i",
            &format!("aevalsrc=exprs={}:s=48000:d=3", exprs.join("|")),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "pcm_s16le",
        ],
    );
    let (rec, url) = process(&s, &twelve);
    assert_plays_in_sync(&url, &rec, 3.0);
    assert_eq!(rec["source"]["audio"]["channels"], 12);
    // 48 kHz stereo, then 44.1 kHz (a spliced TS: ADTS carries the change).
    let a = ts_part("odd-a.ts", "0", "0.021333", "440");
    let b44 = {
        let src = "testsrc2=size=320x240:rate=30:duration=2";
        let mut args = vec![
            "-itsoffset",
            "2.0",
            "-f",
            "lavfi",
            "-i",
            src,
            "-itsoffset",
            "2.049887",
        ];
        args.extend([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=880:sample_rate=44100:duration=2",
        ]);
        args.extend(V);
        args.extend([
            "-bf", "0", "-g", "30", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        ]);
        args.extend([
            "-copyts",
            "-muxdelay",
            "0",
            "-muxpreload",
            "0",
            "-f",
            "mpegts",
        ]);
        fixture("odd-b-44k.ts", &args)
    };
    let (rec, url) = process(&s, &ts_concat(&[a, b44]));
    assert_plays_in_sync(&url, &rec, 4.0);
}

// ----------------------------------------------------------------- ladders

#[test]
fn a_lean_copied_top_rung_keeps_the_ladders_bandwidth_falling() {
    // 720p at about 1 Mb/s, copy-eligible: the 480p and 360p rungs must
    // weigh less than it.
    let lean = fixture(
        "odd-lean-720p.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30:duration=8",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-b:v",
            "1000k",
            "-maxrate",
            "1000k",
            "-bufsize",
            "2000k",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ],
    );
    let s = Server::start(&["--copy", "auto"]);
    let id = upload_ok(&s, &lean, FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["copied"], true, "{rec}");
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    let mut last: Option<(u64, u64)> = None;
    for line in master
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-STREAM-INF:"))
    {
        let attr = |name: &str| {
            line.split(',')
                .find_map(|a| a.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_owned()
        };
        let bw: u64 = attr("BANDWIDTH").parse().unwrap();
        let height: u64 = attr("RESOLUTION")
            .split('x')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        if let Some((h, b)) = last {
            assert!(height < h && bw < b, "{master}");
        }
        last = Some((height, bw));
    }
    assert_eq!(rec["renditions"].as_array().unwrap().len(), 3, "{rec}");
}

// ------------------------------------------------- parameter sets that change

/// Two encodes joined end to end (`cat a.ts b.ts`): Constrained Baseline,
/// then High with B-frames. Each half alone is copyable; joined, the
/// copied rung would be described by the first half's SPS (`avcC`,
/// `CODECS`) while carrying the second's: it is encoded instead, and
/// every frame of both halves comes out.
#[test]
fn joined_encodes_whose_parameter_sets_change_are_not_copied() {
    let half = |name: &str, profile: &str, preset: &str, offset: &str, tone: &str| {
        fixture_path(
            name,
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=30:duration=4",
                "-f",
                "lavfi",
                "-i",
                &format!("sine=frequency={tone}:sample_rate=48000:duration=4"),
                "-c:v",
                "libx264",
                "-preset",
                preset,
                "-profile:v",
                profile,
                "-pix_fmt",
                "yuv420p",
                "-g",
                "30",
                "-c:a",
                "aac",
                "-output_ts_offset",
                offset,
                "-f",
                "mpegts",
            ],
        )
    };
    let a = half("odd-join-a.ts", "baseline", "ultrafast", "0", "440");
    let b = half("odd-join-b.ts", "high", "veryfast", "4.2", "660");
    let s = Server::start(&[
        "--ladder",
        "source",
        "--copy",
        "auto",
        "--segment-format",
        "fmp4",
    ]);
    // Each half alone is copied.
    let (rec, _) = process(&s, &std::fs::read(&b).unwrap());
    assert_eq!(rec["copied"], true, "{rec}");
    let joined = [std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap()].concat();
    let (rec, url) = process(&s, &joined);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["copied"], false, "{rec}");
    let note = rec["copy_note"].as_str().unwrap_or_default();
    assert!(note.contains("parameter sets"), "{rec}");
    assert_decodes_cleanly(&url);
    assert_eq!(rec["output"]["frames"], 240, "{rec}");
}
