//! Webhooks against a receiver started by the test: signed events for a
//! video's life, delivery after the receiver comes back (redirects and
//! errors are failures, retried), across a SIGKILL of hlsd, with stable
//! event ids; configurations that cannot work are refused.

use crate::common::hooks::{Hit, Receiver};
use crate::common::*;
use hmac::Mac;

const SECRET: &str = "whsec-test-0123456789abcdef";

/// Checks `Hlsd-Signature: t=…,v1=…` the way the README tells receivers to.
fn assert_signed(hit: &Hit) {
    let sig = hit.header("hlsd-signature").expect("a signature");
    let t = sig.split(',').find_map(|p| p.strip_prefix("t=")).unwrap();
    let v1 = sig.split(',').find_map(|p| p.strip_prefix("v1=")).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", hit.body).as_bytes());
    mac.verify_slice(&hex::decode(v1).unwrap())
        .expect("a valid signature");
}

fn webhook_args(r: &Receiver) -> Vec<String> {
    vec![
        "--webhook-url".into(),
        r.url.clone(),
        "--webhook-secret".into(),
        SECRET.into(),
    ]
}

#[test]
fn a_videos_life_arrives_signed() {
    let r = Receiver::start(true);
    let args = webhook_args(&r);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = Server::start(&args);
    let id = upload_ok(&s, &h264_mp4(4, "320x240", true), FAST);
    let created = r.delivered("video.created");
    let ready = r.delivered("video.ready");
    for hit in [&created, &ready] {
        assert_signed(hit);
        assert_eq!(hit.path, "/hooks/hlsd");
        let v = hit.json();
        assert_eq!(v["data"]["id"], id.as_str(), "{v}");
        assert_eq!(hit.header("hlsd-event-id"), v["id"].as_str());
        assert!(v["created_at"].as_u64().unwrap() > 1_700_000_000);
    }
    assert_eq!(ready.json()["data"]["status"], "ready");
    assert_ne!(created.json()["id"], ready.json()["id"]);
    assert_eq!(
        request(s.addr, "DELETE", &format!("/videos/{id}"), &[], &[]).status,
        204
    );
    let deleted = r.delivered("video.deleted");
    assert_signed(&deleted);
    // Each event once: every target answered 200 the first time.
    let ids: Vec<String> = r
        .hits()
        .iter()
        .map(|h| h.json()["id"].as_str().unwrap().to_owned())
        .collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "{ids:?}");
    let m = metrics_of(&s);
    assert_eq!(
        m.get("hlsd_webhook_deliveries_total{result=\"delivered\"}"),
        Some(&3.0),
        "{m:?}"
    );
}

#[test]
fn events_reach_a_receiver_that_was_down_even_across_a_restart() {
    let r = Receiver::start(false);
    let args = webhook_args(&r);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // A process: it crashes with deliveries pending.
    let mut s = Server::process(&args);
    let id = upload_ok(&s, &h264_mp4(4, "320x240", true), FAST);
    // A redirect, then errors: each a failed attempt, retried.
    wait_until("two failed attempts", || r.hits().len() >= 2);
    let m = metrics_of(&s);
    assert!(
        m["hlsd_webhook_deliveries_total{result=\"failed\"}"] >= 2.0,
        "{m:?}"
    );
    assert!(m["hlsd_webhook_pending"] >= 1.0, "{m:?}");
    s.crash();
    r.accept.store(true, std::sync::atomic::Ordering::SeqCst);
    s.restart(&args);
    let created = r.delivered("video.created");
    assert_signed(&created);
    let ready = r.delivered("video.ready");
    assert_eq!(ready.json()["data"]["id"], id.as_str());
    // Every attempt at an event carried the same id; none followed the
    // redirect.
    for hit in r.hits() {
        assert_eq!(hit.path, "/hooks/hlsd");
        let v = hit.json();
        let kind = v["type"].as_str().unwrap().to_owned();
        assert_eq!(v["id"], format!("{id}-{kind}"), "{v}");
    }
    let failed_created = r
        .hits()
        .into_iter()
        .filter(|h| h.answered != 200 && h.json()["type"] == "video.created")
        .count();
    assert!(failed_created >= 1);
}

#[test]
fn webhook_settings_that_cannot_work_are_refused() {
    let (code, err) = exit_of(&["--webhook-url", "http://127.0.0.1:9/x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--webhook-secret"), "{err}");
    let (code, err) = exit_of(&["--webhook-url", "ftp://x/y", "--webhook-secret", SECRET]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _) = exit_of(&[
        "--webhook-url",
        "http://127.0.0.1:9/x",
        "--webhook-secret",
        "short",
    ]);
    assert_eq!(code, Some(2));
}

#[test]
fn with_signed_playback_an_events_playback_url_opens_the_video() {
    let r = Receiver::start(true);
    let mut args = webhook_args(&r);
    let public = "https://videos.example.com";
    let signed = [
        "--signing-key",
        "k3y",
        "--allow-open-api",
        "--public-url",
        public,
    ];
    args.extend(signed.map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = Server::start(&args);
    let up = upload(s.addr, &h264_mp4(4, "320x240", true), FAST);
    assert_eq!(up.status, 201, "{}", up.text());
    let id = up.json()["id"].as_str().unwrap().to_owned();
    let ready = r.delivered("video.ready");
    assert_signed(&ready);
    let v = ready.json();
    let url = v["data"]["playback_url"].as_str().unwrap();
    let path = url.strip_prefix(public).expect("the public URL");
    assert!(
        path.starts_with(&format!("/play/{id}/video.m3u8?token=")),
        "{url}"
    );
    // Valid for the default token lifetime (6 h) from the event.
    let expires = v["data"]["playback_expires_at"].as_u64().unwrap();
    let sent = v["created_at"].as_u64().unwrap();
    assert!((sent + 21_590..=sent + 21_610).contains(&expires), "{v}");
    let playlist = s.get(path);
    assert_eq!(playlist.status, 200, "{}", playlist.text());
    assert!(!extinfs(&playlist.text()).is_empty());
    // The same URL without its token is refused.
    let bare = s.get(&format!("/play/{id}/video.m3u8"));
    assert_eq!(bare.status, 403, "{}", bare.text());
}
