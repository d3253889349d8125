//! Resource bounds: memory must not grow with the size of an upload.

use crate::common::*;

#[test]
fn memory_stays_flat_for_a_large_upload() {
    // Raw video: 115 KB a frame, 40 s → about 140 MB, cheap to decode.
    let data = fixture(
        "raw-40s.nut",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-t",
            "40",
            "-c:v",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    assert!(data.len() > 130_000_000);
    let s = Server::process(&[]);
    let id = upload_ok(&s, &data, FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let peak_mib = s.peak_rss_kib() / 1024;
    eprintln!(
        "peak RSS {peak_mib} MiB for a {} MB upload",
        data.len() / 1_000_000
    );
    // The server may not hold the upload (or its packets) in memory: a leak
    // of every packet read showed up here as RSS ≈ the upload's size.
    assert!(peak_mib < 100, "peak RSS {peak_mib} MiB");
}
