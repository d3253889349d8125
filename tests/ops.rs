//! Operations endpoints: liveness, readiness (which fails when storage is
//! read-only), and Prometheus metrics whose counters move.

use crate::common::*;
use std::collections::HashMap;

/// Parses Prometheus text exposition strictly enough to catch format
/// errors: every sample line is `name{labels} value` with a declared TYPE.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut types = HashMap::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = key.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        if let Some(labels) = key.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| types.get(*b).is_some_and(|t| t == "histogram"))
            .unwrap_or(name);
        assert!(types.contains_key(base), "no TYPE for {name}");
        samples.insert(key.to_owned(), v);
    }
    samples
}

fn clip() -> Vec<u8> {
    h264_mp4(3, "160x120", false)
}

#[test]
fn metrics_parse_and_move() {
    let s = Server::start(&[]);
    let r = s.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let before = parse_metrics(&r.text());
    assert_eq!(before["hlsd_uploads_total"], 0.0);

    let id = upload_ok(&s, &clip(), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let pl = s.get(&format!("/play/{id}/video.m3u8")).text();
    let mut served = 0;
    for (_, seg) in extinfs(&pl) {
        served += s.get(&format!("/play/{id}/{seg}")).body.len();
    }
    upload(s.addr, b"not a video", FAST);

    let after = parse_metrics(&s.get("/metrics").text());
    assert_eq!(after["hlsd_uploads_total"], 1.0);
    assert_eq!(after["hlsd_jobs_done_total"], 1.0);
    assert_eq!(after["hlsd_frames_encoded_total"], 90.0);
    assert!(after["hlsd_job_seconds_total"] > 0.0);
    assert!(after["hlsd_realtime_factor"] > 1.0);
    assert!(after["hlsd_bytes_served_total"] >= served as f64);
    assert_eq!(
        after["hlsd_uploads_rejected_total{reason=\"unsupported_media\"}"],
        1.0
    );
    assert!(after["hlsd_http_requests_total{route=\"segment\",status=\"200\"}"] >= 1.0);
    assert!(after["hlsd_http_request_duration_seconds_count{route=\"upload\"}"] >= 2.0);
    assert!(after["hlsd_storage_used_bytes"] > 0.0);
    assert!(after["hlsd_active_connections"] >= 1.0);
}

#[test]
fn healthz_and_readyz() {
    let s = Server::start(&[]);
    let r = s.get("/healthz");
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));
    let r = s.get("/readyz");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["ready"], true);
    for check in ["storage_writable", "disk_free", "encoders", "job_queue"] {
        assert_eq!(v["checks"][check]["ok"], true, "{check}: {v}");
    }
    // Every answer carries a request id and nosniff.
    assert!(r.header("x-request-id").is_some());
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn readyz_fails_when_storage_is_read_only() {
    let Some(fs) = Tmpfs::mount(64 << 20) else {
        return;
    };
    let storage = tempfile::TempDir::new_in(fs.0.path()).unwrap();
    let s = Server::start_in(storage, &["--min-free-bytes", "1048576"]);
    assert_eq!(s.get("/readyz").status, 200);
    fs.set_read_only(true);
    let r = s.get("/readyz");
    assert_eq!(r.status, 503, "{}", r.text());
    let v = r.json();
    assert_eq!(v["ready"], false);
    assert_eq!(v["checks"]["storage_writable"]["ok"], false, "{v}");
    // Liveness is unaffected.
    assert_eq!(s.get("/healthz").status, 200);
    fs.set_read_only(false);
    assert_eq!(s.get("/readyz").status, 200);
    drop(s);
}
