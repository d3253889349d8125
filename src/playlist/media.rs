//! Media playlists (RFC 8216 §4.3.2–4.3.3): a rung's segments, an I-frame
//! playlist's byte ranges, the placeholder of a video not yet started.

use super::attrs;
use std::fmt::Write as _;

/// `#EXT-X-PLAYLIST-TYPE` (§4.3.3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    /// Segments are only ever appended (a video being processed).
    Event,
    /// Never changes again (with `#EXT-X-ENDLIST`).
    Vod,
}

/// `#EXT-X-KEY` (§4.3.2.4): the key of the segments from here on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// `AES-128` or `NONE`.
    pub method: String,
    pub uri: Option<String>,
    /// `0x…`, 128 bits.
    pub iv: Option<String>,
}

/// `#EXT-X-BYTERANGE:<length>@<offset>` (§4.3.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub length: u64,
    pub offset: u64,
}

/// One media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// `#EXTINF` seconds.
    pub duration: f64,
    pub uri: String,
    pub byte_range: Option<ByteRange>,
    /// An `#EXT-X-KEY` written before this segment (the key changes here).
    pub key: Option<Key>,
    /// `#EXT-X-DISCONTINUITY` before this segment.
    pub discontinuity: bool,
}

impl Segment {
    /// A plain segment of `duration` seconds at `uri`.
    pub fn new(duration: f64, uri: impl Into<String>) -> Self {
        Segment {
            duration,
            uri: uri.into(),
            byte_range: None,
            key: None,
            discontinuity: false,
        }
    }
}

/// A media playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaPlaylist {
    /// `#EXT-X-TARGETDURATION`: every `#EXTINF`, rounded, is at most this.
    pub target_duration: u64,
    pub media_sequence: u64,
    /// `#EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities before the first
    /// segment listed (a live window's slid out).
    pub discontinuity_sequence: u64,
    pub playlist_type: Option<PlaylistType>,
    pub independent_segments: bool,
    /// `#EXT-X-I-FRAMES-ONLY` (§4.3.3.6).
    pub iframes_only: bool,
    /// `#EXT-X-MAP` URI (fMP4 initialization segment).
    pub map: Option<String>,
    pub segments: Vec<Segment>,
    /// `#EXT-X-ENDLIST`.
    pub ended: bool,
}

impl MediaPlaylist {
    /// An empty playlist of `playlist_type` with target `target`.
    pub fn new(playlist_type: PlaylistType, target: u64) -> Self {
        MediaPlaylist {
            target_duration: target,
            playlist_type: Some(playlist_type),
            ..MediaPlaylist::default()
        }
    }

    /// The playlist of a video whose first segment is not made yet: an
    /// EVENT playlist with no segment, so players keep polling it.
    pub fn placeholder(segment_seconds: u32) -> Self {
        MediaPlaylist::new(PlaylistType::Event, u64::from(segment_seconds))
    }

    /// Seconds of media listed.
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// Raises the target duration to what the segments need (§4.3.3.1:
    /// each `#EXTINF` rounded to the nearest integer is ≤ the target).
    pub fn fit_target(&mut self, at_least: u64) {
        let need = self
            .segments
            .iter()
            .map(|s| s.duration.max(0.0).round() as u64)
            .max()
            .unwrap_or(0);
        self.target_duration = need.max(at_least).max(1);
    }

    /// The lowest `#EXT-X-VERSION` the features in use need (§7).
    pub fn version(&self) -> u8 {
        let ranges = self.iframes_only || self.segments.iter().any(|s| s.byte_range.is_some());
        match (&self.map, ranges) {
            (Some(_), _) if !self.iframes_only => 6,
            (Some(_), _) => 5,
            (None, true) => 4,
            // Decimal EXTINF values need version 3.
            (None, false) => 3,
        }
    }

    /// Parses a playlist leniently: unknown tags are skipped.
    pub fn parse(text: &str) -> MediaPlaylist {
        let mut p = MediaPlaylist::default();
        let mut next = Segment::new(0.0, "");
        let mut last_range_end = 0u64;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Some(tag) = line.strip_prefix('#') else {
                next.uri = line.to_owned();
                p.segments
                    .push(std::mem::replace(&mut next, Segment::new(0.0, "")));
                continue;
            };
            let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
            match name {
                "EXT-X-TARGETDURATION" => p.target_duration = value.parse().unwrap_or(0),
                "EXT-X-MEDIA-SEQUENCE" => p.media_sequence = value.parse().unwrap_or(0),
                "EXT-X-DISCONTINUITY-SEQUENCE" => {
                    p.discontinuity_sequence = value.parse().unwrap_or(0);
                }
                "EXT-X-PLAYLIST-TYPE" => {
                    p.playlist_type = match value {
                        "EVENT" => Some(PlaylistType::Event),
                        "VOD" => Some(PlaylistType::Vod),
                        _ => None,
                    }
                }
                "EXT-X-INDEPENDENT-SEGMENTS" => p.independent_segments = true,
                "EXT-X-I-FRAMES-ONLY" => p.iframes_only = true,
                "EXT-X-ENDLIST" => p.ended = true,
                "EXT-X-DISCONTINUITY" => next.discontinuity = true,
                "EXT-X-MAP" => p.map = attrs::get(&attrs::parse(value), "URI").map(str::to_owned),
                "EXTINF" => {
                    let d = value.split(',').next().unwrap_or("").trim();
                    next.duration = d
                        .parse::<f64>()
                        .ok()
                        .filter(|d| d.is_finite())
                        .unwrap_or(0.0);
                }
                "EXT-X-BYTERANGE" => {
                    next.byte_range = parse_range(value, last_range_end);
                    if let Some(r) = next.byte_range {
                        last_range_end = r.offset.saturating_add(r.length);
                    }
                }
                "EXT-X-KEY" => {
                    let a = attrs::parse(value);
                    next.key = Some(Key {
                        method: attrs::get(&a, "METHOD").unwrap_or("NONE").to_owned(),
                        uri: attrs::get(&a, "URI").map(str::to_owned),
                        iv: attrs::get(&a, "IV").map(str::to_owned),
                    });
                }
                _ => {}
            }
        }
        p
    }
}

