//! Crash points (issue 25): every failpoint in `src/` is a place between
//! two durable steps of a flow. For each one, the flow runs against a
//! server built with the `failpoints` feature that kills itself there (as
//! `kill -9` would), a new server starts on the same storage, and the
//! invariants hold: what the client was told survives, nothing deleted
//! comes back, no file is left without a record, every acknowledged
//! change's webhook is delivered with its stable id, and what the
//! records and the quota say is stored is what is stored.
//!
//! The list of failpoints is read from the code (`failpoint!("flow.step")`);
//! each flow (the name's first part) has a scenario here, and a failpoint
//! whose flow has none, or that its scenario never reaches, fails the test.

use crate::common::hooks::Receiver;
use crate::common::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

/// Every failpoint named in `src/`, with the file it is in.
fn failpoints() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for part in text.split("failpoint!(\"").skip(1) {
                    let name = part.split('"').next().unwrap().to_owned();
                    out.insert(name, p.display().to_string());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    // The macro's own documentation names a placeholder.
    out.retain(|name, _| name.contains('.') && !name.contains('<'));
    out
}

/// What the client was told before the crash.
#[derive(Debug, Default)]
struct Told {
    /// Videos answered 201.
    created: Vec<String>,
    /// Videos seen `ready`.
    ready: Vec<String>,
    /// Videos a DELETE was sent for (answered or not), and those answered
    /// 204 or 202.
    deleting: Vec<String>,
    deleted: Vec<String>,
    /// Caption tracks answered 200/201 (video, language), and removed ones.
    captions: Vec<(String, String)>,
    removed_captions: Vec<(String, String)>,
    /// Videos whose clip is this many seconds long.
    seconds: BTreeMap<String, f64>,
    /// Created videos meant to fail (an import of a missing file).
    doomed: Vec<String>,
}

/// A request that gives up quietly (`None`) when the server is gone.
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    head: &[(&str, &str)],
    body: &[u8],
) -> Option<Response> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(DEADLINE)).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in head {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).ok()?;
    let _ = s.write_all(body);
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Response {
        status,
        headers,
        body: buf[end + 4..].to_vec(),
    })
}

