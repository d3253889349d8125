//! Chunked encoding (issue 30): a video's encode split in time into chunks
//! encoded side by side and stitched into the same segments. A split job's
//! output must be what an unsplit job makes, to the frame: the same
//! segments and durations, IDRs at the same instants, every frame once and
//! in place across the seams, the audio sample for sample.

use crate::common::*;
use std::path::PathBuf;

/// Chunks of 6 s, two at once.
const SPLIT: &[&str] = &[
    "--chunk-seconds",
    "6",
    "--chunk-workers",
    "2",
    "--copy",
    "never",
    "--ladder",
    "360,240",
];
/// The same job, never split.
const WHOLE: &[&str] = &[
    "--chunk-workers",
    "1",
    "--copy",
    "never",
    "--ladder",
    "360,240",
];

/// 24 s with B-frames and a keyframe every 50 frames (1.67 s): the 6 s
/// boundaries fall between source keyframes, so each chunk decodes from
/// the keyframe before its start and drops what comes before it.
fn source() -> PathBuf {
    av_fixture_path("chunks-24s-640x360.mp4", 24, "640x360", 50, &["-bf", "2"])
}

/// What one rendition is, as the CLI reads it.
#[derive(Debug)]
struct Rendition {
    extinfs: Vec<String>,
    /// Video packets' (pts, dts), and the pts of the keyframes.
    packets: Vec<(i64, i64)>,
    keys: Vec<i64>,
    /// Every frame's picture, 64×36 gray.
    pictures: Vec<Vec<u8>>,
}

fn rendition(s: &Server, id: &str, rung: &str) -> Rendition {
    let path = format!("/play/{id}/{rung}/video.m3u8");
    let extinfs = extinfs(&s.get(&path).text())
        .into_iter()
        .map(|(d, _)| format!("{d:.3}"))
        .collect();
    let url = format!("http://{}{path}", s.addr);
    let v = ffprobe(
        std::path::Path::new(&url),
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "packet=pts,dts,flags",
        ],
    );
    let mut packets = Vec::new();
    let mut keys = Vec::new();
    for p in v["packets"].as_array().unwrap() {
        let (pts, dts) = (p["pts"].as_i64().unwrap(), p["dts"].as_i64().unwrap());
        packets.push((pts, dts));
        if p["flags"].as_str().unwrap().contains('K') {
            keys.push(pts);
        }
    }
    Rendition {
        extinfs,
        packets,
        keys,
        pictures: pictures(&url),
    }
}

/// Every frame of `input`, 64×36 gray.
fn pictures(input: &str) -> Vec<Vec<u8>> {
    let raw = ffmpeg_ok([
        "-v",
        "error",
        "-i",
        input,
        "-map",
        "0:v",
        "-vf",
        "scale=64:36",
        "-pix_fmt",
        "gray",
        "-f",
        "rawvideo",
        "-",
    ]);
    raw.chunks(64 * 36).map(<[u8]>::to_vec).collect()
}

/// The decoded audio of a video, as 16-bit PCM.
fn audio(s: &Server, id: &str) -> Vec<u8> {
    let url = format!("http://{}/play/{id}/video.m3u8", s.addr);
    ffmpeg_ok(["-v", "error", "-i", &url, "-map", "0:a", "-f", "s16le", "-"])
}

fn mean_diff(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn a_split_job_makes_what_an_unsplit_one_makes() {
    let source = source();
    let bytes = std::fs::read(&source).unwrap();
    let split = Server::start(SPLIT);
    let whole = Server::start(WHOLE);
    let a = upload_ok(&split, &bytes, FAST);
    let b = upload_ok(&whole, &bytes, FAST);
    let (ra, rb) = (split.wait_done(&a), whole.wait_done(&b));
    assert_eq!(
        (&ra["status"], &rb["status"]),
        (&"ready".into(), &"ready".into())
    );
    // 24 s in chunks of 6 s; the unsplit job in one.
    assert_eq!(ra["output"]["chunks"], 4, "{ra}");
    assert_eq!(rb["output"]["chunks"], 1, "{rb}");
    assert_eq!(ra["output"]["frames"], 720);
    assert_eq!(ra["output"]["frames"], rb["output"]["frames"]);
    for rung in ["360p", "240p"] {
        let (x, y) = (rendition(&split, &a, rung), rendition(&whole, &b, rung));
        assert_eq!(x.extinfs, y.extinfs, "{rung}: segment durations");
        // IDRs where the unsplit job has them (the keyframe grid), frames
        // at the same instants, decoding times increasing across seams.
        assert_eq!(x.keys, y.keys, "{rung}: keyframes");
        let shown = |r: &Rendition| {
            let mut p: Vec<i64> = r.packets.iter().map(|p| p.0).collect();
            p.sort_unstable();
            p
        };
        assert_eq!(shown(&x), shown(&y), "{rung}: frame times");
        assert!(
            x.packets.windows(2).all(|w| w[0].1 < w[1].1),
            "{rung}: decoding times go back"
        );
        // Every frame in place: each is clearly closer to the unsplit job's
        // frame of its index than to its neighbours (a frame dropped,
        // repeated or swapped at a seam is not). The two encodes differ by
        // their rate control's state after a seam (measured up to 2.0 at an
        // IDR, neighbours 4 or more apart).
        assert_eq!(x.pictures.len(), 720, "{rung}");
        for (i, (p, o)) in x.pictures.iter().zip(&y.pictures).enumerate() {
            let d = mean_diff(p, o);
            let next = y.pictures.get(i + 1).map_or(f64::MAX, |n| mean_diff(p, n));
            let prev = i
                .checked_sub(1)
                .map_or(f64::MAX, |j| mean_diff(p, &y.pictures[j]));
            assert!(
                d < 0.75 * prev.min(next),
                "{rung} frame {i}: {d} ({prev}, {next})"
            );
        }
    }
    // The audio is encoded once, on the job's thread, whatever the split.
    assert_eq!(audio(&split, &a), audio(&whole, &b));
}

/// `args` with chunks of 6 s (two at once) and `extra`.
fn split_with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = SPLIT.to_vec();
    args.extend_from_slice(extra);
    args
}

