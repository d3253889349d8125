//! Instant clips (issue 29, item 3): `?start=&end=` on a playback URL
//! gives playlists trimmed to the segments that cover the range (no new
//! files): the master carries the range to every playlist it names, each
//! media playlist keeps exactly the overlapping segments (checked against
//! the whole playlist), the CLI decodes the clip whole; a single
//! rendition's playlist is trimmed itself until captions make it a master;
//! a range that is malformed, empty or after the end is a 400.

use crate::common::*;
use std::path::Path;

/// The segments of media playlist `text`: (uri, start, end) in seconds.
fn timeline(text: &str) -> Vec<(String, f64, f64)> {
    let mut at = 0.0;
    extinfs(text)
        .into_iter()
        .map(|(d, uri)| {
            at += d;
            (uri, at - d, at)
        })
        .collect()
}

/// The media playlists a master names (variants and renditions).
fn named(master: &str) -> Vec<String> {
    let mut out: Vec<String> = master
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for l in master.lines() {
        if let Some((_, rest)) = l.split_once("URI=\"") {
            out.push(rest.split('"').next().unwrap().to_owned());
        }
    }
    out
}

#[test]
fn an_instant_clip_plays_the_segments_that_cover_its_range() {
    let s = Server::start(&["--segment-seconds", "2"]);
    let id = upload_ok(&s, &h264_mp4(10, "854x480", true), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    let (from, to) = (3.0, 6.5);
    let master = s.get(&format!("/play/{id}/video.m3u8?start=3&end=6.5"));
    assert_eq!(master.status, 200, "{}", master.text());
    let playlists = named(&master.text());
    assert!(
        playlists.len() >= 3,
        "a ladder and its I-frame playlists: {playlists:?}"
    );
    for uri in &playlists {
        assert!(uri.ends_with("start=3&end=6.5"), "{uri}");
        let clip = s.get(&format!("/play/{id}/{uri}"));
        assert_eq!(clip.status, 200, "{uri}");
        let whole = s.get(&format!("/play/{id}/{}", uri.split('?').next().unwrap()));
        let want: Vec<_> = timeline(&whole.text())
            .into_iter()
            .enumerate()
            .filter(|(_, (_, a, b))| *b > from && *a < to)
            .collect();
        let got: Vec<String> = timeline(&clip.text()).into_iter().map(|g| g.0).collect();
        let kept: Vec<String> = want.iter().map(|w| w.1 .0.clone()).collect();
        assert_eq!(got, kept, "{uri}:\n{}", clip.text());
        let first = want.first().map_or(0, |w| w.0);
        let sequence = format!("#EXT-X-MEDIA-SEQUENCE:{first}\n");
        assert!(clip.text().contains(&sequence), "{uri}: {}", clip.text());
        assert!(clip.text().ends_with("#EXT-X-ENDLIST\n"), "{uri}");
    }
    // The CLI plays the clip whole: what it covers, to the segment.
    let url = format!("http://{}/play/{id}/video.m3u8?start=3&end=6.5", s.addr);
    assert_cli_plays(&url);
    let probed = ffprobe(Path::new(&url), &["-show_entries", "format=duration"]);
    let secs: f64 = probed["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (4.0..=6.2).contains(&secs),
        "a 3.5 s clip on 2 s segments plays {secs} s"
    );
}

#[test]
fn a_single_renditions_clip_and_bad_ranges() {
    let s = Server::start(&["--segment-seconds", "2"]);
    let id = upload_ok(&s, &h264_mp4(4, "160x120", true), FAST);
    assert_eq!(s.wait_done(&id)["status"], "ready");
    for q in [
        "start=5&end=2",
        "start=abc",
        "start=-1",
        "end=0",
        "start=60",
    ] {
        let r = s.get(&format!("/play/{id}/video.m3u8?{q}"));
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "bad_request", "{q}");
    }
    // Segments are not playlists: the range does not apply to them.
    let whole = s.get(&format!("/play/{id}/video.m3u8"));
    let seg = &timeline(&whole.text())[0].0;
    assert_eq!(s.get(&format!("/play/{id}/{seg}?start=60")).status, 200);
    // A single rendition's playlist is trimmed itself...
    let flat = s.get(&format!("/play/{id}/video.m3u8?start=2.5&end=3"));
    let uris = |t: &str, f: &dyn Fn(f64, f64) -> bool| -> Vec<String> {
        timeline(t)
            .into_iter()
            .filter(|s| f(s.1, s.2))
            .map(|s| s.0)
            .collect()
    };
    let kept = uris(&whole.text(), &|a, b| b > 2.5 && a < 3.0);
    assert_eq!(uris(&flat.text(), &|_, _| true), kept, "{}", flat.text());
    // ...until captions make it a master, which carries the range on.
    let vtt = "WEBVTT\n\n00:00.500 --> 00:01.500\nHello\n";
    let path = format!("/videos/{id}/captions/en");
    let put = request(s.addr, "PUT", &path, &[], vtt.as_bytes());
    assert!(put.status == 200 || put.status == 201, "{}", put.text());
    let master = s.get(&format!("/play/{id}/video.m3u8?start=2.5&end=3"));
    assert!(
        master.text().contains("#EXT-X-STREAM-INF:"),
        "{}",
        master.text()
    );
    for uri in named(&master.text()) {
        assert!(uri.ends_with("start=2.5&end=3"), "{uri}");
        assert_eq!(s.get(&format!("/play/{id}/{uri}")).status, 200, "{uri}");
    }
}
