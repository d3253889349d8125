//! Uploads of many containers and codecs, checked by decoding the output
//! with ffprobe/ffmpeg (independent of our libav code path).

use crate::common::*;
use std::path::Path;
use std::time::Duration;

const SRC: &[&str] = &["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"];
const TONE: &[&str] = &["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"];

fn args(parts: &[&[&str]]) -> Vec<&'static str> {
    parts
        .iter()
        .flat_map(|p| p.iter())
        .map(|s| &*Box::leak(s.to_string().into_boxed_str()))
        .collect()
}

/// What the output must look like.
struct Expect {
    width: u64,
    height: u64,
    audio: bool,
}

/// Source duration according to ffprobe.
fn source_duration(path: &Path) -> f64 {
    let v = ffprobe(path, &["-show_entries", "format=duration"]);
    v["format"]["duration"].as_str().unwrap().parse().unwrap()
}

/// Uploads `path` as `how`, waits for ready, and checks everything a player
/// depends on by decoding each segment fetched over HTTP.
fn upload_and_check(
    path: &Path,
    how: Send,
    segment_seconds: u32,
    expect: Expect,
) -> (Server, String, serde_json::Value) {
    let seg_arg = segment_seconds.to_string();
    let server = Server::start(&["--segment-seconds", &seg_arg]);
    let data = std::fs::read(path).unwrap();
    let id = upload_ok(&server, &data, how);
    let rec = server.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["progress"], 1.0);
    assert_eq!(rec["bytes_received"], data.len());

    let pl = server.get(&format!("/play/{id}/video.m3u8"));
    assert_eq!(pl.status, 200);
    assert_eq!(
        pl.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    let text = pl.text();
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "{text}");
    assert!(text.trim_end().ends_with("#EXT-X-ENDLIST"), "{text}");
    let segs = extinfs(&text);
    assert!(!segs.is_empty());
    let total: f64 = segs.iter().map(|(d, _)| d).sum();
    let want = source_duration(path);
    assert!(
        (total - want).abs() <= 0.2,
        "playlist {total} s vs source {want} s\n{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    for (i, (dur, name)) in segs.iter().enumerate() {
        assert!(
            *dur <= f64::from(segment_seconds) + 0.5,
            "segment {i} lasts {dur}\n{text}"
        );
        let r = server.get(&format!("/play/{id}/{name}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("video/mp2t"));
        assert_eq!(r.body[0], 0x47, "not a TS sync byte");
        let seg = dir.path().join(name);
        std::fs::write(&seg, &r.body).unwrap();
        let streams = ffprobe(&seg, &["-show_streams"]);
        let streams = streams["streams"].as_array().unwrap();
        let v: Vec<_> = streams
            .iter()
            .filter(|s| s["codec_type"] == "video")
            .collect();
        let a: Vec<_> = streams
            .iter()
            .filter(|s| s["codec_type"] == "audio")
            .collect();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0]["codec_name"], "h264");
        assert_eq!(v[0]["pix_fmt"], "yuv420p");
        assert_eq!(
            (
                v[0]["width"].as_u64().unwrap(),
                v[0]["height"].as_u64().unwrap()
            ),
            (expect.width, expect.height)
        );
        if expect.audio {
            assert_eq!(a.len(), 1, "segment {i} has no audio");
            assert_eq!(a[0]["codec_name"], "aac");
            assert_eq!(a[0]["profile"], "LC");
            assert_eq!(a[0]["channels"], 2);
            assert_eq!(a[0]["sample_rate"], "48000");
        } else {
            assert!(a.is_empty(), "unexpected audio in segment {i}");
        }
        let first = ffprobe(
            &seg,
            &[
                "-select_streams",
                "v:0",
                "-show_frames",
                "-read_intervals",
                "%+#1",
                "-show_entries",
                "frame=key_frame,pict_type",
            ],
        );
        let f = &first["frames"][0];
        assert_eq!(
            (f["key_frame"].as_i64(), f["pict_type"].as_str()),
            (Some(1), Some("I")),
            "segment {i} starts with {f}"
        );
        let errs = decode_errors(&seg);
        assert!(errs.is_empty(), "segment {i} decode errors: {errs}");
    }
    assert_eq!(rec["output"]["width"], expect.width);
    assert_eq!(rec["output"]["segments"], segs.len());
    (server, id, rec)
}

