//! Real-browser tests: headless Chromium (Debian's package) driven by
//! playwright-core (tests/browser/run.mjs). The web UI uploads a clip,
//! follows the progress, plays it with hls.js; the tutorial's own page
//! (fetch + FormData, then video.js) does the same from another origin.

use crate::common::*;
use std::path::Path;
use std::process::Command;

fn browser_ready() -> bool {
    let ok = Path::new("/usr/bin/chromium").exists()
        && Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/browser/node_modules/playwright-core")
            .exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have chromium and tests/browser/node_modules (make test-deps installs them)"
        );
        eprintln!("SKIPPED: run `make test-deps` to install chromium and playwright-core");
    }
    ok
}

fn run_scenario(scenario: &str) -> serde_json::Value {
    run_scenario_with(scenario, &[])
}

fn run_scenario_with(scenario: &str, server_args: &[&str]) -> serde_json::Value {
    run_scenario_on(scenario, server_args, &browser_clip(), &[])
}

/// The usual browser clip: 12 s, 640×360, with a tone.
fn browser_clip() -> std::path::PathBuf {
    fixture_path(
        "browser-12s-640x360.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "12",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-movflags",
            "+faststart",
        ],
    )
}

fn run_scenario_on(
    scenario: &str,
    server_args: &[&str],
    clip: &Path,
    env: &[(&str, &str)],
) -> serde_json::Value {
    let mut args = vec!["--segment-seconds", "2"];
    if scenario == "tutorial" {
        // The tutorial's page lives on another origin and uploads from there.
        args.extend(["--api-cors-origin", "http://tutorial.local"]);
    }
    args.extend_from_slice(server_args);
    let s = Server::start(&args);
    let scheme = if args.contains(&"--tls-cert") {
        "https"
    } else {
        "http"
    };
    run_node(scenario, &s, scheme, clip, env)
}

