//! Crash recovery for real: the `hlsd` binary is killed with SIGKILL (or
//! stopped with SIGTERM) mid-upload and mid-transcode, restarted on the same
//! storage, and must end in a clean, truthful state.

mod common;

use common::*;

fn clip(_name: &str, secs: &str, size: &str) -> Vec<u8> {
    h264_mp4(secs.parse().unwrap(), size, true)
}

/// Waits until the job is running and past `at` of the video.
fn wait_processing(s: &Server, id: &str, at: f64) {
    s.wait_record(id, "the job to run", |v| {
        assert_ne!(v["status"], "ready", "finished too early to test a crash");
        v["status"] == "processing" && v["progress"].as_f64().unwrap() > at
    });
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
    // Half the body is sent; the rest never is.
    let upload = PartialUpload::start(s.addr, &data, data.len() / 2);
    let id = s.wait_video_folder();
    s.wait_record(&id, "bytes to arrive", |v| {
        v["bytes_received"].as_u64().unwrap() >= 100_000
    });
    s.crash();
    drop(upload);
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
    // Kill once the dead job has published a segment.
    let playlist = format!("/play/{id}/video.m3u8");
    let (first, before) = wait_for("a published segment", || {
        let (_, name) = extinfs(&s.get(&playlist).text()).into_iter().next()?;
        let seg = s.get(&format!("/play/{id}/{name}"));
        (seg.status == 200).then_some((name, seg.body))
    });
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
    // The redone job wrote a new generation of names: a name a player may
    // have cached never carries other bytes.
    let seg = s.get(&format!("/play/{id}/{first}"));
    assert!(
        seg.status == 404 || seg.body == before,
        "{first} changed its bytes"
    );
    for (_, name) in extinfs(&s.get(&playlist).text()) {
        assert_ne!(name, first, "a published name was reused");
    }
    let files = s.files_of(&id);
    assert!(
        !files.iter().any(|f| f.ends_with(".tmp") || f == "source"),
        "{files:?}"
    );
    // The old generation is gone once the new one is published.
    assert!(!files.contains(&first), "{files:?}");
    assert!(files.contains(&"poster.jpg".to_string()));
    assert_eq!(s.storage_entries(), [id]);
}

#[test]
fn sigterm_stops_jobs_which_resume_after_restart() {
    let mut s = Server::start(&["--x264-preset", "medium"]);
    let id = upload_ok(&s, &clip("rec-30s-360p.mp4", "30", "640x360"), FAST);
    wait_processing(&s, &id, 0.05);
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
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
    // Folders that hold nothing of value: empty, or only temporary files.
    std::fs::create_dir(root.join("AAAAAAAAAAAAAAAAAAAAA")).unwrap();
    std::fs::create_dir(root.join("BBBBBBBBBBBBBBBBBBBBB")).unwrap();
    std::fs::write(root.join("BBBBBBBBBBBBBBBBBBBBB/meta.json.1-2.tmp"), b"{").unwrap();
    std::fs::write(root.join(&id).join("video.m3u8.tmp"), b"half").unwrap();
    s.restart(&[]);
    assert_eq!(s.storage_entries(), std::slice::from_ref(&id));
    assert!(!s.files_of(&id).iter().any(|f| f.ends_with(".tmp")));
    assert_eq!(s.get(&format!("/videos/{id}")).json()["status"], "ready");
}
