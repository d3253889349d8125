//! A slow bucket (issue 24): a job hands each finished segment to its own
//! bounded publishing queue and goes on encoding; how far ahead of the
//! bucket it may get is that queue, not the video's length; the order
//! (segments, then the playlist that lists them, then the master) holds;
//! and requests for files the bucket is slow to give hold no thread each.

use crate::common::s3::S3Server;
use crate::common::throttle::Throttle;
use crate::common::*;

/// Publications a job's queue holds at most (`hlsd::hls::queue::QUEUED`).
const QUEUED: usize = 8;

fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

fn segments(names: impl Iterator<Item = String>) -> usize {
    names.filter(|n| n.ends_with(".ts")).count()
}

fn scratch_segments(dir: &std::path::Path) -> usize {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type().unwrap().is_dir() {
                true => stack.push(e.path()),
                false => names.push(e.file_name().to_string_lossy().into_owned()),
            }
        }
    }
    segments(names.into_iter())
}

#[test]
fn a_stalled_bucket_lets_the_encoder_run_ahead_by_the_queue_and_no_further() {
    let s3 = S3Server::start();
    // The bucket as a distant one: 2 MB/s from hlsd to it.
    let proxy = Throttle::start(s3.addr, 2_000_000);
    let flags = [
        "--segment-seconds",
        "1",
        "--ladder",
        "source",
        "--copy",
        "never",
    ];
    let node = s3.start_node_via(&proxy.url(), "slow", "node-a", &flags);
    // Long enough (120 one-second segments) that however late this test
    // sees the first one in the bucket, more than a queue's worth is left
    // to make when the bucket stops (40 were not, once, on a loaded box).
    let id = upload_ok(&node, &h264_mp4(120, "320x240", true), FAST);
    let in_bucket = || segments(s3.keys_under(&format!("slow/{id}")).into_iter());
    wait_until("a first segment in the bucket", || in_bucket() > 0);
    let before = threads(node.pid());
    // The bucket stops answering: the job goes on into its queue.
    proxy.hold();
    let m = wait_for("the job's publishing queue to fill", || {
        let m = metrics_of(&node);
        (m["hlsd_publish_queue_full_total"] >= 1.0).then_some(m)
    });
    assert!(m["hlsd_publish_queued"] as usize >= QUEUED, "{m:?}");
    let published = in_bucket();
    let scratch = scratch_segments(&node.storage.path().join(&id));
    // The muxer went on while the bucket took nothing (without the queue,
    // the encoder would wait on its first upload)...
    assert!(
        scratch + 1 >= published + QUEUED,
        "the encoder waited for the bucket: {scratch} segments made, {published} published"
    );
    // ...and no further: what waits on this node's disk is the queue's, the
    // one on its way to the bucket, the one the encoder waits to hand
    // over, and the one its muxer is writing.
    assert!(
        scratch <= published + QUEUED + 3,
        "{scratch} segments on scratch, {published} in the bucket"
    );
    // Twenty players ask for a segment the bucket is slow to give: they
    // wait, and hold no thread each.
    let uri = s3
        .keys_under(&format!("slow/{id}"))
        .into_iter()
        .find(|k| k.ends_with(".ts"))
        .unwrap();
    let path = format!("/play/{id}/{uri}");
    let players: Vec<_> = (0..20)
        .map(|_| {
            let (addr, path) = (node.addr, path.clone());
            std::thread::spawn(move || request(addr, "GET", &path, &[], &[]))
        })
        .collect();
    wait_until("the players' reads to reach the bucket", || {
        proxy.waiting() >= 20
    });
    let during = threads(node.pid());
    assert!(
        during <= before + 6,
        "{during} threads while 20 reads wait on the bucket ({before} before)"
    );
    proxy.release();
    for p in players {
        let r = p.join().unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body.len() > 1000);
    }
    let rec = node.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    let master = node.get(&format!("/play/{id}/video.m3u8"));
    lint_playlist(&format!("/play/{id}/video.m3u8"), &master.text());
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", node.addr));
    assert_eq!(metrics_of(&node)["hlsd_publish_queued"], 0.0);
}