/// Runs `scenario` against server `s`: its one JSON line, checked ok.
fn run_node(
    scenario: &str,
    s: &Server,
    scheme: &str,
    clip: &Path,
    env: &[(&str, &str)],
) -> serde_json::Value {
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    // Several tests run the same scenario side by side: each its own
    // screenshot (run.mjs deletes a stale one first), named by its server's
    // port, which no other live server has.
    let shot = artifacts.join(format!("{scenario}-{}.png", s.addr.port()));
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/run.mjs"))
        .args([scenario, &format!("{scheme}://{}", s.addr)])
        .arg(clip)
        .arg(&shot)
        .envs(env.iter().copied())
        .output()
        .expect("node (make test-deps)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|_| {
        panic!(
            "no JSON result: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success() && v["ok"] == true,
        "{scenario}: {v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shot.exists(), "no screenshot");
    eprintln!("{scenario}: {v}\nscreenshot: {}", shot.display());
    v
}

#[test]
fn web_ui_uploads_and_plays_with_hls_js() {
    if !browser_ready() {
        return;
    }
    let v = run_scenario("ui");
    assert!(v["currentTime"].as_f64().unwrap() > 5.0);
    assert_eq!(
        (v["videoWidth"].as_u64(), v["videoHeight"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(v["fatalErrors"], 0);
}

/// Issue 30: a video encoded in chunks side by side (4 s chunks of the
/// 12 s clip, two at once) plays in hls.js like any other.
#[test]
fn hls_js_plays_a_video_encoded_in_chunks() {
    if !browser_ready() {
        return;
    }
    let s = Server::start(&[
        "--segment-seconds",
        "2",
        "--chunk-seconds",
        "4",
        "--chunk-workers",
        "2",
        "--copy",
        "never",
    ]);
    let v = run_node("ui", &s, "http", &browser_clip(), &[]);
    assert!(v["currentTime"].as_f64().unwrap() > 5.0, "{v}");
    assert_eq!(v["fatalErrors"], 0, "{v}");
    let videos = s.get("/videos").json();
    let rec = &videos["videos"][0];
    assert_eq!(rec["output"]["chunks"], 3, "{videos}");
}

#[test]
fn tutorial_page_with_video_js_plays_from_another_origin() {
    if !browser_ready() {
        return;
    }
    let v = run_scenario("tutorial");
    assert!(v["currentTime"].as_f64().unwrap() > 5.0);
    assert_eq!(
        (v["videoWidth"].as_u64(), v["videoHeight"].as_u64()),
        (Some(640), Some(360))
    );
}

#[test]
fn signed_playback_urls_play_in_video_js_with_no_custom_headers() {
    if !browser_ready() {
        return;
    }
    let v = run_scenario_with(
        "tutorial",
        &["--signing-key", "browser-test-key", "--allow-open-api"],
    );
    let url = v["result"]["playback_url"].as_str().unwrap();
    assert!(url.contains("?token="), "{url}");
    assert!(v["currentTime"].as_f64().unwrap() > 5.0);
}

#[test]
fn encrypted_signed_streams_play_in_video_js() {
    if !browser_ready() {
        return;
    }
    let v = run_scenario_with(
        "tutorial",
        &[
            "--encrypt",
            "--key-rotation-segments",
            "2",
            "--signing-key",
            "browser-test-key",
            "--allow-open-api",
        ],
    );
    assert!(v["currentTime"].as_f64().unwrap() > 5.0);
    assert_eq!(
        (v["videoWidth"].as_u64(), v["videoHeight"].as_u64()),
        (Some(640), Some(360))
    );
}

#[test]
fn web_ui_plays_over_https_and_http2() {
    if !browser_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    let v = run_scenario_with(
        "ui",
        &[
            "--tls-cert",
            c.to_str().unwrap(),
            "--tls-key",
            k.to_str().unwrap(),
        ],
    );
    assert!(v["currentTime"].as_f64().unwrap() > 5.0);
    assert_eq!(v["fatalErrors"], 0);
    assert!(
        v["playbackUrl"].as_str().unwrap().starts_with("https://"),
        "{v}"
    );
    // Every playlist and segment came over HTTP/2.
    assert_eq!(v["mediaProtocols"], serde_json::json!(["h2"]), "{v}");
}

#[test]
fn the_web_ui_resumes_a_tus_upload_after_a_reload() {
    if !browser_ready() {
        return;
    }
    let v = run_scenario("tus-reload");
    assert_eq!(v["resumed"], true, "{v}");
    assert_eq!(v["idBefore"], v["idAfter"], "{v}");
    assert!(v["offsetAtStart"].as_u64().unwrap() > 0, "{v}");
    assert!(v["currentTime"].as_f64().unwrap() > 5.0, "{v}");
    assert_eq!(v["fatalErrors"], 0, "{v}");
}

/// 12 s with English and French audio and English subtitles (mov_text).
fn two_language_clip() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let srt = dir.join("browser-subs.srt");
    std::fs::write(&srt, "1\n00:00:04,000 --> 00:00:06,000\nHello from hlsd\n").unwrap();
    fixture_path(
        "browser-2audio-subs.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=880:sample_rate=48000",
            "-i",
            srt.to_str().unwrap(),
            "-t",
            "12",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-map",
            "2:a",
            "-map",
            "3:s",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-c:s",
            "mov_text",
            "-metadata:s:a:0",
            "language=eng",
            "-metadata:s:a:1",
            "language=fra",
            "-metadata:s:s:0",
            "language=eng",
            "-movflags",
            "+faststart",
        ],
    )
}

#[test]
fn hls_js_switches_audio_shows_captions_on_time_and_previews_the_storyboard() {
    if !browser_ready() {
        return;
    }
    let v = run_scenario_on(
        "tracks",
        &[],
        &two_language_clip(),
        &[
            ("HLSD_EXPECT_CUE", "Hello from hlsd|4.0"),
            ("HLSD_EXPECT_DOWNLOAD", "1"),
        ],
    );
    assert_eq!(v["audioTracks"], 2, "{v}");
    assert!(v["subtitleTracks"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["audioSwitched"]["ok"], true, "{v}");
    let start = v["cue"]["startTime"].as_f64().unwrap();
    assert!((start - 4.0).abs() <= 0.5, "{v}");
    assert!(v["storyboardCues"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["previewOk"], true, "{v}");
}

#[test]
fn tracks_work_with_fmp4_segments_too() {
    if !browser_ready() {
        return;
    }
    let v = run_scenario_on(
        "tracks",
        &["--segment-format", "fmp4"],
        &two_language_clip(),
        &[("HLSD_EXPECT_CUE", "Hello from hlsd|4.0")],
    );
    assert_eq!(v["audioTracks"], 2, "{v}");
    assert_eq!(v["audioSwitched"]["ok"], true, "{v}");
    let start = v["cue"]["startTime"].as_f64().unwrap();
    assert!((start - 4.0).abs() <= 0.5, "{v}");
}

/// Issue 29, embeds: a page of another origin frames a signed video's
/// `/embed/{id}` (its token from `POST /videos/{id}/playback-token`): it
/// plays from `start`, lists and shows the captions asked for; the same
/// page without the token is refused.
#[test]
fn an_embedded_signed_video_plays_in_another_sites_frame() {
    if !browser_ready() {
        return;
    }
    let clip = two_language_clip();
    let s = Server::start(&[
        "--segment-seconds",
        "2",
        "--signing-key",
        "embed-test-key",
        "--allow-open-api",
    ]);
    let r = upload(s.addr, &std::fs::read(&clip).unwrap(), FAST);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let t = request(
        s.addr,
        "POST",
        &format!("/videos/{id}/playback-token"),
        &[],
        b"",
    );
    let embed = t.json()["embed_url"].as_str().unwrap().to_owned();
    let path = &embed[embed.find("/embed/").unwrap()..];
    let good = format!("{path}&start=4&autoplay=1&muted=1&captions=en");
    let denied = format!("/embed/{id}?start=4&autoplay=1&muted=1");
    let v = run_node(
        "embed",
        &s,
        "http",
        &clip,
        &[
            ("HLSD_EMBED_PATH", good.as_str()),
            ("HLSD_EMBED_DENIED_PATH", denied.as_str()),
            ("HLSD_EMBED_START", "4"),
            ("HLSD_EMBED_CAPTIONS", "en"),
        ],
    );
    assert!(v["currentTime"].as_f64().unwrap() > 5.0, "{v}");
    let first = v["firstPlaying"].as_f64().unwrap();
    assert!((3.5..=6.0).contains(&first), "{v}");
    assert_eq!(v["deniedStatus"], 403, "{v}");
    assert_eq!(v["captions"], "en", "{v}");
}

/// Issue 28: a master with H.264 and AV1 groups plays in Chromium with
/// hls.js on an AV1 level; where MediaSource refuses `av01`, on an H.264
/// one.
#[test]
fn hls_js_plays_the_av1_group_and_falls_back_to_h264() {
    if !browser_ready() {
        return;
    }
    let clip = browser_clip();
    let s = Server::start(&[
        "--segment-seconds",
        "2",
        "--codecs",
        "h264,av1",
        "--allow-open-api",
    ]);
    let id = upload_ok(&s, &std::fs::read(&clip).unwrap(), FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    let path = format!("/embed/{id}?autoplay=1&muted=1");
    let env = [
        ("HLSD_EMBED_PATH", path.as_str()),
        ("HLSD_UI_ID", id.as_str()),
    ];
    let v = run_node("codecs", &s, "http", &clip, &env);
    assert!(
        v["videoCodec"].as_str().unwrap_or("").starts_with("av01"),
        "{v}"
    );
    // The library's quality menu names the codecs.
    let menu: Vec<&str> = v["menu"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        menu.contains(&"360p H.264") && menu.contains(&"360p AV1"),
        "{v}"
    );
    let env = [
        ("HLSD_EMBED_PATH", path.as_str()),
        ("HLSD_REFUSE_CODEC", "av01"),
    ];
    let v = run_node("codecs", &s, "http", &clip, &env);
    assert!(
        v["videoCodec"].as_str().unwrap_or("").starts_with("avc1"),
        "{v}"
    );
}

/// Issue 31: with `--hdr keep --codecs h264,hevc`, an HDR source's master
/// has PQ HEVC variants beside the SDR H.264 ones; hls.js in Chromium (an
/// SDR screen, no HEVC decoder) plays the SDR H.264 rungs.
#[test]
fn hls_js_plays_the_sdr_rungs_of_an_hdr_video_kept_hdr() {
    if !browser_ready() {
        return;
    }
    let pq = fixture_path(
        "browser-pq-8s-640x360.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30,format=yuv420p,\
             setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709,\
             zscale=p=bt2020:t=smpte2084:m=bt2020nc:r=tv:npl=203,format=yuv420p10le",
            "-t",
            "8",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-tag:v",
            "hvc1",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "smpte2084",
            "-colorspace",
            "bt2020nc",
            "-x265-params",
            "log-level=error:hdr10=1:max-cll=1000,200",
        ],
    );
    let s = Server::start(&[
        "--segment-seconds",
        "2",
        "--codecs",
        "h264,hevc",
        "--hdr",
        "keep",
        "--allow-open-api",
    ]);
    let id = upload_ok(&s, &std::fs::read(&pq).unwrap(), FAST);
    let rec = s.wait_done(&id);
    assert_eq!(rec["status"], "ready", "{rec}");
    let master = s.get(&format!("/play/{id}/video.m3u8")).text();
    assert!(
        master.contains("VIDEO-RANGE=PQ") && master.contains("VIDEO-RANGE=SDR"),
        "{master}"
    );
    let path = format!("/embed/{id}?autoplay=1&muted=1");
    let env = [("HLSD_EMBED_PATH", path.as_str())];
    let v = run_node("codecs", &s, "http", &pq, &env);
    assert!(
        v["videoCodec"].as_str().unwrap_or("").starts_with("avc1"),
        "{v}"
    );
}

/// Issue 27: hls.js in Chromium plays a live broadcast while it arrives
/// (pushed over RTMP in real time by the ffmpeg CLI), as a live playlist.
#[test]
fn hls_js_plays_a_live_broadcast_while_it_arrives() {
    let v = play_live(b"{}");
    if !v.is_null() {
        assert_eq!(v["parts"], 0, "no parts at normal latency: {v}");
    }
}

/// Issue 27: the same with `latency: low`: hls.js reads the parts and may
/// block its reloads (LL-HLS).
#[test]
fn hls_js_plays_a_low_latency_live_from_its_parts() {
    let v = play_live(br#"{"latency":"low"}"#);
    if v.is_null() {
        return;
    }
    assert_eq!(v["canBlockReload"], true, "{v}");
    assert_eq!(v["lowLatencyMode"], true, "{v}");
    assert!(v["parts"].as_u64().unwrap() > 0, "{v}");
}

/// Issue 27: an encrypted low-latency live: hls.js decrypts each part
/// alone (under its segment's key) and plays.
#[test]
fn hls_js_plays_an_encrypted_low_latency_live() {
    let v = play_live_with(&["--encrypt"], br#"{"latency":"low"}"#);
    if !v.is_null() {
        assert!(v["parts"].as_u64().unwrap() > 0, "{v}");
    }
}

/// Issue 27: a broadcast whose publisher was cut and came back plays in
/// hls.js across the `EXT-X-DISCONTINUITY` where it came back (the kept
/// video, from a second before it to a second and a half after).
#[test]
fn hls_js_plays_across_a_publisher_coming_back() {
    if !browser_ready() {
        return;
    }
    let clip = browser_clip();
    let s = Server::start(&["--rtmp-listen", "127.0.0.1:0", "--allow-open-api"]);
    let json = [("Content-Type", "application/json")];
    let l = request(s.addr, "POST", "/lives", &json, br#"{"ladder":"360,240"}"#).json();
    let id = l["id"].as_str().unwrap().to_owned();
    let url = l["rtmp_url"].as_str().unwrap();
    let mut first = crate::live::push(url, 60, crate::live::Streams::Both, &[]);
    wait_until("the live's first segments", || {
        let r = s.get(&format!("/play/{id}/video.m3u8"));
        r.status == 200 && r.text().contains("#EXT-X-STREAM-INF") && {
            let media = s.get(&format!("/play/{id}/360p/video.m3u8")).text();
            media.matches("#EXTINF").count() >= 2
        }
    });
    first.kill().unwrap();
    first.wait().unwrap();
    wait_until("the publisher back and pushed whole", || {
        crate::live::finished(crate::live::push(url, 4, crate::live::Streams::Both, &[]))
    });
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let media = s.get(&format!("/play/{id}/360p/video.m3u8")).text();
    let (before, _) = media.split_once("#EXT-X-DISCONTINUITY\n").expect(&media);
    let at: f64 = before
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    let path = format!("/embed/{id}?autoplay=1&muted=1&start={:.1}", at - 1.0);
    let past = format!("{:.1}", at + 1.5);
    let env = [
        ("HLSD_EMBED_PATH", path.as_str()),
        ("HLSD_PLAY_PAST", past.as_str()),
    ];
    let v = run_node("codecs", &s, "http", &clip, &env);
    assert!(v["currentTime"].as_f64().unwrap() > at + 1.5, "{v}");
}

/// A live created with `body`, pushed over RTMP and played in the embed
/// page; what the scenario saw (`null` without a browser).
fn play_live(body: &[u8]) -> serde_json::Value {
    play_live_with(&[], body)
}

/// [`play_live`] on a server started with `extra` flags too.
fn play_live_with(extra: &[&str], body: &[u8]) -> serde_json::Value {
    if !browser_ready() {
        return serde_json::Value::Null;
    }
    let clip = browser_clip();
    let s = Server::start(
        &[
            &["--rtmp-listen", "127.0.0.1:0", "--allow-open-api"][..],
            extra,
        ]
        .concat(),
    );
    let json = [("Content-Type", "application/json")];
    let l = request(s.addr, "POST", "/lives", &json, body).json();
    let id = l["id"].as_str().unwrap().to_owned();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let url = l["rtmp_url"].as_str().unwrap();
    let mut push = crate::live::push(url, 120, crate::live::Streams::Both, &[]);
    wait_until("the live's first segments", || {
        let r = s.get(&format!("/play/{id}/video.m3u8"));
        r.status == 200 && r.text().matches("#EXTINF").count() >= 2
    });
    let path = format!("/embed/{id}?autoplay=1&muted=1");
    let env = [
        ("HLSD_EMBED_PATH", path.as_str()),
        ("HLSD_PUSH_START_MS", started.as_str()),
        ("HLSD_LIVE_ID", id.as_str()),
    ];
    let v = run_node("live", &s, "http", &clip, &env);
    eprintln!("live in hls.js: {v}");
    push.kill().unwrap();
    push.wait().unwrap();
    assert_eq!(v["live"], true, "{v}");
    assert_eq!(
        s.get(&format!("/lives/{id}")).json()["status"],
        "live",
        "it played while live"
    );
    v
}