/// Polls `/videos/{id}` until `ready` (told) or failed, or the server dies.
fn follow(s: &Server, id: &str, told: &mut Told) {
    loop {
        let Some(r) = call(s.addr, "GET", &format!("/videos/{id}"), &[], b"") else {
            return;
        };
        let status = r.json()["status"].as_str().unwrap_or("").to_owned();
        if status == "ready" {
            told.ready.push(id.to_owned());
            return;
        }
        let going = ["receiving", "queued", "processing", "live"];
        if !going.contains(&status.as_str()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn clip() -> Vec<u8> {
    h264_mp4(2, "160x120", true)
}

/// `POST /upload` of `data`; the new id when answered 201.
fn upload(s: &Server, data: &[u8], secs: f64, told: &mut Told) -> Option<String> {
    let (k, v) = multipart_header();
    let body = multipart("video", "clip.mp4", data);
    let r = call(s.addr, "POST", "/upload", &[(k, &v)], &body)?;
    let id = r.json()["id"].as_str()?.to_owned();
    told.created.push(id.clone());
    told.seconds.insert(id.clone(), secs);
    Some(id)
}

fn upload_to_ready(s: &Server, told: &mut Told) {
    if let Some(id) = upload(s, &clip(), 2.0, told) {
        follow(s, &id, told);
    }
}

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

/// A tus upload of `data`: created, then `parts` PATCHes; `between` runs
/// after the first. The id once created.
fn tus(
    s: &Server,
    data: &[u8],
    parts: usize,
    told: &mut Told,
    between: impl Fn(&str, &mut Told),
) -> Option<String> {
    let len = data.len().to_string();
    let r = call(
        s.addr,
        "POST",
        "/files",
        &[TUS, ("Upload-Length", &len)],
        b"",
    )?;
    let id = r.json()["id"].as_str()?.to_owned();
    told.created.push(id.clone());
    told.seconds.insert(id.clone(), 2.0);
    let step = data.len().div_ceil(parts);
    for (i, chunk) in data.chunks(step).enumerate() {
        let at = (i * step).to_string();
        let head = [TUS, OCTETS, ("Upload-Offset", &at)];
        let r = call(s.addr, "PATCH", &format!("/files/{id}"), &head, chunk)?;
        if r.status != 204 {
            return Some(id);
        }
        if i == 0 {
            between(&id, told);
        }
    }
    Some(id)
}

const VTT: &str = "WEBVTT\n\n00:00.500 --> 00:01.500\nHello crash\n";

/// `PUT` of a caption track, retried while the video is not recognised.
fn put_captions(s: &Server, id: &str, lang: &str, told: &mut Told) {
    loop {
        let path = format!("/videos/{id}/captions/{lang}");
        let Some(r) = call(s.addr, "PUT", &path, &[], VTT.as_bytes()) else {
            return;
        };
        match r.status {
            200 | 201 => return told.captions.push((id.to_owned(), lang.to_owned())),
            503 => std::thread::sleep(std::time::Duration::from_millis(50)),
            _ => return,
        }
    }
}

fn captions_on_ready(s: &Server, told: &mut Told) {
    let Some(id) = upload(s, &clip(), 2.0, told) else {
        return;
    };
    follow(s, &id, told);
    put_captions(s, &id, "en", told);
    put_captions(s, &id, "fr", told);
    // In flight, the track may or may not be there after a crash.
    told.captions.retain(|c| c != &(id.clone(), "fr".into()));
    let path = format!("/videos/{id}/captions/fr");
    if call(s.addr, "DELETE", &path, &[], b"").is_some_and(|r| r.status == 204) {
        told.removed_captions.push((id, "fr".into()));
    }
}

fn captions_while_processing(s: &Server, told: &mut Told) {
    let data = clip();
    let id = tus(s, &data, 2, told, |id, told| {
        put_captions(s, id, "en", told)
    });
    if let Some(id) = id {
        follow(s, &id, told);
    }
}

fn tus_to_ready(s: &Server, told: &mut Told) {
    if let Some(id) = tus(s, &clip(), 3, told, |_, _| {}) {
        follow(s, &id, told);
    }
}

fn delete_ready(s: &Server, told: &mut Told) {
    let Some(id) = upload(s, &clip(), 2.0, told) else {
        return;
    };
    follow(s, &id, told);
    told.deleting.push(id.clone());
    let r = call(s.addr, "DELETE", &format!("/videos/{id}"), &[], b"");
    if r.is_some_and(|r| r.status == 204 || r.status == 202) {
        told.deleted.push(id);
    }
}

/// An upload that fails after it was accepted: its outputs cross the
/// quota (set by the scenario's flags).
fn fail_over_quota(s: &Server, told: &mut Told) {
    if let Some(id) = upload(s, &clip(), 2.0, told) {
        follow(s, &id, told);
    }
}

/// A copy-eligible source with a damaged P frame: the copy fast path
/// gives up mid-job and the job starts over as a new generation.
fn copy_falls_back(s: &Server, told: &mut Told) {
    let valid = fixture_path(
        "crash-copyable.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30:duration=6",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=6",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "high",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
            "-movflags",
            "+faststart",
        ],
    );
    let v = ffprobe(
        &valid,
        &["-select_streams", "0", "-show_entries", "packet=pos,size"],
    );
    let p = &v["packets"][75];
    let pos: usize = p["pos"].as_str().unwrap().parse().unwrap();
    let size: usize = p["size"].as_str().unwrap().parse().unwrap();
    let mut data = std::fs::read(&valid).unwrap();
    for b in &mut data[pos + size / 2..pos + size / 2 + 8] {
        *b ^= 0xff;
    }
    if let Some(id) = upload(s, &data, 6.0, told) {
        follow(s, &id, told);
    }
}

/// A resumable upload left unfinished past its expiry (`--upload-expiry-secs`).
fn tus_expires(s: &Server, told: &mut Told) {
    let data = clip();
    let len = data.len().to_string();
    let Some(r) = call(
        s.addr,
        "POST",
        "/files",
        &[TUS, ("Upload-Length", &len)],
        b"",
    ) else {
        return;
    };
    if let Some(id) = r.json()["id"].as_str() {
        told.created.push(id.to_owned());
        told.seconds.insert(id.to_owned(), 2.0);
    }
}

/// The remote the import scenario fetches from (one for the whole test).
fn remote() -> &'static crate::common::remote::Remote {
    static REMOTE: std::sync::OnceLock<crate::common::remote::Remote> = std::sync::OnceLock::new();
    REMOTE.get_or_init(|| {
        let r = crate::common::remote::Remote::start();
        r.put("clip.mp4", clip());
        r
    })
}

/// Imports that fail (a 404) and succeed (through a redirect).
fn imports(s: &Server, told: &mut Told) {
    for path in ["/status/404", "/chain/1/clip.mp4"] {
        let body = serde_json::json!({ "url": remote().url(path) }).to_string();
        let json = [("Content-Type", "application/json")];
        let Some(r) = call(s.addr, "POST", "/videos", &json, body.as_bytes()) else {
            return;
        };
        let Some(id) = r.json()["id"].as_str().map(str::to_owned) else {
            panic!("import of {path}: {} {}", r.status, r.text());
        };
        told.created.push(id.clone());
        told.seconds.insert(id.clone(), 2.0);
        if path.starts_with("/status/") {
            told.doomed.push(id.clone());
        }
        follow(s, &id, told);
    }
}

/// An upload, then an exact clip of it.
fn clip_of_ready(s: &Server, told: &mut Told) {
    let Some(id) = upload(s, &clip(), 2.0, told) else {
        return;
    };
    follow(s, &id, told);
    let body = br#"{"start": 0.5, "end": 1.5}"#;
    let Some(r) = call(s.addr, "POST", &format!("/videos/{id}/clips"), &[], body) else {
        return;
    };
    let Some(clip) = r.json()["id"].as_str().map(str::to_owned) else {
        panic!("clip of {id}: {} {}", r.status, r.text());
    };
    told.created.push(clip.clone());
    told.seconds.insert(clip.clone(), 1.0);
    follow(s, &clip, told);
}

/// A live made (low latency), then a broadcast pushed over RTMP (the
/// clip, as fast as it goes) and kept; then a live kept nowhere, pushed,
/// and gone.
fn live_broadcast(s: &Server, told: &mut Told) {
    if let Some(id) = live_pushed(s, told, true, None) {
        follow(s, &id, told);
    }
    live_gone(s, told, None);
}

/// A live kept nowhere, pushed in real time (12 s, about 3 MB, more than
/// `--max-upload-bytes`): it lets go of its spool as its job reads it.
fn live_window(s: &Server, told: &mut Told) {
    let source = av_fixture_path("window-12s-640x360.mp4", 12, "640x360", 30, &[]);
    live_gone(s, told, Some(&source));
}

/// A live kept nowhere pushed (see [`live_pushed`]), then gone: deleted
/// when it ended, or at the next start, as a DELETE the client sent.
fn live_gone(s: &Server, told: &mut Told, source: Option<&std::path::Path>) {
    if let Some(id) = live_pushed(s, told, false, source) {
        let gone = || call(s.addr, "GET", &format!("/videos/{id}"), &[], b"").map(|r| r.status);
        while gone() == Some(200) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// A live made (`record`) and pushed `source` (in real time) or the clip
/// (as fast as it goes); its id once the push succeeded.
fn live_pushed(
    s: &Server,
    told: &mut Told,
    record: bool,
    source: Option<&std::path::Path>,
) -> Option<String> {
    let json = [("Content-Type", "application/json")];
    // The kept one is low-latency (LL-HLS parts grouped into segments).
    let body = format!(
        "{{\"record\": {record}, \"latency\": \"{}\"}}",
        ["normal", "low"][usize::from(record)]
    );
    let r = call(s.addr, "POST", "/lives", &json, body.as_bytes())?;
    let v = r.json();
    let (Some(id), Some(url)) = (v["id"].as_str(), v["rtmp_url"].as_str()) else {
        panic!("POST /lives: {} {}", r.status, r.text());
    };
    told.created.push(id.to_owned());
    told.seconds.insert(id.to_owned(), 2.0);
    if !record {
        // Gone if the server stops while it is pushed.
        told.deleting.push(id.to_owned());
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), clip()).unwrap();
    let mut push = std::process::Command::new("ffmpeg");
    push.args(["-v", "quiet", "-nostdin"]);
    if source.is_some() {
        push.arg("-re");
    }
    let pushed = push
        .args(["-f", "mp4", "-i"])
        .arg(source.unwrap_or(file.path()))
        .args(["-c", "copy", "-f", "flv", url])
        .status()
        .unwrap();
    pushed.success().then(|| id.to_owned())
}

type Scenario = fn(&Server, &mut Told);

/// The scenario that runs a flow's failpoints, and its extra flags.
fn scenario(flow: &str) -> Option<(Scenario, Vec<String>)> {
    let flags = |f: &[&str]| f.iter().map(|s| s.to_string()).collect();
    Some(match flow {
        "create" | "upload" | "ready" | "events" | "delivery" => (upload_to_ready, vec![]),
        // Segments published by a job split in chunks (issue 30): 1 s
        // chunks of the 2 s clip, two at once.
        "publish" => (
            upload_to_ready,
            flags(&[
                "--copy",
                "never",
                "--segment-seconds",
                "1",
                "--chunk-seconds",
                "1",
                "--chunk-workers",
                "2",
            ]),
        ),
        "tus" => (tus_to_ready, vec![]),
        "captions" => (captions_on_ready, vec![]),
        "refit" => (captions_while_processing, vec![]),
        "delete" => (delete_ready, vec![]),
        // The upload fits; its outputs do not.
        "failed" => {
            let quota = (clip().len() + 20_000).to_string();
            (fail_over_quota, flags(&["--max-storage-bytes", &quota]))
        }
        "generation" => (
            copy_falls_back,
            flags(&["--copy", "auto", "--ladder", "source"]),
        ),
        "expire" => (tus_expires, flags(&["--upload-expiry-secs", "1"])),
        "clip" => (clip_of_ready, vec![]),
        "live" => (live_broadcast, flags(&["--rtmp-listen", "127.0.0.1:0"])),
        "window" => (
            live_window,
            flags(&[
                "--rtmp-listen",
                "127.0.0.1:0",
                "--max-upload-bytes",
                "1600000",
            ]),
        ),
        "import" => (
            imports,
            flags(&["--import-allow", &remote().addr.to_string()]),
        ),
        _ => return None,
    })
}

/// Runs `point`'s scenario until the server kills itself there, restarts
/// it on the same storage, and checks the invariants.
fn crash_at(point: &str) {
    let flow = point.split('.').next().unwrap();
    let (run, flags) =
        scenario(flow).unwrap_or_else(|| panic!("no scenario for the flow of {point}"));
    let hooks = Receiver::start(true);
    let mut args = vec![
        "--webhook-url",
        &hooks.url,
        "--webhook-secret",
        "whsec-crash-points",
    ];
    args.extend(flags.iter().map(String::as_str));
    let log = tempfile::NamedTempFile::new().unwrap();
    let env = vec![("HLSD_FAILPOINT".to_owned(), point.to_owned())];
    let mut s = Server::process_full(tempfile::tempdir().unwrap(), &args, env, log.path());
    let mut told = Told::default();
    eprintln!("crash point {point}");
    run(&s, &mut told);
    let status = s.wait_exit();
    let said = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        status.signal() == Some(9) && said.contains(&format!("failpoint {point} reached")),
        "{point}: the scenario never reached it ({status:?})"
    );
    s.env.clear();
    s.restart(&args);
    check(&s, &told, &hooks, point);
}

/// The server has nothing left to do but wait for clients.
fn settled(s: &Server) -> Vec<serde_json::Value> {
    wait_for(
        "the videos to settle (and no half-written file left)",
        || {
            let v = s.get("/videos?limit=100").json()["videos"]
                .as_array()?
                .clone();
            let busy = |r: &serde_json::Value| {
                matches!(
                    r["status"].as_str(),
                    Some("queued" | "processing" | "deleting")
                ) || r["status"] == "receiving" && r["upload"].is_null()
            };
            let files = walk_files(s.storage.path());
            let tmp = files.iter().any(|f| f.ends_with(".tmp"));
            (!v.iter().any(busy) && !tmp).then_some(v)
        },
    )
}

fn check(s: &Server, told: &Told, hooks: &Receiver, point: &str) {
    let videos = settled(s);
    let ids: Vec<String> = videos
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    // No folder without a record, no half-written file.
    for e in s.storage_entries() {
        assert!(
            ids.contains(&e) || e == ".webhooks",
            "{point}: {e} has no record"
        );
    }
    for r in &videos {
        check_video(s, r, told, hooks, point);
    }
    for id in &told.ready {
        let r = videos.iter().find(|r| r["id"] == id.as_str());
        let ok = r.is_some_and(|r| r["status"] == "ready") || told.deleting.contains(id);
        assert!(ok, "{point}: {id} was ready and is now {r:?}");
    }
    for id in &told.created {
        let r = videos.iter().find(|r| r["id"] == id.as_str());
        let expired = point.starts_with("expire");
        assert!(
            r.is_some() || told.deleting.contains(id) || expired,
            "{point}: {id} was created and is gone"
        );
        // An accepted upload of a valid clip is never failed by a crash:
        // recovery finishes what was started.
        let failed = r.is_some_and(|r| r["status"] == "failed");
        assert!(
            !failed || point.starts_with("failed") || told.doomed.contains(id),
            "{point}: {id} was accepted and failed: {}",
            r.map(|r| r["error"].to_string()).unwrap_or_default()
        );
    }
    for id in &told.deleted {
        assert!(!ids.contains(id), "{point}: {id} was deleted and is back");
        assert_eq!(s.get(&format!("/videos/{id}")).status, 404, "{point}");
        delivered(hooks, id, "video.deleted", point);
    }
    let lists = |id: &str, lang: &str| {
        let r = videos.iter().find(|r| r["id"] == id)?;
        Some(r["captions"].as_array()?.iter().any(|c| c["lang"] == lang))
    };
    for (id, lang) in &told.captions {
        let has = lists(id, lang);
        assert_ne!(
            has,
            Some(false),
            "{point}: {id}'s {lang} captions were acknowledged and are gone"
        );
    }
    for (id, lang) in &told.removed_captions {
        let has = lists(id, lang);
        assert_ne!(
            has,
            Some(true),
            "{point}: {id}'s {lang} captions were removed and are back"
        );
    }
    check_quota(s, &videos, point);
}

fn check_video(s: &Server, r: &serde_json::Value, told: &Told, hooks: &Receiver, point: &str) {
    let id = r["id"].as_str().unwrap();
    // Announced: answered 201, or accepted whole (a multipart upload
    // whose 201 the crash lost is announced once it is complete; one cut
    // before its end never was, nor is its failure).
    let announced = told.created.iter().any(|c| c == id) || r["status"] == "ready";
    if announced {
        delivered(hooks, id, "video.created", point);
    }
    match r["status"].as_str().unwrap() {
        "ready" => {
            let url = format!("http://{}/play/{id}/video.m3u8", s.addr);
            assert_cli_plays(&url);
            let secs = told.seconds.get(id).copied().unwrap_or(2.0);
            let got = r["output"]["duration"].as_f64().unwrap();
            assert!(
                (got - secs).abs() < 1.1,
                "{point}: {id} plays {got} s of {secs}"
            );
            for c in r["captions"].as_array().unwrap() {
                let p = format!(
                    "/play/{id}/{}/v{}.m3u8",
                    c["dir"].as_str().unwrap(),
                    c["version"]
                );
                assert_eq!(s.get(&p).status, 200, "{point}: {p}");
            }
            delivered(hooks, id, "video.ready", point);
        }
        "failed" if announced => delivered(hooks, id, "video.failed", point),
        _ => {}
    }
}

/// Waits for a delivered event `kind` about `id` with its stable id.
fn delivered(hooks: &Receiver, id: &str, kind: &str, point: &str) {
    let want = format!("{id}-{kind}");
    wait_for(&format!("{point}: {want} delivered"), || {
        hooks
            .hits()
            .into_iter()
            .find(|h| h.answered == 200 && h.json_opt().is_some_and(|j| j["id"] == want.as_str()))
    });
}

/// Every file under `dir`, recursively.
pub(crate) fn walk_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk_files(&e.path()));
        } else {
            out.push(e.path().display().to_string());
        }
    }
    out
}