fn parse_range(value: &str, previous_end: u64) -> Option<ByteRange> {
    let (len, off) = match value.split_once('@') {
        Some((l, o)) => (l.parse().ok()?, o.parse().ok()?),
        None => (value.parse().ok()?, previous_end),
    };
    Some(ByteRange {
        length: len,
        offset: off,
    })
}

impl std::fmt::Display for MediaPlaylist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut t = String::with_capacity(128 + self.segments.len() * 40);
        let _ = write!(
            t,
            "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
            self.version(),
            self.target_duration,
            self.media_sequence
        );
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                t,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        match self.playlist_type {
            Some(PlaylistType::Event) => t.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
            Some(PlaylistType::Vod) => t.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
            None => {}
        }
        if self.independent_segments {
            t.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        }
        if self.iframes_only {
            t.push_str("#EXT-X-I-FRAMES-ONLY\n");
        }
        if let Some(map) = &self.map {
            let _ = writeln!(
                t,
                "#EXT-X-MAP:{}",
                attrs::Writer::default().quoted("URI", map).finish()
            );
        }
        for s in &self.segments {
            if s.discontinuity {
                t.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if let Some(k) = &s.key {
                let a = attrs::Writer::default()
                    .raw("METHOD", &k.method)
                    .quoted_opt("URI", k.uri.as_deref())
                    .raw_opt("IV", k.iv.as_deref());
                let _ = writeln!(t, "#EXT-X-KEY:{}", a.finish());
            }
            let _ = writeln!(t, "#EXTINF:{:.6},", s.duration.max(0.0));
            if let Some(r) = s.byte_range {
                let _ = writeln!(t, "#EXT-X-BYTERANGE:{}@{}", r.length, r.offset);
            }
            t.push_str(&s.uri);
            t.push('\n');
        }
        if self.ended {
            t.push_str("#EXT-X-ENDLIST\n");
        }
        f.write_str(&t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What FFmpeg 5.1's hls muxer writes (encrypted, growing).
    const MUXER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n\
#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/ID/key_00000.key\",IV=0x0102\n\
#EXTINF:6.000000,\nseg_00000.ts\n#EXTINF:2.500000,\nseg_00001.ts\n";

    #[test]
    fn the_muxers_playlist_round_trips() {
        let p = MediaPlaylist::parse(MUXER);
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.playlist_type, Some(PlaylistType::Event));
        assert!(p.independent_segments && !p.ended);
        let key = p.segments[0].key.as_ref().unwrap();
        assert_eq!(key.uri.as_deref(), Some("/keys/ID/key_00000.key"));
        assert_eq!(key.iv.as_deref(), Some("0x0102"));
        assert!((p.duration() - 8.5).abs() < 1e-9);
        assert_eq!(p.to_string(), MUXER);
        assert_eq!(MediaPlaylist::parse(&p.to_string()), p);
    }

    #[test]
    fn vod_fmp4_and_iframe_playlists_say_what_they_need() {
        let mut p = MediaPlaylist::new(PlaylistType::Vod, 6);
        p.map = Some("init.mp4".into());
        p.segments.push(Segment::new(6.2, "seg_00000.m4s"));
        p.ended = true;
        p.fit_target(6);
        let t = p.to_string();
        assert!(
            t.starts_with("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:6\n"),
            "{t}"
        );
        assert!(t.contains("#EXT-X-MAP:URI=\"init.mp4\"\n") && t.ends_with("#EXT-X-ENDLIST\n"));
        p.segments.push(Segment::new(6.5, "seg_00001.m4s"));
        p.fit_target(6);
        assert_eq!(p.target_duration, 7);

        let mut i = MediaPlaylist::new(PlaylistType::Vod, 2);
        i.iframes_only = true;
        let mut s = Segment::new(2.0, "seg_00000.ts");
        s.byte_range = Some(ByteRange {
            length: 1128,
            offset: 0,
        });
        i.segments.push(s);
        i.ended = true;
        let t = i.to_string();
        assert!(t.contains("#EXT-X-VERSION:4\n") && t.contains("#EXT-X-I-FRAMES-ONLY\n"));
        assert!(t.contains("#EXTINF:2.000000,\n#EXT-X-BYTERANGE:1128@0\nseg_00000.ts\n"));
        assert_eq!(MediaPlaylist::parse(&t), i);
    }

    #[test]
    fn the_placeholder_is_an_empty_event_playlist() {
        let t = MediaPlaylist::placeholder(6).to_string();
        assert_eq!(
            t,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n"
        );
    }

    #[test]
    fn garbage_parses_to_something_without_panicking() {
        for t in [
            "",
            "#EXTINF:abc,\nx\n",
            "#EXT-X-BYTERANGE:@@\n#EXT-X-KEY:\n\u{0}",
            "#EXTINF:inf,\ny",
        ] {
            let _ = MediaPlaylist::parse(t).to_string();
        }
        assert_eq!(
            MediaPlaylist::parse("#EXTINF:inf,\ny").segments[0].duration,
            0.0
        );
    }
}
