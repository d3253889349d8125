//! hlsd on an S3-compatible bucket (s3s-fs, a real SigV4 server): one
//! node's videos live in the bucket, its storage folder holds only scratch;
//! a second node on the same bucket lists, serves, plays and deletes them.

use crate::common::s3::S3Server;
use crate::common::*;

#[test]
fn a_video_lives_in_the_bucket_and_plays_from_it() {
    let s3 = S3Server::start();
    let a = s3.start_node("lib", "node-a", &["--segment-seconds", "2"]);
    let id = upload_ok(&a, &h264_mp4(6, "320x240", true), FAST);
    let rec = a.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["node"], "node-a");
    let keys = s3.keys_under(&format!("lib/{id}"));
    for k in ["meta.json", "video.m3u8", "poster.jpg", "download.mp4"] {
        assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
    }
    assert!(keys.iter().any(|k| k.ends_with(".ts")), "{keys:?}");
    // The node keeps no copy: its folder holds nothing of the video.
    wait_until("the scratch folder to empty", || {
        std::fs::read_dir(a.storage.path().join(&id)).map_or(true, |d| d.count() == 0)
    });
    let master = a.get(&format!("/play/{id}/video.m3u8"));
    assert_eq!(master.status, 200);
    lint_playlist(&format!("/play/{id}/video.m3u8"), &master.text());
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", a.addr));
    // A range of the download, streamed from the bucket.
    let whole = a.get(&format!("/play/{id}/download.mp4"));
    let r = request(
        a.addr,
        "GET",
        &format!("/play/{id}/download.mp4"),
        &[("Range", "bytes=100-199")],
        &[],
    );
    assert_eq!((r.status, &r.body[..]), (206, &whole.body[100..200]));
    // Deleted: nothing of it is left in the bucket.
    let d = request(a.addr, "DELETE", &format!("/videos/{id}"), &[], &[]);
    assert_eq!(d.status, 204);
    assert_eq!(s3.keys_under(&format!("lib/{id}")), Vec::<String>::new());
    assert_eq!(a.get(&format!("/videos/{id}")).status, 404);
}