/// The bytes a video's folder holds, and its files.
fn stored(dir: &Path) -> (u64, u64) {
    walk_files(dir).iter().fold((0, 0), |(b, n), f| {
        (b + std::fs::metadata(f).map_or(0, |m| m.len()), n + 1)
    })
}

/// What the records and the quota's ledger say is stored is what is
/// stored, within a block per file (small files: records, playlists).
fn check_quota(s: &Server, videos: &[serde_json::Value], point: &str) {
    let mut total = 0;
    let mut files = 0;
    for r in videos {
        let id = r["id"].as_str().unwrap();
        let (bytes, n) = stored(&s.storage.path().join(id));
        (total, files) = (total + bytes, files + n);
        if matches!(r["status"].as_str(), Some("ready" | "failed")) {
            let said = r["storage_bytes"].as_u64().unwrap();
            assert!(
                said.abs_diff(bytes) <= 4096 * n,
                "{point}: {id} says {said}, holds {bytes}"
            );
        }
    }
    let ledger = metrics_of(s)["hlsd_quota_stored_bytes"] as u64;
    assert!(
        ledger.abs_diff(total) <= 4096 * files,
        "{point}: ledger {ledger}, stored {total}"
    );
}

#[test]
fn every_crash_point_keeps_what_the_client_was_told() {
    assert!(
        cfg!(feature = "failpoints") || std::env::var_os("CI").is_none(),
        "CI runs the crash-point test: build with --features failpoints (make test does)"
    );
    if !cfg!(feature = "failpoints") {
        eprintln!("SKIPPED: built without the failpoints feature");
        return;
    }
    let points = failpoints();
    assert!(points.len() >= 15, "{points:?}");
    for (point, file) in &points {
        let flow = point.split('.').next().unwrap();
        // Two nodes on a bucket: its own scenario (crash_takeover).
        assert!(
            scenario(flow).is_some() || flow == "takeover",
            "{point} ({file}): its flow has no scenario here"
        );
    }
    // While working on one flow: CRASH_POINTS=takeover. cargo test …
    let only = std::env::var("CRASH_POINTS").unwrap_or_default();
    for point in points.keys().filter(|p| p.starts_with(&only)) {
        if point.starts_with("takeover.") {
            crate::crash_takeover::crash_in_takeover(point);
        } else {
            crash_at(point);
        }
    }
}