const SMALL_CHUNKS: Send = Send::Chunked {
    chunk: 16 * 1024,
    pause: Duration::ZERO,
};
const LENGTH_CHUNKS: Send = Send::Length {
    chunk: 24 * 1024,
    pause: Duration::ZERO,
};
const STEREO: Expect = Expect {
    width: 320,
    height: 240,
    audio: true,
};

#[test]
fn faststart_mp4() {
    let p = fixture_path(
        "fast.mp4",
        &args(&[
            SRC,
            TONE,
            &[
                "-t",
                "8",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-movflags",
                "+faststart",
            ],
        ]),
    );
    let (_, _, rec) = upload_and_check(&p, LENGTH_CHUNKS, 6, STEREO);
    assert_eq!(rec["source"]["video"]["codec"], "h264");
    assert_eq!(rec["source"]["audio"]["sample_rate"], 44100);
    assert_eq!(rec["file_name"], "clip.bin");
}

#[test]
fn moov_at_end_mp4() {
    let p = fixture_path(
        "moov_end.mp4",
        &args(&[
            SRC,
            TONE,
            &[
                "-t",
                "8",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
            ],
        ]),
    );
    upload_and_check(&p, SMALL_CHUNKS, 6, STEREO);
}

#[test]
fn mkv_mpeg4_mp3() {
    let p = fixture_path(
        "clip.mkv",
        &args(&[
            SRC,
            TONE,
            &[
                "-t",
                "8",
                "-c:v",
                "mpeg4",
                "-q:v",
                "5",
                "-c:a",
                "libmp3lame",
            ],
        ]),
    );
    upload_and_check(&p, SMALL_CHUNKS, 6, STEREO);
}

#[test]
fn webm_vp9_opus() {
    let p = fixture_path(
        "clip.webm",
        &args(&[
            SRC,
            TONE,
            &[
                "-t",
                "8",
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "300k",
                "-c:a",
                "libopus",
            ],
        ]),
    );
    let (_, _, rec) = upload_and_check(&p, SMALL_CHUNKS, 6, STEREO);
    assert_eq!(rec["source"]["video"]["codec"], "vp9");
    assert_eq!(rec["source"]["audio"]["codec"], "opus");
}

#[test]
fn mpegts_mpeg2() {
    let p = fixture_path(
        "clip.ts",
        &args(&[
            SRC,
            TONE,
            &[
                "-t",
                "8",
                "-c:v",
                "mpeg2video",
                "-q:v",
                "5",
                "-c:a",
                "mp2",
                "-f",
                "mpegts",
            ],
        ]),
    );
    upload_and_check(&p, SMALL_CHUNKS, 6, STEREO);
}

#[test]
fn no_audio_track() {
    let p = fixture_path(
        "noaudio.mp4",
        &args(&[
            SRC,
            &[
                "-t",
                "8",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ],
        ]),
    );
    let (_, _, rec) = upload_and_check(
        &p,
        LENGTH_CHUNKS,
        6,
        Expect {
            width: 320,
            height: 240,
            audio: false,
        },
    );
    assert!(rec["source"]["audio"].is_null());
    assert!(rec["output"]["audio_codec"].is_null());
}

#[test]
fn surround_audio_is_downmixed() {
    let p = fixture_path(
        "surround.mp4",
        &args(&[
            SRC,
            TONE,
            &[
                "-t",
                "8",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-af",
                "aformat=channel_layouts=5.1",
                "-c:a",
                "aac",
            ],
        ]),
    );
    let (_, _, rec) = upload_and_check(&p, LENGTH_CHUNKS, 6, STEREO);
    assert_eq!(rec["source"]["audio"]["channels"], 6);
}

#[test]
fn odd_dimensions_become_even() {
    let p = fixture_path(
        "odd.mkv",
        &args(&[
            &["-f", "lavfi", "-i", "testsrc2=size=321x241:rate=25"],
            TONE,
            &[
                "-t",
                "8",
                "-vf",
                "scale=321:241",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv444p",
                "-c:a",
                "aac",
            ],
        ]),
    );
    upload_and_check(
        &p,
        SMALL_CHUNKS,
        6,
        Expect {
            width: 322,
            height: 242,
            audio: true,
        },
    );
}

