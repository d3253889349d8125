//! One door per video (issue 25): the reproductions of the issue, each a
//! race or a crash between two features, now answered consistently.

use crate::common::*;
use std::time::Duration;

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

fn put_captions(s: &Server, id: &str, lang: &str, vtt: &[u8]) -> Response {
    request(
        s.addr,
        "PUT",
        &format!("/videos/{id}/captions/{lang}"),
        &[],
        vtt,
    )
}

/// A WebVTT file of `n` cues, each `text_len` bytes, over 2 s.
fn long_track(n: usize, text_len: usize) -> String {
    let mut vtt = String::from("WEBVTT\n\n");
    let text = "x".repeat(text_len);
    for i in 0..n {
        let ms = i * 2000 / n.max(1);
        vtt.push_str(&format!(
            "00:00:{:02}.{:03} --> 00:00:01.999\n{text}\n\n",
            ms / 1000,
            ms % 1000
        ));
    }
    vtt
}

/// Creates a resumable upload of `len` bytes; its id.
fn tus_create(s: &Server, len: usize) -> String {
    let len = len.to_string();
    let r = request(
        s.addr,
        "POST",
        "/files",
        &[TUS, ("Upload-Length", &len)],
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_owned()
}

fn patch(s: &Server, id: &str, at: usize, bytes: &[u8]) -> Response {
    let at = at.to_string();
    let head = [TUS, OCTETS, ("Upload-Offset", at.as_str())];
    request(s.addr, "PATCH", &format!("/files/{id}"), &head, bytes)
}

/// What a deleted video must leave: nothing, before and after a restart.
fn assert_gone(s: &Server, id: &str) {
    wait_until("the deleted video's folder to go", || {
        !s.storage.path().join(id).exists()
    });
    assert_eq!(s.get(&format!("/videos/{id}")).status, 404);
}

/// DELETE racing a caption PUT (and a PUT racing a DELETE): whichever
/// wins, a video answered 204/202 never comes back, not even after a
/// restart, and the PUT's answer is one of the two consistent ones.
#[test]
fn a_caption_put_racing_a_delete_never_brings_the_video_back() {
    // A process: it is killed (SIGKILL) and restarted.
    let mut s = Server::process(&[]);
    let clip = h264_mp4(2, "160x120", false);
    let ids: Vec<String> = (0..6).map(|_| upload_ok(&s, &clip, FAST)).collect();
    for id in &ids {
        assert_eq!(s.wait_done(id)["status"], "ready");
    }
    // A track big enough that its write takes a while.
    let vtt = long_track(2000, 400);
    for (i, id) in ids.iter().enumerate() {
        let (addr, id2, vtt) = (s.addr, id.clone(), vtt.clone());
        let put = std::thread::spawn(move || {
            request(
                addr,
                "PUT",
                &format!("/videos/{id2}/captions/en"),
                &[],
                vtt.as_bytes(),
            )
        });
        // Half of the deletions start first, half after the PUT began.
        if i % 2 == 1 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let d = request(s.addr, "DELETE", &format!("/videos/{id}"), &[], &[]);
        assert!(d.status == 204 || d.status == 202, "{}", d.text());
        let p = put.join().unwrap();
        assert!(
            [200, 201, 404].contains(&p.status),
            "{}: {}",
            p.status,
            p.text()
        );
        assert_gone(&s, id);
    }
    s.crash();
    s.restart(&[]);
    for id in &ids {
        assert_gone(&s, id);
    }
    assert!(s.get("/videos").json()["videos"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(s.storage_entries(), Vec::<String>::new());
}

/// DELETE racing the last tus PATCH: the PATCH is answered 204 (it came
/// first) or refused (the deletion came first), never 500, and the video
/// never comes back.
#[test]
fn a_last_patch_racing_a_delete_is_refused_or_deleted_cleanly() {
    // A process: it is killed (SIGKILL) and restarted.
    let mut s = Server::process(&[]);
    let data = h264_mp4(2, "160x120", true);
    let mut ids = Vec::new();
    for i in 0..8 {
        let id = tus_create(&s, data.len());
        let half = data.len() / 2;
        assert_eq!(patch(&s, &id, 0, &data[..half]).status, 204);
        let (addr, id2, rest) = (s.addr, id.clone(), data[half..].to_vec());
        let last = std::thread::spawn(move || {
            let at = half.to_string();
            let head = [TUS, OCTETS, ("Upload-Offset", at.as_str())];
            request(addr, "PATCH", &format!("/files/{id2}"), &head, &rest)
        });
        if i % 2 == 1 {
            std::thread::sleep(Duration::from_millis(3));
        }
        let d = request(s.addr, "DELETE", &format!("/videos/{id}"), &[], &[]);
        assert!(d.status == 204 || d.status == 202, "{}", d.text());
        let p = last.join().unwrap();
        assert!(p.status < 500, "{}: {}", p.status, p.text());
        assert_gone(&s, &id);
        ids.push(id);
    }
    s.crash();
    s.restart(&[]);
    for id in &ids {
        assert_gone(&s, id);
    }
    assert_eq!(s.storage_entries(), Vec::<String>::new());
}

/// A caption track sent for a resumable upload still arriving survives a
/// kill -9: listed, served, and at `ready` its cue is there.
#[test]
fn captions_of_an_upload_still_arriving_survive_a_crash() {
    // A process: it is killed (SIGKILL) and restarted.
    let mut s = Server::process(&["--segment-seconds", "2"]);
    let data = h264_mp4(4, "160x120", true);
    let id = tus_create(&s, data.len());
    let half = data.len() / 2;
    assert_eq!(patch(&s, &id, 0, &data[..half]).status, 204);
    let vtt = "WEBVTT\n\n00:00.500 --> 00:01.500\nStill here after a crash\n";
    let r = wait_for("the upload to be recognised", || {
        let r = put_captions(&s, &id, "en", vtt.as_bytes());
        (r.status != 503).then_some(r)
    });
    assert_eq!(r.status, 201, "{}", r.text());
    s.crash();
    s.restart_same_port(&["--segment-seconds", "2"]);
    let head = request(s.addr, "HEAD", &format!("/files/{id}"), &[TUS], &[]);
    let at: usize = head.header("upload-offset").unwrap().parse().unwrap();
    assert_eq!(patch(&s, &id, at, &data[at..]).status, 204);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    let track = &rec["captions"][0];
    assert_eq!(track["lang"], "en", "{rec}");
    let playlist = format!("/play/{id}/cc-en/v{}.m3u8", track["version"]);
    let text = s.get(&playlist).text();
    let first = extinfs(&text)[0].1.clone();
    let vtt = s.get(&format!("/play/{id}/cc-en/{first}")).text();
    assert!(vtt.contains("Still here after a crash"), "{vtt}");
}

/// Captions are bounded before any work and counted in the quota: an
/// unrecognised upload gets 503; one cue spanning hours 413 (it would be
/// copied into every segment); a track that does not fit 507; nothing of
/// a refused track is written, and `storage_bytes` says what is stored.
#[test]
fn captions_are_bounded_and_counted_before_they_are_written() {
    let clip = h264_mp4(2, "160x120", false);
    let s = Server::start(&["--max-storage-bytes", "2000000"]);
    let id = tus_create(&s, clip.len());
    let cue = format!(
        "WEBVTT\n\n00:00.000 --> 12:00:00.000\n{}\n",
        "y".repeat(50_000)
    );
    put_captions(&s, &id, "en", cue.as_bytes()).assert_error(503, "not_ready");
    assert_eq!(patch(&s, &id, 0, &clip).status, 204);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    // Settled: the spool gone, then what is stored measured, counted in
    // the quota and recorded (in that order, after `ready`).
    let rec = wait_for(
        "the spool to go and the record to say what is stored",
        || {
            let rec = s.get(&format!("/videos/{id}")).json();
            let stored = metrics_of(&s)["hlsd_quota_stored_bytes"] as u64;
            let settled = !s.files_of(&id).contains(&"source".to_owned())
                && rec["storage_bytes"].as_u64() == Some(stored);
            settled.then_some(rec)
        },
    );
    let before = (rec["storage_bytes"].as_u64().unwrap(), s.files_of(&id));
    let held = metrics_of(&s)["hlsd_quota_stored_bytes"];
    // 2 MiB of cues, each over the whole video: fits in no quota of 2 MB.
    let big = long_track(5, 400_000);
    put_captions(&s, &id, "de", big.as_bytes()).assert_error(507, "quota_exceeded");
    let after = s.get(&format!("/videos/{id}")).json();
    assert_eq!(
        (after["storage_bytes"].as_u64().unwrap(), s.files_of(&id)),
        before
    );
    assert_eq!(metrics_of(&s)["hlsd_quota_stored_bytes"], held);
    // A small track is counted: the record and the ledger grow by its bytes.
    let r = put_captions(&s, &id, "fr", long_track(3, 10).as_bytes());
    assert_eq!(r.status, 201, "{}", r.text());
    let grown = r.json()["storage_bytes"].as_u64().unwrap();
    let on_disk: u64 = std::fs::read_dir(s.storage.path().join(&id).join("cc-fr"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(grown, before.0 + on_disk);
    assert_eq!(
        metrics_of(&s)["hlsd_quota_stored_bytes"],
        held + on_disk as f64
    );
}

/// One long cue over a long video would be copied into hundreds of
/// windows (the 2 MiB cue over 10 minutes wrote 201 MB): 413
/// before any work, nothing written.
#[test]
fn one_cue_over_a_long_video_is_refused_before_any_work() {
    let s = Server::start(&["--segment-seconds", "1"]);
    // Ten minutes of a 16x16 picture at 1 fps: tiny, but 600 windows.
    let data = fixture(
        "lc-10min.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=gray:s=16x16:r=1",
            "-t",
            "600",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-movflags",
            "+faststart",
        ],
    );
    let id = tus_create(&s, data.len());
    assert_eq!(patch(&s, &id, 0, &data[..data.len() / 2]).status, 204);
    let cue = format!(
        "WEBVTT\n\n00:00.000 --> 10:00.000\n{}\n",
        "z".repeat(1 << 20)
    );
    let r = wait_for("the upload to be recognised", || {
        let r = put_captions(&s, &id, "en", cue.as_bytes());
        (r.status != 503).then_some(r)
    });
    r.assert_error(413, "captions_too_large");
    let files = s.files_of(&id);
    assert!(!files.iter().any(|f| f.starts_with("cc-")), "{files:?}");
}
