//! Crash recovery for real: the `hlsd` binary is killed with SIGKILL (or
//! stopped with SIGTERM) mid-upload and mid-transcode, restarted on the same
//! storage, and must end in a clean, truthful state.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn clip(_name: &str, secs: &str, size: &str) -> Vec<u8> {
    h264_mp4(secs.parse().unwrap(), size, true)
}

/// Waits until the job is running and past `at` of the video.
fn wait_processing(s: &Server, id: &str, at: f64) {
    let t = Instant::now();
    loop {
        let v = s.get(&format!("/videos/{id}")).json();
        if v["status"] == "processing" && v["progress"].as_f64().unwrap() > at {
            return;
        }
        assert_ne!(v["status"], "ready", "finished too early to test a crash");
        assert!(t.elapsed() < Duration::from_secs(60), "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks a recovered video plays: VOD playlist, segments decode, durations add up.
fn assert_playable(s: &Server, id: &str, secs: f64) {
    let pl = s.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(
        pl.contains("#EXT-X-PLAYLIST-TYPE:VOD") && pl.contains("#EXT-X-ENDLIST"),
        "{pl}"
    );
    let segs = extinfs(&pl);
    let total: f64 = segs.iter().map(|(d, _)| d).sum();
    assert!((total - secs).abs() < 0.2, "{total} vs {secs}\n{pl}");
    let dir = tempfile::tempdir().unwrap();
    for (_, name) in segs {
        let r = s.get(&format!("/play/{id}/{name}"));
        assert_eq!(r.status, 200);
        let p = dir.path().join(&name);
        std::fs::write(&p, r.body).unwrap();
        assert_eq!(decode_errors(&p), "", "{name}");
    }
}

#[test]
fn sigkill_mid_upload_marks_it_failed_and_cleans_up() {
    let mut s = Server::start(&[]);
    let data = clip("rec-8s.mp4", "8", "320x240");
    let addr = s.addr;
    let uploader = std::thread::spawn(move || {
        upload(
            addr,
            &data,
            Send::Length {
                chunk: 16 * 1024,
                pause: Duration::from_millis(40),
            },
        )
    });
    let id = s.wait_video_folder();
    let t = Instant::now();
    while s.get(&format!("/videos/{id}")).json()["bytes_received"]
        .as_u64()
        .unwrap()
        < 100_000
    {
        assert!(t.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
    s.crash();
    let _ = uploader.join();
    s.restart(&[]);
    let v = s.get(&format!("/videos/{id}")).json();
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["code"], "upload_interrupted", "{v}");
    assert_eq!(s.files_of(&id), ["meta.json"]);
    assert_eq!(s.storage_entries(), [id]);
}

#[test]
fn sigkill_mid_transcode_requeues_and_finishes() {
    let mut s = Server::start(&["--x264-preset", "medium"]);
    let id = upload_ok(&s, &clip("rec-30s-360p.mp4", "30", "640x360"), FAST);
    wait_processing(&s, &id, 0.0);
    // Kill once the dead job has left outputs to clean up: a segment.
    let t = Instant::now();
    while !s
        .files_of(&id)
        .iter()
        .any(|f| f.starts_with("seg_") && f.ends_with(".ts"))
    {
        assert!(t.elapsed() < Duration::from_secs(60), "no segment appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        s.get(&format!("/videos/{id}")).json()["status"],
        "processing"
    );
    s.crash();
    // Something half-written that a crash can leave.
    std::fs::write(s.storage.path().join(&id).join("seg_00099.ts.tmp"), b"junk").unwrap();
    s.restart(&[]);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_playable(&s, &id, 30.0);
    let files = s.files_of(&id);
    assert!(
        !files.iter().any(|f| f.ends_with(".tmp") || f == "source"),
        "{files:?}"
    );
    assert!(files.contains(&"poster.jpg".to_string()));
    assert_eq!(s.storage_entries(), [id]);
}

#[test]
fn sigterm_stops_jobs_which_resume_after_restart() {
    let mut s = Server::start(&["--x264-preset", "medium"]);
    let id = upload_ok(&s, &clip("rec-30s-360p.mp4", "30", "640x360"), FAST);
    wait_processing(&s, &id, 0.05);
    let t = Instant::now();
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        t.elapsed()
    );
    s.restart(&[]);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_playable(&s, &id, 30.0);
}

#[test]
fn stray_folders_and_temp_files_are_swept_at_start() {
    let mut s = Server::start(&[]);
    let id = upload_ok(&s, &clip("rec-2s.mp4", "2", "160x120"), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    s.crash();
    let root = s.storage.path().to_path_buf();
    std::fs::create_dir(root.join("AAAAAAAAAAAAAAAAAAAAA")).unwrap();
    std::fs::write(root.join("AAAAAAAAAAAAAAAAAAAAA/source"), b"orphan").unwrap();
    std::fs::write(root.join(&id).join("video.m3u8.tmp"), b"half").unwrap();
    s.restart(&[]);
    assert_eq!(s.storage_entries(), std::slice::from_ref(&id));
    assert!(!s.files_of(&id).iter().any(|f| f.ends_with(".tmp")));
    assert_eq!(s.get(&format!("/videos/{id}")).json()["status"], "ready");
}
