//! Master playlists (RFC 8216 §4.3.4): the variants of a ladder with their
//! measured `BANDWIDTH`, `AVERAGE-BANDWIDTH`, `CODECS`, `RESOLUTION` and
//! `FRAME-RATE`; I-frame variants; alternative renditions (`#EXT-X-MEDIA`).

use super::attrs;
use std::fmt::Write as _;

/// `TYPE` of an `#EXT-X-MEDIA` rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Subtitles,
}

/// An `#EXT-X-MEDIA` alternative rendition (§4.3.4.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    pub kind: MediaKind,
    pub group_id: String,
    pub language: Option<String>,
    pub name: String,
    pub default: bool,
    pub autoselect: bool,
    pub forced: bool,
    /// Audio only: `"2"`.
    pub channels: Option<String>,
    pub uri: Option<String>,
}

/// An `#EXT-X-STREAM-INF` variant (§4.3.4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Peak segment bit rate, bit/s.
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    /// RFC 6381 codecs (`avc1.64001f,mp4a.40.2`).
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    /// `AUDIO` / `SUBTITLES` group ids.
    pub audio: Option<String>,
    pub subtitles: Option<String>,
    /// `VIDEO-RANGE` (`SDR`, `PQ`, `HLG`).
    pub video_range: Option<String>,
    pub uri: String,
}

/// An `#EXT-X-I-FRAME-STREAM-INF` variant (§4.3.4.3).
#[derive(Debug, Clone, PartialEq)]
pub struct IFrameVariant {
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    pub uri: String,
}

/// A master playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MasterPlaylist {
    pub independent_segments: bool,
    pub renditions: Vec<Rendition>,
    pub variants: Vec<Variant>,
    pub iframe_variants: Vec<IFrameVariant>,
}

fn resolution(v: &str) -> Option<(u32, u32)> {
    let (w, h) = v.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

impl MasterPlaylist {
    /// Parses a master playlist leniently (unknown tags are skipped).
    pub fn parse(text: &str) -> MasterPlaylist {
        let mut m = MasterPlaylist::default();
        let mut pending: Option<Vec<(String, String)>> = None;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Some(tag) = line.strip_prefix('#') else {
                if let Some(a) = pending.take() {
                    m.variants.push(variant(&a, line));
                }
                continue;
            };
            let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
            match name {
                "EXT-X-INDEPENDENT-SEGMENTS" => m.independent_segments = true,
                "EXT-X-STREAM-INF" => pending = Some(attrs::parse(value)),
                "EXT-X-I-FRAME-STREAM-INF" => {
                    let a = attrs::parse(value);
                    m.iframe_variants.push(IFrameVariant {
                        bandwidth: num(&a, "BANDWIDTH").unwrap_or(0),
                        average_bandwidth: num(&a, "AVERAGE-BANDWIDTH"),
                        codecs: attrs::get(&a, "CODECS").unwrap_or("").to_owned(),
                        resolution: attrs::get(&a, "RESOLUTION").and_then(resolution),
                        uri: attrs::get(&a, "URI").unwrap_or("").to_owned(),
                    });
                }
                "EXT-X-MEDIA" => m.renditions.extend(rendition(&attrs::parse(value))),
                _ => {}
            }
        }
        m
    }
}

fn num(a: &[(String, String)], name: &str) -> Option<u64> {
    attrs::get(a, name)?.parse().ok()
}

fn variant(a: &[(String, String)], uri: &str) -> Variant {
    let s = |n: &str| attrs::get(a, n).map(str::to_owned);
    Variant {
        bandwidth: num(a, "BANDWIDTH").unwrap_or(0),
        average_bandwidth: num(a, "AVERAGE-BANDWIDTH"),
        codecs: s("CODECS").unwrap_or_default(),
        resolution: attrs::get(a, "RESOLUTION").and_then(resolution),
        frame_rate: attrs::get(a, "FRAME-RATE").and_then(|f| f.parse().ok()),
        audio: s("AUDIO"),
        subtitles: s("SUBTITLES"),
        video_range: s("VIDEO-RANGE"),
        uri: uri.to_owned(),
    }
}

fn rendition(a: &[(String, String)]) -> Option<Rendition> {
    let kind = match attrs::get(a, "TYPE")? {
        "AUDIO" => MediaKind::Audio,
        "SUBTITLES" => MediaKind::Subtitles,
        _ => return None,
    };
    let yes = |n: &str| attrs::get(a, n) == Some("YES");
    let s = |n: &str| attrs::get(a, n).map(str::to_owned);
    Some(Rendition {
        kind,
        group_id: s("GROUP-ID")?,
        language: s("LANGUAGE"),
        name: s("NAME").unwrap_or_default(),
        default: yes("DEFAULT"),
        autoselect: yes("AUTOSELECT"),
        forced: yes("FORCED"),
        channels: s("CHANNELS"),
        uri: s("URI"),
    })
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "YES"
    } else {
        "NO"
    }
}

