//! Crash recovery for real: the `hlsd` binary is killed with SIGKILL (or
//! stopped with SIGTERM) mid-upload and mid-transcode, restarted on the same
//! storage, and must end in a clean, truthful state.

use crate::common::*;

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
    let mut pl = s.get(&format!("/play/{id}/video.m3u8")).text();
    let mut base = format!("/play/{id}");
    // A ladder: check its top rung.
    if let Some(uri) = pl
        .lines()
        .find(|l| !l.starts_with('#') && l.ends_with(".m3u8"))
    {
        let rung = uri.split('/').next().unwrap().to_owned();
        pl = s.get(&format!("{base}/{uri}")).text();
        base = format!("{base}/{rung}");
    }
    assert!(
        pl.contains("#EXT-X-PLAYLIST-TYPE:VOD") && pl.contains("#EXT-X-ENDLIST"),
        "{pl}"
    );
    let segs = extinfs(&pl);
    let total: f64 = segs.iter().map(|(d, _)| d).sum();
    assert!((total - secs).abs() < 0.2, "{total} vs {secs}\n{pl}");
    let dir = tempfile::tempdir().unwrap();
    for (_, name) in segs {
        let r = s.get(&format!("{base}/{name}"));
        assert_eq!(r.status, 200);
        let p = dir.path().join(&name);
        std::fs::write(&p, r.body).unwrap();
        assert_eq!(decode_errors(&p), "", "{name}");
    }
}

#[test]
fn sigkill_mid_upload_marks_it_failed_and_cleans_up() {
    let mut s = Server::process(&[]);
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
    let mut s = Server::process(&["--x264-preset", "medium"]);
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
    let mut s = Server::process(&["--x264-preset", "medium"]);
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
    let mut s = Server::process(&[]);
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

/// A record truncated by a power cut or a full disk (to 0 bytes, to half
/// its length) is rebuilt from the playlists: the video is still listed,
/// ready, and plays — a ladder and a single rendition alike.
#[test]
fn a_truncated_record_is_rebuilt_and_the_video_still_plays() {
    let mut s = Server::process(&[]);
    let ladder = upload_ok(&s, &clip("rec-4s-480p.mp4", "4", "854x480"), FAST);
    let single = upload_ok(&s, &clip("rec-4s-120p.mp4", "4", "160x120"), FAST);
    for id in [&ladder, &single] {
        assert_eq!(s.wait_done(id)["status"], "ready");
    }
    let before = s.get(&format!("/videos/{ladder}")).json();
    s.crash();
    let meta = |id: &str| s.storage.path().join(id).join("meta.json");
    std::fs::write(meta(&ladder), b"").unwrap();
    let half = std::fs::read(meta(&single)).unwrap();
    std::fs::write(meta(&single), &half[..half.len() / 2]).unwrap();
    s.restart(&[]);
    let listed = s.get("/videos").json();
    for id in [&ladder, &single] {
        let v = s.get(&format!("/videos/{id}")).json();
        assert_eq!(v["status"], "ready", "{v}");
        assert!(
            listed["videos"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["id"] == id.as_str()),
            "{listed}"
        );
        assert_playable(&s, id, 4.0);
        assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", s.addr));
    }
    let after = s.get(&format!("/videos/{ladder}")).json();
    assert_eq!(after["renditions"].as_array().unwrap().len(), 2, "{after}");
    assert_eq!(
        after["renditions"],
        before["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["copied"] = false.into();
                r
            })
            .collect::<serde_json::Value>(),
        "{after}"
    );
}

/// A record that cannot be rebuilt keeps its folder and is listed as
/// failed (`damaged_record`); a folder that cannot be recovered at all is
/// skipped and the server still starts; empty folders go.
#[test]
fn damaged_folders_are_kept_or_skipped_and_the_server_starts() {
    let mut s = Server::process(&[]);
    let good = upload_ok(&s, &clip("rec-2s.mp4", "2", "160x120"), FAST);
    let gone = upload_ok(&s, &clip("rec-2s.mp4", "2", "160x120"), FAST);
    assert_eq!(s.wait_done(&good)["status"], "ready");
    assert_eq!(s.wait_done(&gone)["status"], "ready");
    s.crash();
    let root = s.storage.path().to_path_buf();
    // An upload cut short with its record lost: its bytes are kept.
    let damaged = "DDDDDDDDDDDDDDDDDDDDD";
    std::fs::create_dir(root.join(damaged)).unwrap();
    std::fs::write(root.join(damaged).join("meta.json"), b"{\"id\": 12").unwrap();
    std::fs::write(root.join(damaged).join("source"), b"half an upload").unwrap();
    // A folder recovery cannot handle (the damaged record cannot be set
    // aside): logged and skipped.
    let broken = "EEEEEEEEEEEEEEEEEEEEE";
    std::fs::create_dir_all(root.join(broken).join("meta.json.damaged/x")).unwrap();
    std::fs::write(root.join(broken).join("meta.json"), b"garbage").unwrap();
    std::fs::write(root.join(broken).join("source"), b"bytes").unwrap();
    // Nothing of value.
    std::fs::create_dir(root.join("FFFFFFFFFFFFFFFFFFFFF")).unwrap();
    // A deletion the crash interrupted is finished.
    let meta = root.join(&gone).join("meta.json");
    let rec = std::fs::read_to_string(&meta)
        .unwrap()
        .replace("\"ready\"", "\"deleting\"");
    std::fs::write(&meta, rec).unwrap();
    s.restart(&[]);
    assert!(!root.join(&gone).exists());
    assert_eq!(s.get(&format!("/videos/{gone}")).status, 404);
    let v = s.get(&format!("/videos/{damaged}")).json();
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["code"], "damaged_record", "{v}");
    assert!(s.files_of(damaged).contains(&"source".to_string()));
    assert!(s
        .files_of(damaged)
        .contains(&"meta.json.damaged".to_string()));
    assert!(root.join(broken).join("source").exists());
    assert!(!root.join("FFFFFFFFFFFFFFFFFFFFF").exists());
    assert_eq!(s.get(&format!("/videos/{good}")).json()["status"], "ready");
    assert_playable(&s, &good, 2.0);
}
