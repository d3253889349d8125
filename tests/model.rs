//! The model test (issue 25): a seeded sequence of operations on several
//! videos of one server (multipart uploads, some with their title after
//! the file, imports from a URL, and tus uploads, PATCHes, racing ones
//! included, caption PUT and DELETE, title PATCH, DELETE, exact clips,
//! lives over RTMP (their publisher cut and back, raced by a DELETE or a
//! SIGKILL), and SIGKILL with a restart), some of them sent two at once, each answer checked against
//! a model of what the server acknowledged, and the whole server checked
//! against the model after every step: nothing acknowledged lost, nothing
//! deleted back, no folder without a record, what the quota counts is
//! what is stored; at the end every video plays and every announced
//! change's webhook was delivered.
//!
//! It prints its seed. `make test` runs a few fixed seeds;
//! `make soak SEEDS=1-200` runs more (`HLSD_MODEL_SEEDS`).

use crate::common::hooks::Receiver;
use crate::common::*;
use std::collections::{BTreeMap, BTreeSet};

/// A small, seeded random source (xorshift64*): the same seed, the same
/// sequence, on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const OCTETS: (&str, &str) = ("Content-Type", "application/offset+octet-stream");
const LANGS: [&str; 2] = ["en", "fr"];

/// What the server acknowledged about one video.
#[derive(Debug, Default, Clone)]
struct Video {
    /// A tus upload: its bytes acknowledged so far (`None`: multipart).
    offset: Option<usize>,
    title: Option<String>,
    captions: BTreeSet<String>,
    /// Changes sent but not answered: either outcome (kept for racing
    /// operations that touch a video's captions or title).
    unsure_captions: BTreeSet<String>,
    unsure_title: bool,
    /// An import (its bytes come behind the 201).
    import: bool,
    /// An exact clip of this video (it fails if that one is deleted
    /// before it is cut).
    clip_of: Option<String>,
    /// A live whose broadcast was pushed (it ends ready).
    live: bool,
}

/// The model: every video acknowledged, and those answered to DELETE.
#[derive(Debug, Default)]
struct Model {
    videos: BTreeMap<String, Video>,
    deleted: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Upload,
    Import,
    Clip,
    TusCreate,
    Patch,
    RacingPatches,
    CaptionPut,
    CaptionDelete,
    Title,
    Delete,
    DeleteRacingCaption,
    DeleteRacingPatch,
    Crash,
    Live,
    LiveRacingDelete,
    LiveRacingCrash,
    LiveReconnect,
    ReconnectRacingDelete,
    ReconnectRacingCrash,
    ResetKey,
}

const OPS: [Op; 20] = [
    Op::Upload,
    Op::Import,
    Op::Clip,
    Op::TusCreate,
    Op::Patch,
    Op::RacingPatches,
    Op::CaptionPut,
    Op::CaptionDelete,
    Op::Title,
    Op::Delete,
    Op::DeleteRacingCaption,
    Op::DeleteRacingPatch,
    Op::Crash,
    Op::Live,
    Op::LiveRacingDelete,
    Op::LiveRacingCrash,
    Op::LiveReconnect,
    Op::ReconnectRacingDelete,
    Op::ReconnectRacingCrash,
    Op::ResetKey,
];

struct World {
    s: Server,
    hooks: Receiver,
    args: Vec<String>,
    data: Vec<u8>,
    m: Model,
    rng: Rng,
    /// Where imports come from.
    remote: crate::common::remote::Remote,
}

