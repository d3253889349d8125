//! Instant clips (issue 29): `?start=&end=` on a playback URL gives
//! playlists trimmed to the segments that cover `[start, end)` seconds:
//! segment-accurate, no new files. A master carries the range on to every
//! playlist it names ([`Clip::carry`]); a media playlist (a rung's, an
//! audio or caption track's, an I-frame playlist) keeps the segments that
//! overlap the range ([`Clip::trim`]), the key and init section in force
//! at its first one, and a media sequence that still numbers them as the
//! whole video does. A clip of a video still being made ends (`ENDLIST`)
//! once its last segment is out.

use super::rewrite::{rewrite_uris, with_query};

/// A range of a video, in seconds, as asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub start: f64,
    pub end: f64,
    /// The query's own spelling of both, carried on unchanged.
    text: (String, String),
}

impl Clip {
    /// The clip a URL's query asks for: `None` without `start` and `end`;
    /// an error for a malformed or empty range (one given without the
    /// other means from the start, or to the end).
    pub fn from_query(query: Option<&str>) -> Result<Option<Clip>, String> {
        let (mut start, mut end) = (None, None);
        for pair in query.unwrap_or("").split('&') {
            match pair.split_once('=') {
                Some(("start", v)) => start = Some(v),
                Some(("end", v)) => end = Some(v),
                _ => {}
            }
        }
        if start.is_none() && end.is_none() {
            return Ok(None);
        }
        let seconds = |v: Option<&str>, default: f64| -> Result<f64, String> {
            let Some(v) = v else { return Ok(default) };
            match v.parse::<f64>() {
                Ok(s) if (0.0..=1e7).contains(&s) => Ok(s),
                _ => Err(format!(
                    "start and end are seconds (0 to 10,000,000), not {v:?}"
                )),
            }
        };
        let (s, e) = (seconds(start, 0.0)?, seconds(end, f64::MAX)?);
        if e <= s {
            return Err("the clip's end must come after its start".into());
        }
        let text = (
            start.unwrap_or("0").to_owned(),
            end.unwrap_or("").to_owned(),
        );
        Ok(Some(Clip {
            start: s,
            end: e,
            text,
        }))
    }

    /// A range in seconds (`end` of `f64::MAX`: to the end).
    fn of(start: f64, end: f64) -> Clip {
        let spell = |s: f64| match s {
            f64::MAX => String::new(),
            s => s.to_string(),
        };
        Clip {
            start,
            end,
            text: (spell(start), spell(end)),
        }
    }

    /// The range a clip's playback token grants (milliseconds; no end: to
    /// the end of the video).
    pub fn from_millis(start_ms: u64, end_ms: Option<u64>) -> Clip {
        let secs = |ms: u64| ms as f64 / 1000.0;
        Clip::of(secs(start_ms), end_ms.map_or(f64::MAX, secs))
    }

    /// The part of this range inside `granted`; `None` when they do not
    /// overlap.
    pub fn within(&self, granted: &Clip) -> Option<Clip> {
        let (start, end) = (self.start.max(granted.start), self.end.min(granted.end));
        (end > start).then(|| Clip::of(start, end))
    }

    /// True when media playlist `text`, trimmed to the clip, lists `uri`
    /// (a segment's name, without a query).
    pub fn lists(&self, text: &str, uri: &str) -> bool {
        self.trim(text).is_some_and(|t| {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .any(|l| l.split('?').next() == Some(uri))
        })
    }

    /// A master playlist whose every URI carries the clip.
    pub fn carry(&self, master: &str) -> String {
        rewrite_uris(master, |u| self.on(u))
    }

    /// `uri` with the clip's query.
    pub fn on(&self, uri: &str) -> String {
        let u = with_query(uri, "start", &self.text.0);
        match self.text.1.as_str() {
            "" => u,
            end => with_query(&u, "end", end),
        }
    }

    /// The media playlist `text` trimmed to the clip; `None` when the
    /// playlist has ended and no segment of it overlaps the clip.
    pub fn trim(&self, text: &str) -> Option<String> {
        let mut t = Trim::new(self);
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            t.line(line);
        }
        t.finish()
    }
}

/// The walk through one media playlist.
struct Trim<'a> {
    clip: &'a Clip,
    /// Lines before the first segment, and the media sequence's value.
    header: Vec<String>,
    sequence: u64,
    /// The tags of the segment being read.
    pending: Vec<String>,
    /// The key and init section in force (from skipped segments too).
    key: Option<String>,
    map: Option<String>,
    body: Vec<String>,
    first: Option<u64>,
    /// Where the first kept segment starts, seconds.
    first_at: f64,
    index: u64,
    at: f64,
    ended: bool,
    in_body: bool,
}