#[test]
fn rotated_portrait_plays_upright() {
    // Top red, bottom blue; stored landscape with a 90° display rotation.
    let plain = fixture_path(
        "unrotated.mp4",
        &args(&[
            &[
                "-f",
                "lavfi",
                "-i",
                "color=red:size=320x120:rate=30",
                "-f",
                "lavfi",
                "-i",
                "color=blue:size=320x120:rate=30",
            ],
            TONE,
            &[
                "-filter_complex",
                "[0][1]vstack",
                "-t",
                "8",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
            ],
        ]),
    );
    let p = rotated_copy(&plain);
    let (server, id, rec) = upload_and_check(
        &p,
        LENGTH_CHUNKS,
        6,
        Expect {
            width: 240,
            height: 320,
            audio: true,
        },
    );
    assert!(
        [90, 270].contains(&rec["source"]["video"]["rotation"].as_u64().unwrap()),
        "{rec}"
    );
    // The CLI's autorotated view of the source and our first segment (which
    // carries no rotation) agree on which corner is which colour.
    let r = server.get(&format!("/play/{id}/seg_00000.ts"));
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join("s.ts");
    std::fs::write(&seg, r.body).unwrap();
    let server_out = corner_colors(&seg);
    let cli = corner_colors(&p);
    let spread = (3..48)
        .map(|i| (i32::from(cli[i]) - i32::from(cli[i % 3])).abs())
        .max()
        .unwrap();
    assert!(spread > 100, "the fixture's corners must differ: {cli:?}");
    assert_eq!(server_out.len(), 48);
    for (i, (a, b)) in server_out.iter().zip(&cli).enumerate() {
        assert!(
            (i32::from(*a) - i32::from(*b)).abs() < 40,
            "pixel byte {i}: ours {server_out:?} vs CLI {cli:?}"
        );
    }
}

/// A copy of an MP4 whose first track header carries a 90° display matrix
/// (FFmpeg 5.1's CLI ignores `-metadata rotate=`, so the box is patched).
pub(crate) fn rotated_copy(src: &Path) -> std::path::PathBuf {
    let name = src.file_name().unwrap().to_string_lossy();
    let out = src.with_file_name(format!("rotated-{name}"));
    let mut data = std::fs::read(src).unwrap();
    let at = data.windows(4).position(|w| w == b"tkhd").expect("tkhd");
    assert_eq!(data[at + 4], 0, "tkhd version 0 expected");
    // type(4) version+flags(4) ctime mtime track_id reserved duration (20)
    // reserved(8) layer alt_group volume reserved (8) → matrix at +44.
    let m = at + 44;
    let one: i32 = 0x10000;
    let matrix = [0, one, 0, -one, 0, 0, 0, 0, 0x4000_0000];
    for (i, v) in matrix.iter().enumerate() {
        data[m + 4 * i..m + 4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    std::fs::write(&out, data).unwrap();
    out
}

#[test]
fn variable_frame_rate() {
    // 90 frames at 30 fps, then 90 at 15 fps: 9 s.
    let p = fixture_path(
        "vfr.mkv",
        &args(&[
            SRC,
            &[
                "-frames:v",
                "180",
                "-vf",
                "setpts='if(lt(N,90),N/30,3+(N-90)/15)/TB'",
                "-fps_mode",
                "vfr",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ],
        ]),
    );
    upload_and_check(
        &p,
        SMALL_CHUNKS,
        6,
        Expect {
            width: 320,
            height: 240,
            audio: false,
        },
    );
}

#[test]
fn short_segments_keep_their_bound() {
    let p = fixture_path(
        "fast.mp4",
        &args(&[
            SRC,
            TONE,
            &[
                "-t",
                "8",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-movflags",
                "+faststart",
            ],
        ]),
    );
    upload_and_check(&p, FAST, 2, STEREO);
}

#[test]
fn odd_segment_length_keeps_its_bound() {
    // 5 s segments: the keyframe grid must divide 5 (1.67 s), or cuts
    // would land at 6 s.
    let p = fixture_path(
        "seg5-12s.mp4",
        &args(&[
            SRC,
            TONE,
            &[
                "-t",
                "12",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-movflags",
                "+faststart",
            ],
        ]),
    );
    upload_and_check(&p, FAST, 5, STEREO);
}