impl World {
    fn start(seed: u64) -> World {
        let hooks = Receiver::start(true);
        let remote = crate::common::remote::Remote::start();
        let data = h264_mp4(2, "160x120", true);
        remote.put("clip.mp4", data.clone());
        let args: Vec<String> = [
            "--webhook-url",
            &hooks.url,
            "--webhook-secret",
            "whsec-model-test-0123",
            "--import-allow",
            &remote.addr.to_string(),
            "--rtmp-listen",
            "127.0.0.1:0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut args = args;
        // Odd seeds encode every job in chunks (1 s, two at once; issue
        // 30), so deletions and kills meet split jobs too.
        if seed % 2 == 1 {
            let split = ["--copy", "never", "--segment-seconds", "1"];
            let split = split
                .iter()
                .chain(&["--chunk-seconds", "1", "--chunk-workers", "2"]);
            args.extend(split.map(|s| s.to_string()));
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        World {
            // A process: the model crashes it (SIGKILL) and restarts it.
            s: Server::process(&a),
            hooks,
            args,
            data,
            m: Model::default(),
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            remote,
        }
    }

    /// A video of the model, at random (deleted ones included, now and
    /// then: operations on them must be refused cleanly).
    fn pick(&mut self) -> Option<String> {
        let live: Vec<String> = self.m.videos.keys().cloned().collect();
        let gone: Vec<String> = self.m.deleted.iter().cloned().collect();
        if !gone.is_empty() && self.rng.below(6) == 0 {
            return Some(gone[self.rng.below(gone.len())].clone());
        }
        (!live.is_empty()).then(|| live[self.rng.below(live.len())].clone())
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Upload => self.upload(),
            Op::Import => self.import(),
            Op::Clip => self.clip(),
            Op::TusCreate => self.tus_create(),
            Op::Patch => self.patch(false),
            Op::RacingPatches => self.patch(true),
            Op::CaptionPut => self.caption_put(),
            Op::CaptionDelete => self.caption_delete(),
            Op::Title => self.title(),
            Op::Delete => self.delete(None),
            Op::DeleteRacingCaption => self.delete(Some(false)),
            Op::DeleteRacingPatch => self.delete(Some(true)),
            Op::Crash => self.crash(),
            Op::Live => self.live(None),
            Op::LiveRacingDelete => self.live(Some(false)),
            Op::LiveRacingCrash => self.live(Some(true)),
            Op::LiveReconnect => self.live_reconnect(None),
            Op::ReconnectRacingDelete => self.live_reconnect(Some(false)),
            Op::ReconnectRacingCrash => self.live_reconnect(Some(true)),
            Op::ResetKey => self.reset_key(),
        }
    }

    /// A multipart upload; every other one names its title after the
    /// file (applied with the upload's completion, so the 201 says it).
    fn upload(&mut self) {
        if self.rng.next().is_multiple_of(2) {
            let id = upload_ok(&self.s, &self.data, FAST);
            self.m.videos.insert(id, Video::default());
            return;
        }
        let title = format!("u{}", self.rng.next() % 1000);
        let mut body = multipart("video", "clip.mp4", &self.data);
        body.truncate(body.len() - format!("--{BOUNDARY}--\r\n").len());
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n--{BOUNDARY}--\r\n")
                .as_bytes(),
        );
        let (k, v) = multipart_header();
        let r = request(self.s.addr, "POST", "/upload", &[(k, &v)], &body);
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.json()["title"], title.as_str(), "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let v = Video {
            title: Some(title),
            ..Video::default()
        };
        self.m.videos.insert(id, v);
    }

    /// An import (slowed now and then, so a crash or a DELETE finds it
    /// still arriving): answered 201 at once, it must end ready however
    /// it is interrupted (a restart fetches it again).
    fn import(&mut self) {
        let path = match self.rng.below(2) {
            0 => "/file/clip.mp4".to_owned(),
            _ => format!("/file/clip.mp4?rate={}", self.data.len() / 2),
        };
        let body = serde_json::json!({ "url": self.remote.url(&path) }).to_string();
        let json = [("Content-Type", "application/json")];
        let r = request(self.s.addr, "POST", "/videos", &json, body.as_bytes());
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let v = Video {
            import: true,
            ..Video::default()
        };
        self.m.videos.insert(id, v);
    }

    /// An exact clip of a video: made once that one is ready.
    fn clip(&mut self) {
        let Some(id) = self.pick() else { return };
        // A clip of a clip: within its one second.
        let of_clip = self.m.videos.get(&id).is_some_and(|v| v.clip_of.is_some());
        let body: &[u8] = match of_clip {
            true => br#"{"start": 0.2, "end": 0.8}"#,
            false => br#"{"start": 0.3, "end": 1.3}"#,
        };
        let r = request(
            self.s.addr,
            "POST",
            &format!("/videos/{id}/clips"),
            &[],
            body,
        );
        match (r.status, self.m.videos.contains_key(&id)) {
            (201, _) => {
                let clip = r.json()["id"].as_str().unwrap().to_owned();
                let v = Video {
                    import: true,
                    clip_of: Some(id),
                    ..Video::default()
                };
                self.m.videos.insert(clip, v);
            }
            // Not ready yet.
            (409, true) => {}
            (404, false) => assert!(self.m.deleted.contains(&id)),
            (s, _) => panic!("clip of {id}: {s} {}", r.text()),
        }
    }

    /// A clip whose source went before it was cut may fail.
    fn orphan(&self, v: &Video) -> bool {
        v.clip_of
            .as_ref()
            .is_some_and(|c| self.m.deleted.contains(c))
    }

    fn tus_create(&mut self) {
        let len = self.data.len().to_string();
        let r = request(
            self.s.addr,
            "POST",
            "/files",
            &[TUS, ("Upload-Length", &len)],
            &[],
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let v = Video {
            offset: Some(0),
            ..Video::default()
        };
        self.m.videos.insert(id, v);
    }

    /// The next chunk of a tus upload (two at once when `racing`: one
    /// wins, the other is cut or refused with 409).
    fn patch(&mut self, racing: bool) {
        let tus: Vec<String> = self
            .m
            .videos
            .iter()
            .filter(|(_, v)| v.offset.is_some_and(|o| o < self.data.len()))
            .map(|(id, _)| id.clone())
            .collect();
        if tus.is_empty() {
            return self.tus_create();
        }
        let id = tus[self.rng.below(tus.len())].clone();
        // The server's offset: at least what it acknowledged (a crash may
        // have kept bytes it had not answered for yet).
        let at = self.offset_of(&id);
        assert!(
            at >= self.m.videos[&id].offset.unwrap_or(0),
            "{id} went back"
        );
        if at >= self.data.len() {
            self.m.videos.get_mut(&id).unwrap().offset = Some(at);
            return;
        }
        let end = (at + self.data.len() / 3 + 1).min(self.data.len());
        let chunk = self.data[at..end].to_vec();
        let send = |addr, id: String, chunk: Vec<u8>| {
            std::thread::spawn(move || {
                let off = at.to_string();
                let head = [TUS, OCTETS, ("Upload-Offset", off.as_str())];
                request(addr, "PATCH", &format!("/files/{id}"), &head, &chunk)
            })
        };
        let first = send(self.s.addr, id.clone(), chunk.clone());
        let second = racing.then(|| send(self.s.addr, id.clone(), chunk));
        let mut answers = vec![first.join().unwrap()];
        answers.extend(second.map(|t| t.join().unwrap()));
        let mut won = false;
        for r in &answers {
            match r.status {
                204 => {
                    let got: usize = r.header("upload-offset").unwrap().parse().unwrap();
                    assert_eq!(got, end, "{id}");
                    won = true;
                }
                // The other of two racing PATCHes: cut (400) or too late.
                400 | 409 if racing => {}
                s => panic!("PATCH {id}: {s} {}", r.text()),
            }
        }
        // Two racing PATCHes of one chunk: one wins, or the first is cut
        // (what it received is kept) and the second refused.
        let now = self.offset_of(&id);
        assert!(
            (at..=end).contains(&now) && (!won || now == end),
            "{id}: {now} of {at}..{end}"
        );
        self.m.videos.get_mut(&id).unwrap().offset = Some(now);
    }

    /// A tus upload's offset, as `HEAD` says.
    fn offset_of(&self, id: &str) -> usize {
        let head = request(self.s.addr, "HEAD", &format!("/files/{id}"), &[TUS], &[]);
        assert_eq!(head.status, 200, "HEAD {id}");
        head.header("upload-offset").unwrap().parse().unwrap()
    }

    fn caption_put(&mut self) {
        let Some(id) = self.pick() else { return };
        let lang = LANGS[self.rng.below(LANGS.len())];
        let vtt = "WEBVTT\n\n00:00.200 --> 00:01.000\nmodel\n";
        let r = request(
            self.s.addr,
            "PUT",
            &format!("/videos/{id}/captions/{lang}"),
            &[],
            vtt.as_bytes(),
        );
        match (r.status, self.m.videos.get_mut(&id)) {
            (200 | 201, Some(v)) => {
                v.captions.insert(lang.into());
            }
            // Not recognised yet (a tus upload with too few bytes, an
            // import just begun).
            (503, Some(v)) if v.offset.is_some() || v.import => {}
            (404, None) => assert!(self.m.deleted.contains(&id)),
            (s, v) => panic!("PUT captions of {id}: {s} {} ({v:?})", r.text()),
        }
    }

    fn caption_delete(&mut self) {
        let Some(id) = self.pick() else { return };
        let lang = LANGS[self.rng.below(LANGS.len())];
        let r = request(
            self.s.addr,
            "DELETE",
            &format!("/videos/{id}/captions/{lang}"),
            &[],
            &[],
        );
        match (r.status, self.m.videos.get_mut(&id)) {
            (204, Some(v)) => {
                assert!(v.captions.remove(lang) || v.unsure_captions.contains(lang));
                v.unsure_captions.remove(lang);
            }
            (404, Some(v)) => assert!(!v.captions.contains(lang), "{id} {lang}"),
            (404, None) => {}
            (s, _) => panic!("DELETE captions of {id}: {s} {}", r.text()),
        }
    }

    fn title(&mut self) {
        let Some(id) = self.pick() else { return };
        let title = format!("t{}", self.rng.next() % 1000);
        let body = serde_json::json!({ "title": title }).to_string();
        let r = request(
            self.s.addr,
            "PATCH",
            &format!("/videos/{id}"),
            &[],
            body.as_bytes(),
        );
        match (r.status, self.m.videos.get_mut(&id)) {
            (200, Some(v)) => {
                assert_eq!(r.json()["title"], title.as_str());
                v.title = Some(title);
                v.unsure_title = false;
            }
            (404, None) => {}
            (s, _) => panic!("PATCH {id}: {s} {}", r.text()),
        }
    }

    /// DELETE, alone or racing a caption PUT (`Some(false)`) or a PATCH
    /// (`Some(true)`) of the same video.
    fn delete(&mut self, race: Option<bool>) {
        let Some(id) = self.pick() else { return };
        let addr = self.s.addr;
        let other = race.map(|patch| {
            let (id, data) = (id.clone(), self.data.clone());
            let at = self.m.videos.get(&id).and_then(|v| v.offset).unwrap_or(0);
            std::thread::spawn(move || match patch {
                true => {
                    let off = at.to_string();
                    let head = [TUS, OCTETS, ("Upload-Offset", off.as_str())];
                    request(addr, "PATCH", &format!("/files/{id}"), &head, &data[at..])
                }
                false => {
                    let vtt = "WEBVTT\n\n00:00.000 --> 00:01.000\nrace\n";
                    request(
                        addr,
                        "PUT",
                        &format!("/videos/{id}/captions/en"),
                        &[],
                        vtt.as_bytes(),
                    )
                }
            })
        });
        let r = request(addr, "DELETE", &format!("/videos/{id}"), &[], &[]);
        if let Some(t) = other {
            let o = t.join().unwrap();
            let not_ready = o.status == 503 && o.json()["error"]["code"] == "not_ready";
            assert!(
                o.status < 500 || not_ready,
                "raced with DELETE {id}: {} {}",
                o.status,
                o.text()
            );
        }
        match r.status {
            204 | 202 => {
                assert!(self.m.videos.remove(&id).is_some() || !self.m.deleted.contains(&id));
                self.m.deleted.insert(id);
            }
            404 => assert!(self.m.deleted.contains(&id), "{id} is unknown"),
            s => panic!("DELETE {id}: {s} {}", r.text()),
        }
    }

    /// A live made and its broadcast (the clip, in real time) pushed over
    /// RTMP; alone it ends ready; raced by a DELETE (`Some(false)`) it is
    /// gone; raced by a kill -9 (`Some(true)`) what came is kept.
    fn live(&mut self, race: Option<bool>) {
        // Now and then a live kept nowhere (`record: false`).
        let record = race.is_some() || self.rng.below(3) != 0;
        // And now and then a low-latency one (LL-HLS parts).
        let latency = ["normal", "low"][self.rng.below(2)];
        let body = format!("{{\"record\": {record}, \"latency\": \"{latency}\"}}");
        let (id, url, file) = self.new_live(&body);
        let mut push = push_clip(file.path(), &url);
        let v = Video {
            live: true,
            ..Video::default()
        };
        match race {
            // Kept nowhere: deleted when it ends.
            None if !record => {
                assert!(push.wait().unwrap().success(), "the push to {id} failed");
                wait_until("the live kept nowhere to go", || {
                    request(self.s.addr, "GET", &format!("/videos/{id}"), &[], &[]).status == 404
                });
                self.m.deleted.insert(id);
            }
            None => {
                assert!(push.wait().unwrap().success(), "the push to {id} failed");
                self.m.videos.insert(id, v);
            }
            Some(false) => {
                let r = request(self.s.addr, "DELETE", &format!("/lives/{id}"), &[], &[]);
                assert!(matches!(r.status, 204 | 202), "{}", r.text());
                let _ = push.wait();
                self.m.deleted.insert(id);
            }
            Some(true) => {
                // Once the probe took it (a segment), or the push ended.
                wait_until("a segment of the live, or the push's end", || {
                    let playing = self.s.get(&format!("/videos/{id}")).json()["renditions"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty());
                    playing || push.try_wait().unwrap().is_some()
                });
                self.crash();
                let _ = push.wait();
                self.m.videos.insert(id, v);
            }
        }
    }

    /// A live whose publisher is cut (kill -9 of its push) once a segment
    /// is out, and comes back within the reconnect window: one video,
    /// ready (its playlists, strictly parsed by the checks, say
    /// `EXT-X-DISCONTINUITY` where it came back). Raced, while the
    /// publisher back is pushing, by a DELETE (`Some(false)`: gone) or a
    /// kill -9 of the server (`Some(true)`: what came is kept).
    fn live_reconnect(&mut self, race: Option<bool>) {
        let latency = ["normal", "low"][self.rng.below(2)];
        let (id, url, file) = self.new_live(&format!("{{\"latency\": \"{latency}\"}}"));
        let push = || push_clip(file.path(), &url);
        let mut first = push();
        let cut = wait_for("a segment of the live, or the push's end", || {
            let r = self.s.get(&format!("/videos/{id}")).json();
            if r["renditions"].as_array().is_some_and(|r| !r.is_empty()) {
                return Some(true);
            }
            first.try_wait().unwrap().map(|_| false)
        });
        let back = if cut {
            first.kill().unwrap();
            first.wait().unwrap();
            Some(self.pushing_again(&id, push))
        } else {
            assert!(first.wait().unwrap().success(), "the push to {id} failed");
            None
        };
        let v = Video {
            live: true,
            ..Video::default()
        };
        match race {
            Some(false) => {
                let r = request(self.s.addr, "DELETE", &format!("/lives/{id}"), &[], &[]);
                assert!(matches!(r.status, 204 | 202), "{}", r.text());
                self.m.deleted.insert(id);
            }
            Some(true) => {
                self.crash();
                self.m.videos.insert(id, v);
            }
            None => {
                self.m.videos.insert(id, v);
            }
        }
        if let Some(mut back) = back {
            let done = back.wait().unwrap();
            assert!(
                race.is_some() || done.success(),
                "the publisher back failed"
            );
        }
    }

    /// A publisher back for live `id`, once the server took it (it is
    /// publishing) or it ended well: refused while the server still sees
    /// the one cut, so tried again.
    fn pushing_again(
        &self,
        id: &str,
        push: impl Fn() -> std::process::Child,
    ) -> std::process::Child {
        wait_until("the server to see the publisher cut gone", || {
            self.s.get(&format!("/lives/{id}")).json()["publishing"] == false
        });
        for _ in 0..20 {
            let mut p = push();
            let taken = wait_for("the publisher back taken, or its end", || {
                let r = self.s.get(&format!("/lives/{id}")).json();
                if r["publishing"] == true {
                    return Some(true);
                }
                p.try_wait().unwrap().map(|s| s.success())
            });
            if taken {
                return p;
            }
        }
        panic!("the publisher of {id} was never let back");
    }

    /// `POST /lives` with `body`: the live's id, RTMP URL, and the clip in
    /// a file to push.
    fn new_live(&self, body: &str) -> (String, String, tempfile::NamedTempFile) {
        let json = [("Content-Type", "application/json")];
        let r = request(self.s.addr, "POST", "/lives", &json, body.as_bytes());
        assert_eq!(r.status, 201, "{}", r.text());
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &self.data).unwrap();
        (
            r.json()["id"].as_str().unwrap().to_owned(),
            r.json()["rtmp_url"].as_str().unwrap().to_owned(),
            file,
        )
    }

    /// A new key for a live: refused (409) once its broadcast ended.
    fn reset_key(&mut self) {
        let Some(id) = self.pick() else { return };
        let r = request(
            self.s.addr,
            "POST",
            &format!("/lives/{id}/reset-key"),
            &[],
            &[],
        );
        let live = self.m.videos.get(&id).is_some_and(|v| v.live);
        match (r.status, live) {
            (409, true) | (404, false) => {}
            (s, _) => panic!("reset-key of {id}: {s} {}", r.text()),
        }
    }

    fn crash(&mut self) {
        self.s.crash();
        let a: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.s.restart_same_port(&a);
    }

    /// The server agrees with the model.
    fn check(&self, step: usize) {
        let listed = self.s.get("/videos?limit=100").json()["videos"]
            .as_array()
            .unwrap()
            .clone();
        let ids: BTreeSet<String> = listed
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        for e in self.s.storage_entries() {
            assert!(
                ids.contains(&e) || e == ".webhooks",
                "step {step}: {e} has no record"
            );
        }
        for id in &self.m.deleted {
            assert!(!ids.contains(id), "step {step}: deleted {id} is back");
            assert!(
                !self.s.storage.path().join(id).exists(),
                "step {step}: {id}'s files stay"
            );
        }
        for (id, v) in &self.m.videos {
            let r = listed.iter().find(|r| r["id"] == id.as_str());
            let r = r.unwrap_or_else(|| panic!("step {step}: acknowledged {id} is gone"));
            if r["status"] == "failed" && self.orphan(v) {
                continue;
            }
            assert_ne!(r["status"], "failed", "step {step}: {id} failed: {r}");
            if let (Some(t), false) = (&v.title, v.unsure_title) {
                assert_eq!(r["title"], t.as_str(), "step {step}: {id}");
            }
            let langs: BTreeSet<String> = r["captions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["lang"].as_str().unwrap().to_owned())
                .collect();
            for l in &v.captions {
                assert!(
                    langs.contains(l) || v.unsure_captions.contains(l),
                    "step {step}: {id} lost {l}"
                );
            }
            if let Some(o) = v.offset {
                let head = request(self.s.addr, "HEAD", &format!("/files/{id}"), &[TUS], &[]);
                if head.status == 200 {
                    let now: usize = head.header("upload-offset").unwrap().parse().unwrap();
                    assert!(now >= o, "step {step}: {id} went back to {now} from {o}");
                }
            }
        }
    }

    /// Every upload finished, every video ready and playing, every
    /// announced change's webhook delivered.
    fn finish(&mut self) {
        let ids: Vec<String> = self.m.videos.keys().cloned().collect();
        let (mut uploads, mut split) = (0, 0);
        for id in &ids {
            if self.m.videos[id].offset.is_some() {
                let head = request(self.s.addr, "HEAD", &format!("/files/{id}"), &[TUS], &[]);
                let at: usize = head.header("upload-offset").unwrap().parse().unwrap();
                if at < self.data.len() {
                    let off = at.to_string();
                    let h = [TUS, OCTETS, ("Upload-Offset", off.as_str())];
                    let r = request(
                        self.s.addr,
                        "PATCH",
                        &format!("/files/{id}"),
                        &h,
                        &self.data[at..],
                    );
                    assert_eq!(r.status, 204, "{id}: {}", r.text());
                }
            }
            let rec = self.s.wait_done(id);
            if rec["status"] == "failed" && self.orphan(&self.m.videos[id]) {
                continue;
            }
            assert_eq!(rec["status"], "ready", "{rec}");
            // Uploads of the whole clip (a live is never split, an exact
            // clip of a second is too short to be).
            if rec["live"].is_null() && rec["output"]["duration"].as_f64() >= Some(1.9) {
                uploads += 1;
                // (0: a record rebuilt from its playlists after a crash.)
                split += usize::from(rec["output"]["chunks"].as_u64() != Some(1));
            }
            assert_cli_plays(&format!("http://{}/play/{id}/video.m3u8", self.s.addr));
            for kind in ["video.created", "video.ready"] {
                self.delivered(id, kind);
            }
        }
        for id in &self.m.deleted {
            self.delivered(id, "video.deleted");
        }
        // With chunks asked for, the uploads' jobs were split.
        if self.args.iter().any(|a| a == "--chunk-workers") {
            assert_eq!(split, uploads, "uploads split in chunks");
        }
        self.check(usize::MAX);
    }

    fn delivered(&self, id: &str, kind: &str) {
        let want = format!("{id}-{kind}");
        wait_for(&format!("{want} delivered"), || {
            self.hooks.hits().into_iter().find(|h| {
                h.answered == 200 && h.json_opt().is_some_and(|j| j["id"] == want.as_str())
            })
        });
    }
}