impl<'a> Trim<'a> {
    fn new(clip: &'a Clip) -> Trim<'a> {
        Trim {
            clip,
            header: Vec::new(),
            sequence: 0,
            pending: Vec::new(),
            key: None,
            map: None,
            body: Vec::new(),
            first: None,
            first_at: 0.0,
            index: 0,
            at: 0.0,
            ended: false,
            in_body: false,
        }
    }

    fn line(&mut self, line: &str) {
        const SEGMENT_TAGS: [&str; 6] = [
            "#EXTINF:",
            "#EXT-X-BYTERANGE:",
            "#EXT-X-KEY:",
            "#EXT-X-MAP:",
            "#EXT-X-DISCONTINUITY",
            "#EXT-X-PROGRAM-DATE-TIME:",
        ];
        if line == "#EXT-X-ENDLIST" {
            self.ended = true;
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            self.sequence = v.trim().parse().unwrap_or(0);
        } else if !line.starts_with('#') {
            self.segment(line);
        } else if SEGMENT_TAGS.iter().any(|t| line.starts_with(t)) {
            self.in_body = true;
            if line.starts_with("#EXT-X-KEY:") {
                self.key = Some(line.to_owned());
            } else if line.starts_with("#EXT-X-MAP:") {
                self.map = Some(line.to_owned());
            }
            self.pending.push(line.to_owned());
        } else if !self.in_body {
            self.header.push(line.to_owned());
        }
    }

    /// A segment's URI: kept when `[at, at + duration)` overlaps the clip.
    fn segment(&mut self, uri: &str) {
        let pending = std::mem::take(&mut self.pending);
        let duration = pending
            .iter()
            .find_map(|l| l.strip_prefix("#EXTINF:"))
            .and_then(|v| v.split(',').next()?.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        let (from, to) = (self.at, self.at + duration);
        if to > self.clip.start && from < self.clip.end {
            if self.first.is_none() {
                self.first = Some(self.index);
                self.first_at = from;
                let has = |p: &str| pending.iter().any(|l| l.starts_with(p));
                let carried = [("#EXT-X-MAP:", &self.map), ("#EXT-X-KEY:", &self.key)];
                for (tag, value) in carried {
                    if let (false, Some(v)) = (has(tag), value) {
                        self.body.push(v.clone());
                    }
                }
            }
            self.body.extend(pending);
            self.body.push(uri.to_owned());
        }
        self.at = to;
        self.index += 1;
    }

    fn finish(self) -> Option<String> {
        let reached = self.at >= self.clip.end;
        if self.first.is_none() && self.ended {
            return None;
        }
        let sequence = self.sequence + self.first.unwrap_or(self.index);
        let mut out = String::new();
        for l in &self.header {
            if l.starts_with("#EXT-X-START:") {
                continue;
            }
            match l.strip_prefix("#EXT-X-PLAYLIST-TYPE:") {
                // A clip that is whole is VOD even while the video grows.
                Some(_) if reached => out.push_str("#EXT-X-PLAYLIST-TYPE:VOD"),
                _ => out.push_str(l),
            }
            out.push('\n');
            if l.starts_with("#EXT-X-TARGETDURATION:") {
                out.push_str(&format!("#EXT-X-MEDIA-SEQUENCE:{sequence}\n"));
                // Players start at the clip's start, inside its first
                // segment (RFC 8216 §4.3.5.2).
                let offset = self.clip.start - self.first_at;
                if self.first.is_some() && offset >= 0.001 {
                    out.push_str(&format!(
                        "#EXT-X-START:TIME-OFFSET={offset:.3},PRECISE=YES\n"
                    ));
                }
            }
        }
        for l in &self.body {
            out.push_str(l);
            out.push('\n');
        }
        if self.ended || reached {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PL: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n\
        #EXT-X-KEY:METHOD=AES-128,URI=\"k0.key\",IV=0x0\n\
        #EXTINF:2.000,\ns0.ts\n#EXTINF:2.000,\ns1.ts\n\
        #EXT-X-KEY:METHOD=AES-128,URI=\"k1.key\",IV=0x1\n\
        #EXTINF:2.000,\ns2.ts\n#EXTINF:2.000,\ns3.ts\n#EXTINF:1.500,\ns4.ts\n#EXT-X-ENDLIST\n";

    fn clip(q: &str) -> Clip {
        Clip::from_query(Some(q)).unwrap().unwrap()
    }

    fn uris(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn the_segments_that_cover_the_range_are_kept_with_their_key() {
        let out = clip("start=3&end=6.5").trim(PL).unwrap();
        assert_eq!(uris(&out), ["s1.ts", "s2.ts", "s3.ts"]);
        assert!(out.contains("#EXT-X-MEDIA-SEQUENCE:1\n"), "{out}");
        // s1 is under k0, given again before it; s2's own key follows.
        let k0 = out.find("k0.key").unwrap();
        assert!(
            k0 < out.find("s1.ts").unwrap() && out.contains("k1.key"),
            "{out}"
        );
        assert!(out.ends_with("#EXT-X-ENDLIST\n"));
        assert_eq!(out.matches("MEDIA-SEQUENCE").count(), 1);
        // Players start at 3 s: 1 s into s1.
        assert!(
            out.contains("#EXT-X-START:TIME-OFFSET=1.000,PRECISE=YES\n"),
            "{out}"
        );
        let on_a_boundary = clip("start=4&end=6").trim(PL).unwrap();
        assert!(!on_a_boundary.contains("EXT-X-START"), "{on_a_boundary}");
        // Boundaries: a segment that ends at the start is not in it.
        assert_eq!(uris(&clip("start=4&end=6").trim(PL).unwrap()), ["s2.ts"]);
        assert_eq!(uris(&clip("start=8").trim(PL).unwrap()), ["s4.ts"]);
        assert_eq!(uris(&clip("end=0.5").trim(PL).unwrap()), ["s0.ts"]);
        assert_eq!(clip("start=9.5&end=20").trim(PL), None);
    }

    #[test]
    fn a_growing_playlist_ends_once_the_clip_is_out() {
        let growing = PL
            .replace("#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-PLAYLIST-TYPE:EVENT")
            .replace("#EXT-X-ENDLIST\n", "");
        let whole = clip("start=1&end=3").trim(&growing).unwrap();
        assert!(
            whole.ends_with("#EXT-X-ENDLIST\n") && whole.contains("TYPE:VOD"),
            "{whole}"
        );
        let open = clip("start=1&end=30").trim(&growing).unwrap();
        assert!(
            !open.contains("ENDLIST") && open.contains("TYPE:EVENT"),
            "{open}"
        );
        // Not out yet: an empty, growing playlist the player polls.
        let later = clip("start=20&end=30").trim(&growing).unwrap();
        assert!(uris(&later).is_empty() && !later.contains("ENDLIST"));
    }

    #[test]
    fn a_tokens_range_bounds_the_asked_one() {
        let granted = Clip::from_millis(2000, Some(6500));
        assert_eq!((granted.start, granted.end), (2.0, 6.5));
        assert_eq!(granted.on("a.m3u8"), "a.m3u8?start=2&end=6.5");
        let open = Clip::from_millis(3000, None);
        assert_eq!(open.on("a.m3u8"), "a.m3u8?start=3");
        let asked = clip("start=5&end=9").within(&granted).unwrap();
        assert_eq!((asked.start, asked.end), (5.0, 6.5));
        assert_eq!(clip("start=7").within(&granted), None);
        assert!(granted.lists(PL, "s1.ts") && granted.lists(PL, "s3.ts"));
        assert!(!granted.lists(PL, "s0.ts") && !granted.lists(PL, "s4.ts"));
        assert!(!granted.lists(PL, "k0.key"));
    }

    #[test]
    fn a_master_carries_the_range_and_bad_ranges_are_refused() {
        let m =
            "#EXTM3U\n#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"s\",NAME=\"en\",URI=\"c/en.m3u8\"\n\
                 #EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8?token=T\n";
        let out = clip("start=3&end=7.5").carry(m);
        assert!(out.contains("URI=\"c/en.m3u8?start=3&end=7.5\""), "{out}");
        assert!(
            out.contains("720p/index.m3u8?token=T&start=3&end=7.5"),
            "{out}"
        );
        assert_eq!(Clip::from_query(Some("token=x")), Ok(None));
        assert_eq!(Clip::from_query(None), Ok(None));
        for bad in [
            "start=5&end=5",
            "start=-1",
            "start=abc",
            "end=NaN",
            "start=inf",
        ] {
            assert!(Clip::from_query(Some(bad)).is_err(), "{bad}");
        }
    }
}