impl std::fmt::Display for MasterPlaylist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut t = String::from("#EXTM3U\n#EXT-X-VERSION:6\n");
        if self.independent_segments {
            t.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        }
        for r in &self.renditions {
            let kind = match r.kind {
                MediaKind::Audio => "AUDIO",
                MediaKind::Subtitles => "SUBTITLES",
            };
            let mut a = attrs::Writer::default()
                .raw("TYPE", kind)
                .quoted("GROUP-ID", &r.group_id)
                .quoted_opt("LANGUAGE", r.language.as_deref())
                .quoted("NAME", &r.name)
                .raw("DEFAULT", yes_no(r.default))
                .raw("AUTOSELECT", yes_no(r.autoselect));
            if r.kind == MediaKind::Subtitles {
                a = a.raw("FORCED", yes_no(r.forced));
            }
            let a = a
                .quoted_opt("CHANNELS", r.channels.as_deref())
                .quoted_opt("URI", r.uri.as_deref());
            let _ = writeln!(t, "#EXT-X-MEDIA:{}", a.finish());
        }
        for v in &self.variants {
            let a = attrs::Writer::default()
                .raw("BANDWIDTH", v.bandwidth.max(1))
                .raw_opt("AVERAGE-BANDWIDTH", v.average_bandwidth.map(|b| b.max(1)))
                .quoted("CODECS", &v.codecs)
                .raw_opt("RESOLUTION", v.resolution.map(|(w, h)| format!("{w}x{h}")))
                .raw_opt("FRAME-RATE", v.frame_rate.map(|r| format!("{r:.3}")))
                .raw_opt("VIDEO-RANGE", v.video_range.as_deref())
                .quoted_opt("AUDIO", v.audio.as_deref())
                .quoted_opt("SUBTITLES", v.subtitles.as_deref());
            let _ = write!(t, "#EXT-X-STREAM-INF:{}\n{}\n", a.finish(), v.uri);
        }
        for v in &self.iframe_variants {
            let a = attrs::Writer::default()
                .raw("BANDWIDTH", v.bandwidth.max(1))
                .raw_opt("AVERAGE-BANDWIDTH", v.average_bandwidth.map(|b| b.max(1)))
                .quoted("CODECS", &v.codecs)
                .raw_opt("RESOLUTION", v.resolution.map(|(w, h)| format!("{w}x{h}")))
                .quoted("URI", &v.uri);
            let _ = writeln!(t, "#EXT-X-I-FRAME-STREAM-INF:{}", a.finish());
        }
        f.write_str(&t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder() -> MasterPlaylist {
        MasterPlaylist {
            independent_segments: true,
            renditions: vec![Rendition {
                kind: MediaKind::Subtitles,
                group_id: "subs".into(),
                language: Some("en".into()),
                name: "English".into(),
                default: true,
                autoselect: true,
                forced: false,
                channels: None,
                uri: Some("subs/en/video.m3u8".into()),
            }],
            variants: vec![Variant {
                bandwidth: 3_100_000,
                average_bandwidth: Some(2_000_000),
                codecs: "avc1.64001f,mp4a.40.2".into(),
                resolution: Some((1280, 720)),
                frame_rate: Some(30.0),
                audio: None,
                subtitles: Some("subs".into()),
                video_range: Some("SDR".into()),
                uri: "720p/video.m3u8".into(),
            }],
            iframe_variants: vec![IFrameVariant {
                bandwidth: 400_000,
                average_bandwidth: Some(90_000),
                codecs: "avc1.64001f".into(),
                resolution: Some((1280, 720)),
                uri: "720p/iframes.m3u8".into(),
            }],
        }
    }

    #[test]
    fn a_ladder_round_trips() {
        let m = ladder();
        let t = m.to_string();
        assert!(
            t.contains(
                "#EXT-X-STREAM-INF:BANDWIDTH=3100000,AVERAGE-BANDWIDTH=2000000,\
             CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,\
             VIDEO-RANGE=SDR,SUBTITLES=\"subs\"\n720p/video.m3u8\n"
            ),
            "{t}"
        );
        assert!(t.contains("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\""));
        assert!(t.contains("URI=\"720p/iframes.m3u8\"\n"));
        assert_eq!(MasterPlaylist::parse(&t), m);
    }
}