fn run(seed: u64, steps: usize) {
    eprintln!("model test: seed {seed}, {steps} steps");
    let mut w = World::start(seed);
    w.upload();
    for step in 0..steps {
        let op = OPS[w.rng.below(OPS.len())];
        eprintln!("seed {seed} step {step}: {op:?}");
        w.step(op);
        w.check(step);
    }
    w.finish();
}

/// The seeds to run: `HLSD_MODEL_SEEDS` (`7`, `1-50`), else a fixed few.
fn seeds() -> Vec<u64> {
    match std::env::var("HLSD_MODEL_SEEDS") {
        Ok(v) => match v.split_once('-') {
            Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect(),
            None => vec![v.parse().unwrap()],
        },
        Err(_) => vec![1, 2],
    }
}

#[test]
fn seeded_interleavings_agree_with_the_model() {
    let steps = std::env::var("HLSD_MODEL_STEPS").map_or(25, |v| v.parse().unwrap());
    for seed in seeds() {
        run(seed, steps);
    }
}

/// The ffmpeg CLI pushing the clip at `file` to `url` in real time.
fn push_clip(file: &std::path::Path, url: &str) -> std::process::Child {
    std::process::Command::new("ffmpeg")
        .args(["-v", "quiet", "-nostdin", "-re", "-f", "mp4", "-i"])
        .arg(file)
        .args(["-c", "copy", "-f", "flv", url])
        .spawn()
        .unwrap()
}
