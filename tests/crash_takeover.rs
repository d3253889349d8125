//! The takeover flow's crash points (issue 25, with issue 15's leases),
//! called by `crash_points` for every `takeover.*` failpoint: two nodes on
//! one bucket. Node A holds an upload cut off mid-body and a finished one
//! it kept in the bucket (`--keep-source always`), and dies as it is about
//! to say `ready` (its own failpoint, so the job cannot win the race).
//! Node B claims both once A's lease runs out and dies at `point`;
//! restarted under its name, B finishes what it claimed: the kept upload
//! ends `ready` on B and plays, with only its new generation's segments
//! in the bucket; the cut-off one ends `failed` (`node_lost`) with
//! nothing of it left but its record; B's scratch holds nothing of either.

use crate::common::s3::S3Server;
use crate::common::*;
use std::os::unix::process::ExitStatusExt;

pub(crate) fn crash_in_takeover(point: &str) {
    let s3 = S3Server::start();
    if !s3.exclusive {
        eprintln!("SKIPPED {point}: this store has no conditional writes, so no takeover");
        return;
    }
    eprintln!("crash point {point}");
    let a_log = tempfile::NamedTempFile::new().unwrap();
    let mut a = node(
        &s3,
        "node-a",
        "ready.after_outputs",
        &a_log,
        &["--keep-source", "always"],
    );
    let b_log = tempfile::NamedTempFile::new().unwrap();
    let mut b = node(&s3, "node-b", point, &b_log, &[]);
    let data = h264_mp4(12, "320x240", true);
    let cut_off = PartialUpload::start(a.addr, &data, data.len() / 2);
    let cut = a.wait_video_folder();
    wait_until("B to see the cut-off upload", || {
        b.get(&format!("/videos/{cut}")).status == 200
    });
    let kept = upload_ok(&a, &h264_mp4(4, "320x240", true), FAST);
    exits_at(&mut a, &a_log, "ready.after_outputs");
    drop(cut_off);
    exits_at(&mut b, &b_log, point);
    b.env.retain(|(k, _)| k != "HLSD_FAILPOINT");
    let again = args(&s3, "node-b", &[]);
    b.restart(&again.iter().map(String::as_str).collect::<Vec<_>>());
    let rec = b.wait_done(&kept);
    assert_eq!(
        (rec["status"].as_str(), rec["node"].as_str()),
        (Some("ready"), Some("node-b")),
        "{point}: {rec}"
    );
    assert_cli_plays(&format!("http://{}/play/{kept}/video.m3u8", b.addr));
    let generation = format!("g{}_", rec["generation"]);
    let keys = s3.keys_under(&format!("tk/{kept}"));
    for k in keys.iter().filter(|k| k.ends_with(".ts")) {
        let name = k.rsplit('/').next().unwrap();
        assert!(name.starts_with(&generation), "{point}: {k} in {keys:?}");
    }
    let rec = b.wait_done(&cut);
    assert_eq!(rec["error"]["code"], "node_lost", "{point}: {rec}");
    wait_until(
        &format!("{point}: the cut-off upload's objects to go"),
        || s3.keys_under(&format!("tk/{cut}")) == ["meta.json"],
    );
    let left = || {
        let ours = |e: &String| e == &kept || e == &cut;
        let dirs: Vec<String> = b.storage_entries().into_iter().filter(ours).collect();
        let files = dirs
            .iter()
            .flat_map(|d| crate::crash_points::walk_files(&b.storage.path().join(d)));
        files.collect::<Vec<String>>()
    };
    let since = std::time::Instant::now();
    while !left().is_empty() {
        let held = left();
        assert!(
            since.elapsed() < DEADLINE,
            "{point}: B's scratch still holds {held:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The flags of node `name` on the scenario's prefix.
fn args(s3: &S3Server, name: &str, extra: &[&str]) -> Vec<String> {
    let (mut args, _) = s3.node_args("tk", name);
    args.extend(["--lease-secs", "3"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Node `name`, killing itself at `point`, logging to `log`.
fn node(
    s3: &S3Server,
    name: &str,
    point: &str,
    log: &tempfile::NamedTempFile,
    extra: &[&str],
) -> Server {
    let (_, mut env) = s3.node_args("tk", name);
    env.push(("HLSD_FAILPOINT".into(), point.into()));
    let args = args(s3, name, extra);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::process_full(tempfile::tempdir().unwrap(), &argv, env, log.path())
}

/// `s` ends, killed by its failpoint `point`.
fn exits_at(s: &mut Server, log: &tempfile::NamedTempFile, point: &str) {
    let status = s.wait_exit();
    let said = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        status.signal() == Some(9) && said.contains(&format!("failpoint {point} reached")),
        "{point}: never reached ({status:?})"
    );
}