/// A split video is whole: ready in `chunks` chunks, 720 frames, every
/// playlist valid, decoding cleanly from the master.
fn assert_whole(s: &Server, id: &str, chunks: u64) {
    let rec = s.wait_done(id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["output"]["chunks"], chunks, "{rec}");
    assert_eq!(rec["output"]["frames"], 720, "{rec}");
    for path in ["video.m3u8", "360p/video.m3u8", "240p/video.m3u8"] {
        assert_eq!(s.get(&format!("/play/{id}/{path}")).status, 200);
    }
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
}

#[test]
fn split_jobs_make_fmp4_encrypted_segments_posters_and_storyboards() {
    let bytes = std::fs::read(source()).unwrap();
    for extra in [&["--segment-format", "fmp4"][..], &["--encrypt"][..]] {
        let s = Server::start(&split_with(extra));
        let id = upload_ok(&s, &bytes, FAST);
        assert_whole(&s, &id, 4);
        // Tiles every 2 s from every chunk, in order; the poster chosen
        // from the chunks' frames.
        let vtt = s.get(&format!("/play/{id}/storyboard.vtt")).text();
        let cues: Vec<&str> = vtt.lines().filter(|l| l.contains(" --> ")).collect();
        assert_eq!(cues.len(), 12, "{vtt}");
        assert_eq!(cues[11], "00:00:22.000 --> 00:00:24.000", "{vtt}");
        assert_eq!(s.get(&format!("/play/{id}/poster.jpg")).status, 200);
        let sheet = s.get(&format!("/play/{id}/storyboard_0.jpg"));
        assert_eq!(sheet.status, 200);
    }
}

#[test]
fn a_split_job_publishes_while_the_upload_arrives() {
    let data = std::fs::read(av_fixture_path(
        "chunks-24s-640x360-faststart.mp4",
        24,
        "640x360",
        50,
        &["-bf", "2", "-movflags", "+faststart"],
    ))
    .unwrap();
    let s = Server::start(&split_with(&["--segment-seconds", "2"]));
    // Half the body (12 s of video) now, the rest once the first chunks'
    // segments are out.
    let upload = PartialUpload::start(s.addr, &data, data.len() / 2);
    let id = s.wait_video_folder();
    let playlist = format!("/play/{id}/360p/video.m3u8");
    wait_until("segments of the first chunk", || {
        let r = s.get(&playlist);
        r.status == 200 && extinfs(&r.text()).len() >= 2
    });
    let rec = s.get(&format!("/videos/{id}")).json();
    assert_eq!(rec["status"], "receiving", "{rec}");
    assert_eq!(upload.finish().status, 201);
    assert_whole(&s, &id, 4);
}

#[test]
fn a_split_job_killed_midway_is_done_again_after_a_restart() {
    let args = split_with(&["--x264-preset", "medium"]);
    let mut s = Server::process(&args);
    let id = upload_ok(&s, &std::fs::read(source()).unwrap(), FAST);
    let playlist = format!("/play/{id}/360p/video.m3u8");
    wait_until("a published segment", || {
        let r = s.get(&playlist);
        r.status == 200 && !extinfs(&r.text()).is_empty()
    });
    assert_eq!(
        s.get(&format!("/videos/{id}")).json()["status"],
        "processing",
        "finished too early to test a crash"
    );
    s.crash();
    s.restart(&args);
    assert_whole(&s, &id, 4);
}

#[test]
fn deleting_a_split_job_stops_every_chunk() {
    // A slow preset so the job is surely still running when deleted.
    let s = Server::start(&split_with(&["--x264-preset", "slower"]));
    let id = upload_ok(&s, &std::fs::read(source()).unwrap(), FAST);
    // Past the first chunk (6 s of 24): the second is running.
    s.wait_record(&id, "the job past its first chunk", |v| {
        assert_ne!(v["status"], "ready", "finished before it could be deleted");
        v["status"] == "processing" && v["progress"].as_f64().unwrap() > 0.3
    });
    let r = request(s.addr, "DELETE", &format!("/videos/{id}"), &[], &[]);
    assert!(r.status == 204 || r.status == 202, "{}", r.text());
    // Every chunk's thread and its encoders' (named after the job's).
    s.wait_no_job_threads_of(&id);
    wait_until("the record to go", || {
        s.get(&format!("/videos/{id}")).status == 404
    });
    assert_eq!(s.storage_entries(), Vec::<String>::new());
}