#[test]
fn a_second_node_lists_serves_plays_and_deletes_what_the_first_makes() {
    let s3 = S3Server::start();
    // Encrypted: B serves the keys too.
    let a = s3.start_node("shared", "node-a", &["--segment-seconds", "2", "--encrypt"]);
    // B caches nothing: every file it serves is read from the bucket, the
    // largest in ranges.
    let b = s3.start_node("shared", "node-b", &["--cache-bytes", "0"]);
    let data = h264_mp4(20, "320x240", true);
    let upload = PartialUpload::start(a.addr, &data, data.len() / 2);
    let id = a.wait_video_folder();
    // While A still receives and transcodes, B serves the growing playlist:
    // an EVENT playlist whose every segment B can already serve.
    let growing = wait_for("B to serve a playlist with segments", || {
        let r = b.get(&format!("/play/{id}/video.m3u8"));
        (r.status == 200 && !extinfs(&r.text()).is_empty()).then(|| r.text())
    });
    lint_playlist(&format!("/play/{id}/video.m3u8"), &growing);
    assert!(growing.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{growing}");
    assert!(!growing.contains("#EXT-X-ENDLIST"), "{growing}");
    for (_, uri) in extinfs(&growing) {
        let seg = b.get(&format!("/play/{id}/{uri}"));
        assert_eq!(seg.status, 200, "{uri}");
        assert!(seg.body.len() > 1000, "{uri}");
    }
    // Captions wait for the node processing it (its job writes the master).
    let vtt = b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhello\n";
    let path = format!("/videos/{id}/captions/fr");
    let put = request(b.addr, "PUT", &path, &[("Content-Type", "text/vtt")], vtt);
    put.assert_error(503, "other_node");
    let mut listed = b.get("/videos").json();
    assert_eq!(listed["videos"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(upload.finish().status, 201);
    let rec = b.wait_done(&id);
    assert_eq!(
        (rec["status"].as_str(), rec["node"].as_str()),
        (Some("ready"), Some("node-a"))
    );
    // The whole video through B, decoded by the ffmpeg CLI.
    let finished = b.get(&format!("/play/{id}/video.m3u8")).text();
    lint_playlist(&format!("/play/{id}/video.m3u8"), &finished);
    assert!(finished.contains("#EXT-X-ENDLIST"), "{finished}");
    assert!(
        finished.contains(&format!("URI=\"/keys/{id}/")),
        "{finished}"
    );
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", b.addr));
    // The same bytes through both, whole and in a range (B reads ranges
    // of the object).
    let first = &extinfs(&finished)[0].1;
    let path = format!("/play/{id}/{first}");
    let (at_a, at_b) = (a.get(&path), b.get(&path));
    assert!(at_b.status == 200 && at_a.body == at_b.body);
    let part = request(b.addr, "GET", &path, &[("Range", "bytes=100-199")], &[]);
    assert_eq!((part.status, &part.body[..]), (206, &at_a.body[100..200]));
    // A title set through B is seen through A.
    let p = request(
        b.addr,
        "PATCH",
        &format!("/videos/{id}"),
        &[],
        br#"{"title":"From B"}"#,
    );
    assert_eq!(p.status, 200, "{}", p.text());
    wait_until("A to see B's title", || {
        a.get(&format!("/videos/{id}")).json()["title"] == "From B"
    });
    // Deleted through B: nothing of it is left, and A forgets it.
    let d = request(b.addr, "DELETE", &format!("/videos/{id}"), &[], &[]);
    assert_eq!(d.status, 204);
    assert_eq!(s3.keys_under(&format!("shared/{id}")), Vec::<String>::new());
    wait_until("A to forget it", || {
        a.get(&format!("/videos/{id}")).status == 404
    });
    listed = a.get("/videos").json();
    assert_eq!(listed["videos"], serde_json::json!([]), "{listed}");
}

/// The status of video `id` as node `s` reports it.
fn status_at(s: &Server, id: &str) -> serde_json::Value {
    s.get(&format!("/videos/{id}")).json()
}

/// False on a store whose conditional writes do not hold (Garage): nodes
/// then never claim each other's jobs, and say so in `/readyz`.
fn claims_work(s3: &S3Server, node: &Server) -> bool {
    let detail = node.get("/readyz").json()["checks"]["object_store"]["detail"].clone();
    let said = detail.as_str().unwrap().to_owned();
    assert!(
        said.contains(if s3.exclusive {
            "conditional writes: yes"
        } else {
            "conditional writes: no"
        }),
        "{said}"
    );
    if !s3.exclusive {
        eprintln!("SKIPPED: this store has no conditional writes, so no takeover (README)");
    }
    s3.exclusive
}

#[test]
fn an_upload_cut_off_by_a_dead_node_ends_failed_node_lost() {
    let s3 = S3Server::start();
    let mut a = s3.start_node("lost", "node-a", &["--lease-secs", "3"]);
    let b = s3.start_node("lost", "node-b", &["--lease-secs", "3"]);
    if !claims_work(&s3, &b) {
        return;
    }
    let data = h264_mp4(12, "320x240", true);
    let upload = PartialUpload::start(a.addr, &data, data.len() / 2);
    let id = a.wait_video_folder();
    wait_until("B to see the upload", || {
        b.get(&format!("/videos/{id}")).status == 200
    });
    a.crash();
    drop(upload);
    let rec = wait_for("B to mark it lost", || {
        let r = status_at(&b, &id);
        (r["status"] == "failed").then_some(r)
    });
    assert_eq!(rec["error"]["code"], "node_lost", "{rec}");
    // Nothing of it is left but its record.
    wait_until("its outputs to go", || {
        s3.keys_under(&format!("lost/{id}")) == ["meta.json"]
    });
}

#[test]
fn a_dead_nodes_jobs_are_taken_over_when_their_uploads_are_in_the_bucket() {
    let s3 = S3Server::start();
    let slow = [
        "--lease-secs",
        "3",
        "--keep-source",
        "always",
        "--jobs",
        "1",
    ];
    let mut a = s3.start_node(
        "over",
        "node-a",
        &[&slow[..], &["--x264-preset", "veryslow"]].concat(),
    );
    let b = s3.start_node("over", "node-b", &["--lease-secs", "3"]);
    if !claims_work(&s3, &b) {
        return;
    }
    // The first keeps A's only slot busy; the second waits, queued.
    let first = upload_ok(&a, &h264_mp4(30, "640x360", true), FAST);
    let second = upload_ok(&a, &h264_mp4(6, "320x240", true), FAST);
    wait_until("B to see the second one queued", || {
        status_at(&b, &second)["status"] == "queued"
    });
    a.crash();
    for id in [&first, &second] {
        let rec = b.wait_done(id);
        assert_eq!(
            (rec["status"].as_str(), rec["node"].as_str()),
            (Some("ready"), Some("node-b")),
            "{rec}"
        );
        assert_eq!(rec["generation"], 1, "{rec}");
        assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", b.addr));
        // Only the new generation's segments are left.
        let keys = s3.keys_under(&format!("over/{id}"));
        let segments: Vec<&String> = keys.iter().filter(|k| k.ends_with(".ts")).collect();
        assert!(!segments.is_empty());
        for k in segments {
            assert!(
                k.rsplit('/').next().unwrap().starts_with("g1_"),
                "{k} in {keys:?}"
            );
        }
    }
}

#[test]
fn deleting_through_another_node_stops_the_job_and_removes_everything() {
    let s3 = S3Server::start();
    let a = s3.start_node(
        "del",
        "node-a",
        &["--lease-secs", "3", "--x264-preset", "veryslow"],
    );
    let b = s3.start_node("del", "node-b", &["--lease-secs", "3"]);
    let id = upload_ok(&a, &h264_mp4(30, "640x360", true), FAST);
    wait_until("B to see it processing", || {
        status_at(&b, &id)["status"] == "processing"
    });
    let d = request(b.addr, "DELETE", &format!("/videos/{id}"), &[], &[]);
    if !s3.exclusive {
        // No conditional writes: the deletion cannot be handed over.
        d.assert_error(503, "other_node");
        return;
    }
    assert_eq!(d.status, 202, "{}", d.text());
    assert_eq!(d.json()["status"], "deleting");
    wait_until("every object to go", || {
        s3.keys_under(&format!("del/{id}")).is_empty()
    });
    wait_until("A to forget it", || {
        a.get(&format!("/videos/{id}")).status == 404
    });
    wait_until("B to forget it", || {
        b.get(&format!("/videos/{id}")).status == 404
    });
    a.wait_no_job_threads();
}

#[test]
fn a_deletion_handed_to_a_node_that_died_is_finished_by_another() {
    let s3 = S3Server::start();
    let slow = ["--lease-secs", "3", "--x264-preset", "veryslow"];
    let mut a = s3.start_node("gone", "node-a", &slow);
    let b = s3.start_node("gone", "node-b", &["--lease-secs", "3"]);
    if !claims_work(&s3, &b) {
        return;
    }
    let id = upload_ok(&a, &h264_mp4(30, "640x360", true), FAST);
    wait_until("B to see it processing", || {
        status_at(&b, &id)["status"] == "processing"
    });
    // A dies just as B hands it the deletion.
    let d = request(b.addr, "DELETE", &format!("/videos/{id}"), &[], &[]);
    assert_eq!(d.status, 202, "{}", d.text());
    a.crash();
    wait_until("every object to go", || {
        s3.keys_under(&format!("gone/{id}")).is_empty()
    });
    wait_until("B to forget it", || {
        b.get(&format!("/videos/{id}")).status == 404
    });
}

#[test]
fn a_stalled_store_is_waited_for_and_one_that_stays_down_fails_the_job() {
    let mut s3 = S3Server::start();
    let a = s3.start_node("down", "node-a", &["--segment-seconds", "2"]);
    let ready = a.get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["checks"]["object_store"]["ok"], true);
    // A stall: requests hang until the store thaws, then the job goes on.
    let data = h264_mp4(12, "320x240", true);
    let partial = PartialUpload::start(a.addr, &data, data.len() / 2);
    let id = a.wait_video_folder();
    wait_until("a first segment in the bucket", || {
        s3.keys_under(&format!("down/{id}"))
            .iter()
            .any(|k| k.ends_with(".ts"))
    });
    s3.freeze(true);
    wait_until("readyz to see the stall", || a.get("/readyz").status == 503);
    s3.freeze(false);
    assert_eq!(partial.finish().status, 201);
    assert_eq!(a.wait_done(&id)["status"], "ready");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", a.addr));
    // Down for good: an accepted job fails saying so, readyz too, and a
    // new upload is refused with the same code.
    let c = s3.start_node(
        "down",
        "node-c",
        &["--x264-preset", "veryslow", "--segment-seconds", "2"],
    );
    let second = upload_ok(&c, &h264_mp4(30, "640x360", true), FAST);
    wait_until("its first segment in the bucket", || {
        s3.keys_under(&format!("down/{second}"))
            .iter()
            .any(|k| k.ends_with(".ts"))
    });
    s3.kill();
    let rec = wait_for("the job to fail", || {
        let r = status_at(&c, &second);
        (r["status"] == "failed").then_some(r)
    });
    assert_eq!(rec["error"]["code"], "store_unavailable", "{rec}");
    let r = c.get("/readyz");
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["checks"]["object_store"]["ok"],
        false,
        "{}",
        r.text()
    );
    upload(c.addr, &h264_mp4(2, "320x240", true), FAST).assert_error(503, "store_unavailable");
    // A video this node does not hold may exist in the bucket: while the
    // store cannot say, the answer is "try again", never "gone" (a player
    // or a tus client would give up on a 404). Its own video is served.
    let elsewhere = "AbCdEfGhIjKlMnOpQrStU";
    for path in [
        format!("/videos/{elsewhere}"),
        format!("/play/{elsewhere}/video.m3u8"),
    ] {
        c.get(&path).assert_error(503, "store_unavailable");
    }
    assert_eq!(status_at(&c, &second)["status"], "failed");
    c.wait_no_job_threads();
    // Back up: the failure reaches the bucket's record too, and stays.
    s3.revive();
    wait_until("the bucket's record to say so", || {
        use hlsd::storage::objects::Objects;
        let bytes = s3
            .client()
            .get(&format!("down/{second}/meta.json"))
            .unwrap();
        let rec: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        rec["status"] == "failed" && rec["error"]["code"] == "store_unavailable"
    });
    assert_eq!(status_at(&c, &second)["error"]["code"], "store_unavailable");
    assert_eq!(c.get("/readyz").status, 200);
}

/// Checks every playlist now under `prefix` of the bucket: each names only
/// objects already there (a master, only variants with a segment), looked
/// up after the playlist was read. Returns how many playlists it checked.
fn playlists_point_at_what_exists(s3: &S3Server, prefix: &str) -> usize {
    use hlsd::storage::objects::Objects;
    let client = s3.client();
    let mut checked = 0;
    for (name, _) in client.list(prefix).unwrap() {
        if !name.ends_with(".m3u8") {
            continue;
        }
        let Ok(bytes) = client.get(&format!("{prefix}/{name}")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let base = name
            .rsplit_once('/')
            .map_or(String::new(), |(d, _)| format!("{d}/"));
        for uri in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let target = format!("{prefix}/{base}{uri}");
            let there = client.size_of(&target).unwrap().is_some();
            assert!(there, "{name} names {uri}, not in the bucket:\n{text}");
            if uri.ends_with(".m3u8") {
                let variant = String::from_utf8(client.get(&target).unwrap()).unwrap();
                assert!(
                    !extinfs(&variant).is_empty(),
                    "master before {uri} has a segment"
                );
            }
        }
        checked += 1;
    }
    checked
}

#[test]
fn the_bucket_never_holds_a_playlist_ahead_of_its_segments() {
    let s3 = S3Server::start();
    let a = s3.start_node("order", "node-a", &["--segment-seconds", "1"]);
    let data = h264_mp4(16, "640x360", true);
    let upload = PartialUpload::start(a.addr, &data, data.len() / 3);
    let id = a.wait_video_folder();
    let dir = format!("order/{id}");
    let mut checked = 0;
    let mut finishing = Some(upload);
    let start = std::time::Instant::now();
    loop {
        assert!(start.elapsed() < DEADLINE * 2, "the job never ended");
        checked += playlists_point_at_what_exists(&s3, &dir);
        if let Some(u) = finishing.take() {
            if checked > 20 {
                assert_eq!(u.finish().status, 201);
            } else {
                finishing = Some(u);
            }
        }
        let status = a.get(&format!("/videos/{id}")).json()["status"].clone();
        if finishing.is_none()
            && status != "processing"
            && status != "queued"
            && status != "receiving"
        {
            assert_eq!(status, "ready");
            break;
        }
    }
    assert!(checked > 20, "{checked}");
    playlists_point_at_what_exists(&s3, &dir);
    // The finished playlists, as a player gets them, pass a strict parser.
    let master = a.get(&format!("/play/{id}/video.m3u8")).text();
    lint_playlist("/video.m3u8", &master);
    for variant in master.lines().filter(|l| l.ends_with(".m3u8")) {
        lint_playlist(variant, &a.get(&format!("/play/{id}/{variant}")).text());
    }
}

#[test]
fn the_quota_counts_what_every_node_put_in_the_bucket() {
    let s3 = S3Server::start();
    // The bucket's top, no prefix: the whole bucket is measured.
    let a = s3.start_node("", "node-a", &[]);
    let first = upload_ok(&a, &h264_mp4(6, "320x240", true), FAST);
    let held = a.wait_done(&first)["storage_bytes"].as_u64().unwrap();
    assert!(held > 0);
    // B may hold one and a half of A's videos.
    let limit = (held + held / 2).to_string();
    let b = s3.start_node(
        "",
        "node-b",
        &["--max-storage-bytes", &limit, "--quota-refresh-secs", "1"],
    );
    let tiny = h264_mp4(1, "96x64", false);
    let fits = upload_ok(&b, &tiny, FAST);
    assert_eq!(b.wait_done(&fits)["status"], "ready");
    let d = request(b.addr, "DELETE", &format!("/videos/{fits}"), &[], &[]);
    assert_eq!(d.status, 204);
    // A second video through A: once B has measured the bucket again, the
    // same small upload no longer fits there.
    let second = upload_ok(&a, &h264_mp4(6, "320x240", true), FAST);
    assert_eq!(a.wait_done(&second)["status"], "ready");
    wait_until("B to measure both videos", || {
        metrics_of(&b)["hlsd_storage_used_bytes"] >= (2 * held) as f64 * 0.9
    });
    upload(b.addr, &tiny, FAST).assert_error(507, "quota_exceeded");
}

#[test]
fn another_node_follows_a_resumable_upload_but_leaves_its_bytes_to_the_receiver() {
    let s3 = S3Server::start();
    let a = s3.start_node("tus", "node-a", &[]);
    let b = s3.start_node("tus", "node-b", &[]);
    let data = h264_mp4(12, "320x240", true);
    let (tus, octets) = (
        ("Tus-Resumable", "1.0.0"),
        ("Content-Type", "application/offset+octet-stream"),
    );
    let len = data.len().to_string();
    let r = request(
        a.addr,
        "POST",
        "/files",
        &[tus, ("Upload-Length", &len)],
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let half = data.len() / 2;
    let r = request(
        a.addr,
        "PATCH",
        &format!("/files/{id}"),
        &[tus, octets, ("Upload-Offset", "0")],
        &data[..half],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    // The spool is A's: B sends the client there.
    let at = half.to_string();
    let r = request(
        b.addr,
        "PATCH",
        &format!("/files/{id}"),
        &[tus, octets, ("Upload-Offset", &at)],
        &data[half..],
    );
    r.assert_error(503, "other_node");
    assert!(r.header("retry-after").is_some());
    // B's event stream follows A's upload and job to their end.
    let addr = b.addr;
    let path = format!("/videos/{id}/events");
    let events = std::thread::spawn(move || request(addr, "GET", &path, &[], &[]).text());
    let r = request(
        a.addr,
        "PATCH",
        &format!("/files/{id}"),
        &[tus, octets, ("Upload-Offset", &at)],
        &data[half..],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let text = events.join().unwrap();
    let last = text
        .split("\n\n")
        .filter_map(|b| b.lines().find_map(|l| l.strip_prefix("event: ")))
        .last();
    assert_eq!(last, Some("ready"), "{text}");
}

#[test]
fn a_node_restarted_under_its_name_resumes_its_own_job() {
    let s3 = S3Server::start();
    let slow = ["--lease-secs", "60", "--x264-preset", "veryslow"];
    let mut a = s3.start_node("again", "node-a", &slow);
    let id = upload_ok(&a, &h264_mp4(30, "640x360", true), FAST);
    wait_until("it to be processing", || {
        status_at(&a, &id)["status"] == "processing"
    });
    a.crash();
    // Same name, same scratch; a fast preset this time.
    let (mut args, _) = s3.node_args("again", "node-a");
    args.extend(["--lease-secs", "60"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    a.restart(&args);
    let rec = a.wait_done(&id);
    assert_eq!(
        (rec["status"].as_str(), rec["node"].as_str()),
        (Some("ready"), Some("node-a")),
        "{rec}"
    );
    assert_eq!(rec["generation"], 1, "{rec}");
    assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", a.addr));
}

/// Issue 29's features on a bucket: images decoded from segments read
/// from the bucket, an exact clip cut from the download read from the
/// bucket, and an import, all ending in the bucket like uploads.
#[test]
fn images_clips_and_imports_work_on_a_bucket() {
    let s3 = S3Server::start();
    let remote = crate::common::remote::Remote::start();
    remote.put("clip.mp4", h264_mp4(2, "160x120", true));
    let allow = remote.addr.to_string();
    let args = ["--segment-seconds", "2", "--import-allow", &allow];
    let a = s3.start_node("lib29", "node-a", &args);
    let id = upload_ok(&a, &h264_mp4(6, "320x240", true), FAST);
    assert_eq!(a.wait_done(&id)["status"], "ready");
    let thumb = a.get(&format!("/play/{id}/thumbnail.jpg?time=2&width=160"));
    assert_eq!(thumb.status, 200, "{}", thumb.text());
    assert_eq!(thumb.header("content-type"), Some("image/jpeg"));
    let r = request(
        a.addr,
        "POST",
        &format!("/videos/{id}/clips"),
        &[],
        br#"{"start": 1, "end": 3}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let clip = r.json()["id"].as_str().unwrap().to_owned();
    let rec = a.wait_done(&clip);
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["clipped_from"], id.as_str());
    let body = serde_json::json!({ "url": remote.url("/file/clip.mp4") }).to_string();
    let r = request(
        a.addr,
        "POST",
        "/videos",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let imported = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(a.wait_done(&imported)["status"], "ready");
    for v in [&clip, &imported] {
        let keys = s3.keys_under(&format!("lib29/{v}"));
        assert!(keys.iter().any(|k| k == "video.m3u8"), "{v}: {keys:?}");
        assert_cli_plays(&format!("http://{}/play/{v}/video.m3u8", a.addr));
    }
}
