//! The library API: list/paginate/filter, rename, delete (also while a job
//! runs or an upload arrives), Server-Sent Events, posters, quota, disk full.

use crate::common::*;
use std::time::Duration;

fn clip(_name: &str, secs: &str, size: &str) -> Vec<u8> {
    h264_mp4(secs.parse().unwrap(), size, true)
}

fn upload_named(s: &Server, name: &str, data: &[u8]) -> String {
    let (k, v) = multipart_header();
    let r = send_request(
        s.addr,
        "POST",
        "/upload",
        &[(k, &v)],
        &multipart("video", name, data),
        FAST,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_owned()
}

#[test]
fn list_paginate_filter_and_rename() {
    let s = Server::start(&[]);
    let data = clip("lib-2s.mp4", "2", "160x120");
    let ids: Vec<String> = (0..3)
        .map(|i| upload_named(&s, &format!("clip{i}.mp4"), &data))
        .collect();
    for id in &ids {
        assert_eq!(s.wait_done(id)["status"], "ready");
    }
    // A failed one: an MP4 index promising frames that never come.
    let page = s.get("/videos?limit=2").json();
    let got: Vec<&str> = page["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()], "newest first");
    let cursor = page["next_cursor"].as_str().unwrap();
    let page2 = s.get(&format!("/videos?limit=2&cursor={cursor}")).json();
    assert_eq!(page2["videos"][0]["id"], ids[0].as_str());
    assert!(page2["next_cursor"].is_null());
    assert_eq!(
        s.get("/videos?status=ready").json()["videos"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        s.get("/videos?status=failed").json()["videos"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    s.get("/videos?status=bogus")
        .assert_error(400, "bad_request");
    s.get("/videos?limit=0").assert_error(400, "bad_request");

    let rec = s.get(&format!("/videos/{}", ids[0])).json();
    assert_eq!(rec["title"], "clip0");
    assert_eq!(rec["file_name"], "clip0.mp4");
    assert!(rec["storage_bytes"].as_u64().unwrap() > 10_000);
    assert_eq!(rec["renditions"][0]["playlist"], "video.m3u8");
    let r = request(
        s.addr,
        "PATCH",
        &format!("/videos/{}", ids[0]),
        &[("Content-Type", "application/json")],
        br#"{"title":"Holiday in Crete"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.get(&format!("/videos/{}", ids[0])).json()["title"],
        "Holiday in Crete"
    );
    request(
        s.addr,
        "PATCH",
        &format!("/videos/{}", ids[0]),
        &[],
        b"not json",
    )
    .assert_error(400, "bad_request");
    request(
        s.addr,
        "PATCH",
        &format!("/videos/{}", ids[0]),
        &[],
        br#"{"title":""}"#,
    )
    .assert_error(400, "bad_request");
    request(
        s.addr,
        "PATCH",
        "/videos/AAAAAAAAAAAAAAAAAAAAA",
        &[],
        br#"{"title":"x"}"#,
    )
    .assert_error(404, "not_found");
    // The change survived on disk.
    let meta = std::fs::read_to_string(s.storage.path().join(&ids[0]).join("meta.json")).unwrap();
    assert!(meta.contains("Holiday in Crete"));
}

#[test]
fn delete_ready_video_removes_everything() {
    let s = Server::start(&[]);
    let id = upload_named(&s, "a.mp4", &clip("lib-2s.mp4", "2", "160x120"));
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let r = request(s.addr, "DELETE", &format!("/videos/{id}"), &[], &[]);
    assert_eq!(r.status, 204);
    s.get(&format!("/videos/{id}"))
        .assert_error(404, "not_found");
    assert_eq!(s.get(&format!("/play/{id}/video.m3u8")).status, 404);
    assert_eq!(s.storage_entries(), Vec::<String>::new());
    request(s.addr, "DELETE", &format!("/videos/{id}"), &[], &[]).assert_error(404, "not_found");
}

#[test]
fn delete_while_processing_stops_the_job_promptly() {
    // A slow preset so the job is surely still running when deleted.
    let s = Server::start(&["--x264-preset", "medium"]);
    let id = upload_named(&s, "long.mp4", &clip("lib-30s-360p.mp4", "30", "640x360"));
    let v = s.wait_record(&id, "the job to make progress", |v| {
        assert_ne!(v["status"], "ready", "finished before it could be deleted");
        v["status"] == "processing" && v["progress"].as_f64().unwrap() > 0.0
    });
    assert_eq!(v["status"], "processing");
    // The job thread (its libav workers inherit its name).
    assert!(!s.job_threads_of(&id).is_empty());
    let r = request(s.addr, "DELETE", &format!("/videos/{id}"), &[], &[]);
    // 204 once the job has stopped; 202 if it takes longer (finished in
    // the background). How fast it stops is measured in benches/.
    assert!(r.status == 204 || r.status == 202, "{}", r.text());
    if r.status == 202 {
        assert_eq!(r.json()["status"], "deleting");
    }
    s.wait_no_job_threads_of(&id);
    wait_until("the record to go", || {
        s.get(&format!("/videos/{id}")).status == 404
    });
    // The job thread, the only writer, is gone: nothing can reappear.
    assert_eq!(s.storage_entries(), Vec::<String>::new());
}

#[test]
fn delete_while_uploading_cuts_the_upload() {
    let s = Server::start(&[]);
    let data = clip("lib-8s.mp4", "8", "320x240");
    let addr = s.addr;
    let uploader = std::thread::spawn(move || {
        upload(
            addr,
            &data,
            Send::Length {
                chunk: 16 * 1024,
                pause: Duration::from_millis(30),
            },
        )
    });
    let id = s.wait_video_folder();
    s.wait_record(&id, "bytes to arrive", |v| {
        v["bytes_received"].as_u64().unwrap() > 0
    });
    let r = request(s.addr, "DELETE", &format!("/videos/{id}"), &[], &[]);
    assert!(r.status == 204 || r.status == 202, "{}", r.text());
    let up = uploader.join().unwrap();
    assert!(up.status >= 400, "the upload went on: {}", up.text());
    s.assert_storage_empty_soon();
    s.wait_no_job_threads_of(&id);
}

#[test]
fn events_stream_progress_then_ready() {
    let s = Server::start(&["--x264-preset", "veryfast"]);
    let id = upload_named(&s, "sse.mp4", &clip("lib-20s-360p.mp4", "20", "640x360"));
    let r = s.get(&format!("/videos/{id}/events"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = r.text();
    let events: Vec<(String, serde_json::Value)> = text
        .split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect();
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "ready", "{text}");
    assert_eq!(data["progress"], 1.0);
    let progress: Vec<f64> = events
        .iter()
        .filter(|(n, _)| n == "processing")
        .map(|(_, d)| d["progress"].as_f64().unwrap())
        .collect();
    assert!(progress.len() >= 2, "too few progress events: {text}");
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert!(events.len() <= 103, "a flood of {} events", events.len());
}

#[test]
fn poster_and_thumbnail_skip_black_frames() {
    let s = Server::start(&[]);
    // 1.5 s of black, then a picture: 10% of 8 s is still black.
    let data = fixture(
        "lib-black-start.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=black:size=480x270:rate=30:duration=1.5",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=480x270:rate=30:duration=6.5",
            "-filter_complex",
            "[0][1]concat=n=2:v=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let id = upload_named(&s, "poster.mp4", &data);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let dir = tempfile::tempdir().unwrap();
    for (file, w, h) in [("poster.jpg", 480, 270), ("thumb.jpg", 320, 180)] {
        let r = s.get(&format!("/play/{id}/{file}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("image/jpeg"));
        assert_eq!(&r.body[..2], &[0xff, 0xd8], "JPEG SOI");
        let p = dir.path().join(file);
        std::fs::write(&p, &r.body).unwrap();
        let v = ffprobe(&p, &["-show_streams"]);
        assert_eq!(v["streams"][0]["codec_name"], "mjpeg");
        assert_eq!(
            (
                v["streams"][0]["width"].as_u64(),
                v["streams"][0]["height"].as_u64()
            ),
            (Some(w), Some(h))
        );
        // Mean brightness: not a black frame.
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&p)
            .args([
                "-vf",
                "scale=1:1:flags=area",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "gray",
                "-",
            ])
            .output()
            .unwrap();
        assert!(out.stdout[0] > 40, "{file} is dark: {}", out.stdout[0]);
    }
}

#[test]
fn quota_is_507_and_leaves_nothing() {
    let s = Server::start(&["--max-storage-bytes", "400000"]);
    let data = clip("lib-8s.mp4", "8", "320x240");
    assert!(data.len() > 400_000);
    upload(s.addr, &data, FAST).assert_error(507, "quota_exceeded");
    s.assert_storage_empty_soon();
    upload(
        s.addr,
        &data,
        Send::Chunked {
            chunk: 16 * 1024,
            pause: Duration::ZERO,
        },
    )
    .assert_error(507, "quota_exceeded");
    s.assert_storage_empty_soon();
    // Something small still fits.
    let small = clip("lib-1s-tiny.mp4", "1", "96x64");
    let id = upload_ok(&s, &small, FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
}

#[test]
fn disk_full_fails_the_job_cleanly_and_others_keep_playing() {
    let Some(fs) = Tmpfs::mount(4 << 20) else {
        return;
    };
    let storage = tempfile::TempDir::new_in(fs.0.path()).unwrap();
    // Lossless x264 (capped at 8 Mb/s by VBV) makes outputs far larger than
    // the small sources: 1 s fits, 20 s does not (its source does).
    let s = Server::start_in(storage, &["--crf", "1"]);
    let a = upload_ok(&s, &clip("lib-1s.mp4", "1", "320x240"), FAST);
    assert_eq!(s.wait_done(&a)["status"], "ready");
    let b = upload_ok(&s, &clip("lib-20s.mp4", "20", "320x240"), FAST);
    let rec = s.wait_done(&b);
    assert_eq!(rec["status"], "failed", "{rec}");
    assert_eq!(rec["error"]["code"], "disk_full", "{rec}");
    assert!(rec["error"]["message"]
        .as_str()
        .unwrap()
        .contains("disk is full"));
    // B's partial outputs are gone; A still plays.
    assert!(
        s.files_of(&b)
            .iter()
            .all(|f| f == "meta.json" || f == "source" || f == "source.done"),
        "{:?}",
        s.files_of(&b)
    );
    let pl = s.get(&format!("/play/{a}/video.m3u8"));
    assert_eq!(pl.status, 200);
    for (_, seg) in extinfs(&pl.text()) {
        assert_eq!(s.get(&format!("/play/{a}/{seg}")).status, 200);
    }
    drop(s);
}

#[test]
fn keep_source_policies() {
    let data = clip("lib-2s.mp4", "2", "160x120");
    // Raw H.264 has no duration in its header: it passes the probe, then
    // fails during the transcode when it runs past --max-duration-secs.
    let long_raw = fixture(
        "lib-8s.h264",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=30",
            "-t",
            "8",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-f",
            "h264",
        ],
    );
    for (policy, keep_ready, keep_failed) in [
        ("always", true, true),
        ("until-ready", false, true),
        ("never", false, false),
    ] {
        let s = Server::start(&["--keep-source", policy, "--max-duration-secs", "4"]);
        let id = upload_ok(&s, &data, FAST);
        assert_eq!(s.wait_done(&id)["status"], "ready");
        assert_eq!(
            s.files_of(&id).contains(&"source".to_string()),
            keep_ready,
            "{policy} ready: {:?}",
            s.files_of(&id)
        );
        let id = upload_ok(&s, &long_raw, FAST);
        let rec = s.wait_done(&id);
        assert_eq!(rec["status"], "failed", "{rec}");
        assert_eq!(rec["error"]["code"], "unprocessable_media", "{rec}");
        assert_eq!(
            s.files_of(&id).contains(&"source".to_string()),
            keep_failed,
            "{policy} failed: {:?}",
            s.files_of(&id)
        );
    }
}

/// A 4 s 320×240 clip of noise at a high bit rate (no audio): its source
/// is far larger than its outputs, so a quota sized for three whole videos
/// cannot take a fourth upload.
fn heavy_clip() -> Vec<u8> {
    fixture(
        "lib-heavy-noise-4s.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30,noise=alls=30:allf=t+u",
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "10",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ],
    )
}

/// An upper bound of what hlsd reserves for the outputs of [`heavy_clip`]:
/// its one 240p rung at the ladder's 300 kb/s cap for 4 s plus one VBV
/// buffer (600 kb), +10% for MPEG-TS, plus poster and thumbnail (~104 KB).
const HEAVY_OUTPUTS: u64 = 400_000;

#[test]
fn the_quota_holds_when_eight_uploads_start_at_once() {
    let data = heavy_clip();
    let size = data.len() as u64;
    assert!(size > 4 * HEAVY_OUTPUTS, "{size}");
    let quota = 3 * (size + HEAVY_OUTPUTS);
    let s = Server::start(&[
        "--max-storage-bytes",
        &quota.to_string(),
        "--copy",
        "never",
        "--keep-source",
        "always",
        // The ledger's arithmetic here counts HLS outputs only.
        "--downloads",
        "off",
    ]);
    let data = std::sync::Arc::new(data);
    let uploads: Vec<_> = (0..8)
        .map(|_| {
            let (addr, data) = (s.addr, data.clone());
            std::thread::spawn(move || upload(addr, &data, FAST))
        })
        .collect();
    let answers: Vec<Response> = uploads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut accepted = Vec::new();
    for r in &answers {
        if r.status == 201 {
            accepted.push(r.json()["id"].as_str().unwrap().to_owned());
        } else {
            r.assert_error(507, "quota_exceeded");
        }
    }
    assert!(
        !accepted.is_empty() && accepted.len() <= 3,
        "{} accepted",
        accepted.len()
    );
    for id in &accepted {
        let rec = s.wait_done(id);
        assert_eq!(rec["status"], "ready", "{rec}");
    }
    // Nothing of the refused ones; never above the quota (by more than a
    // segment, here none).
    let mut kept = s.storage_entries();
    kept.sort();
    accepted.sort();
    assert_eq!(kept, accepted);
    let used = dir_size(s.storage.path());
    assert!(used <= quota, "{used} > {quota}");
}

#[test]
fn a_job_whose_outputs_would_cross_the_quota_fails_and_others_keep_playing() {
    let data = heavy_clip();
    let size = data.len() as u64;
    // One whole video fits, and a second source, but not its outputs.
    let quota = 2 * size + HEAVY_OUTPUTS + HEAVY_OUTPUTS / 4;
    let s = Server::start(&[
        "--max-storage-bytes",
        &quota.to_string(),
        "--copy",
        "never",
        "--keep-source",
        "always",
        // The ledger's arithmetic here counts HLS outputs only.
        "--downloads",
        "off",
    ]);
    let a = upload_ok(&s, &data, FAST);
    assert_eq!(s.wait_done(&a)["status"], "ready");
    let b = upload_ok(&s, &data, FAST);
    let rec = s.wait_done(&b);
    assert_eq!(rec["status"], "failed", "{rec}");
    assert_eq!(rec["error"]["code"], "quota_exceeded", "{rec}");
    assert!(
        s.files_of(&b)
            .iter()
            .all(|f| ["meta.json", "source", "source.done"].contains(&f.as_str())),
        "{:?}",
        s.files_of(&b)
    );
    assert_cli_plays(&format!("http://{}/play/{a}/video.m3u8", s.addr));
    assert!(dir_size(s.storage.path()) <= quota);
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}
