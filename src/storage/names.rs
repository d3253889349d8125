//! Every file name hlsd writes in a video's folder, and the allow-lists of
//! the names it serves. Only canonical forms are accepted: anything else
//! (`..`, percent-encoding, backslashes, absolute paths, NUL, non-ASCII)
//! is "not found", so no request can name a file outside its video.
//!
//! # Generations
//! Segments are served `immutable`, so a name once published must never
//! carry other bytes. A job that is redone (copy fallback, crash recovery)
//! writes a new *generation*: generation 0 uses the plain names
//! (`seg_00003.ts`, `key_00000.key`, `init.mp4`), generation `g` ≥ 1 the
//! same names behind a `g{g}_` prefix (`g1_seg_00003.ts`).

use super::id::is_id_char;

/// The record.
pub const META_FILE: &str = "meta.json";
/// The spool: the upload as it arrived.
pub const SOURCE_FILE: &str = "source";
/// Written (with the spool's final length) once the upload is complete, so
/// a spool can be known complete even when the record is unreadable.
pub const SOURCE_DONE: &str = "source.done";
/// A spool being fetched from a bucket (renamed to [`SOURCE_FILE`] once whole).
pub const SOURCE_PART: &str = "source.part";
/// What players open (the tutorial's URL), and each rung's media playlist.
pub const PLAYLIST: &str = "video.m3u8";
/// Each rung's I-frame playlist, beside its media playlist.
pub const IFRAME_PLAYLIST: &str = "iframes.m3u8";
/// The libavformat `hls` muxer's own playlist: scratch, read back to
/// publish [`PLAYLIST`]; never served (its stem starts with a dot).
pub const MUXER_PLAYLIST: &str = ".muxer.m3u8";
/// Folder of a video's AES-128 keys (served at `/keys/{id}/…` only).
pub const KEYS_DIR: &str = "keys";
/// Full-size poster and thumbnail.
pub const POSTER: &str = "poster.jpg";
pub const THUMB: &str = "thumb.jpg";
/// The storyboard's WebVTT thumbnail track, and its sprite sheets.
pub const STORYBOARD: &str = "storyboard.vtt";
/// The MP4 download of the top rendition.
pub const DOWNLOAD: &str = "download.mp4";
/// Beside a single rendition's segments when a master playlist is needed
/// after all (captions added later): its media playlist.
pub const FLAT_MEDIA_PLAYLIST: &str = "media.m3u8";
/// Suffix of every temporary file (never served, swept at start).
pub const TMP_SUFFIX: &str = ".tmp";

/// Sprite sheet `n` of the storyboard.
pub fn storyboard_sheet(n: usize) -> String {
    format!("storyboard_{n}.jpg")
}

/// The folder of a caption track (`cc-en`, `cc-pt-br-2`).
pub fn caption_dir(lang: &str, nth: usize) -> String {
    if nth <= 1 {
        format!("cc-{lang}")
    } else {
        format!("cc-{lang}-{nth}")
    }
}

/// Version `v` of a caption track: its playlist, and its segment `i`.
pub fn caption_playlist(v: u32) -> String {
    format!("v{v}.m3u8")
}

pub fn caption_segment(v: u32, i: usize) -> String {
    format!("v{v}_{i:05}.vtt")
}

/// Whether `name` is one of version `v`'s files (its playlist, or a
/// segment or a leftover of one).
pub fn is_caption_file(name: &str, v: u32) -> bool {
    name == caption_playlist(v) || name.starts_with(&format!("v{v}_"))
}

/// The folder of audio rendition `n` (1-based) of a video with several
/// audio tracks.
pub fn audio_dir(n: usize) -> String {
    format!("audio-{n}")
}

/// A language tag as caption routes and folders take it: 1 to 3 letters,
/// then up to two `-` subtags of 1 to 8 letters or digits, lower-cased
/// (`en`, `pt-br`, `zh-hant`).
pub fn language_tag(s: &str) -> Option<String> {
    let s = s.to_ascii_lowercase();
    let mut parts = s.split('-');
    let first = parts.next()?;
    if !(1..=3).contains(&first.len()) || !first.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let rest: Vec<&str> = parts.collect();
    let ok = rest.len() <= 2
        && rest
            .iter()
            .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    ok.then_some(s)
}

/// `""` for generation 0, `g{n}_` after.
fn prefix(generation: u32) -> String {
    if generation == 0 {
        String::new()
    } else {
        format!("g{generation}_")
    }
}

/// The muxer's `hls_segment_filename` pattern for `generation`.
pub fn segment_pattern(generation: u32, fmp4: bool) -> String {
    let ext = if fmp4 { "m4s" } else { "ts" };
    format!("{}seg_%05d.{ext}", prefix(generation))
}

/// A low-latency rung's muxer pattern: each file it cuts is a part.
pub fn part_pattern(generation: u32, fmp4: bool) -> String {
    let ext = if fmp4 { "m4s" } else { "ts" };
    format!("{}part_%05d.{ext}", prefix(generation))
}

/// The name after part `name` (`part_00041.ts` → `part_00042.ts`), and
/// the name of segment `n` made of parts named so.
pub fn after_part(name: &str, n: u64) -> Option<(String, String)> {
    let (head, rest) = name.split_once("part_")?;
    let (digits, ext) = rest.split_once('.')?;
    let next = digits.parse::<u64>().ok()? + 1;
    Some((
        format!("{head}part_{next:05}.{ext}"),
        format!("{head}seg_{n:05}.{ext}"),
    ))
}

/// The fMP4 initialization segment (`#EXT-X-MAP`) of `generation`.
pub fn init_name(generation: u32) -> String {
    format!("{}init.mp4", prefix(generation))
}

/// Key `index` of `generation`; `slot`: the rung of a ladder (each rung
/// has its own series), `None` for a single rendition.
pub fn key_name(generation: u32, slot: Option<usize>, index: u32) -> String {
    match slot {
        Some(r) => format!("{}key{r}_{index:05}.key", prefix(generation)),
        None => format!("{}key_{index:05}.key", prefix(generation)),
    }
}

/// Splits a `g{n}_` prefix off `name`: (generation, rest).
fn split_generation(name: &str) -> (u32, &str) {
    let Some(rest) = name.strip_prefix('g') else {
        return (0, name);
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    match (rest.get(..digits), rest.get(digits..)) {
        (Some(d), Some(tail))
            if (1..=6).contains(&digits) && !d.starts_with('0') && tail.starts_with('_') =>
        {
            (d.parse().unwrap_or(0), &tail[1..])
        }
        _ => (0, name),
    }
}

/// The generation of a generated file (segment, init segment, key); `None`
/// for any other name.
pub fn generation_of(name: &str) -> Option<u32> {
    let (g, rest) = split_generation(name);
    let generated = rest.starts_with("seg_") || rest == "init.mp4" || is_plain_key(rest);
    generated.then_some(g)
}

fn is_plain_key(name: &str) -> bool {
    let Some(body) = name
        .strip_prefix("key")
        .and_then(|n| n.strip_suffix(".key"))
    else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match body.split_once('_') {
        Some((slot, index)) => {
            slot.len() <= 1
                && digits(index)
                && index.len() == 5
                && (slot.is_empty() || digits(slot))
        }
        None => false,
    }
}

/// True for a key file name we serve (`key_NNNNN.key`, `keyR_NNNNN.key`
/// for rung R of a ladder, either behind a generation prefix).
pub fn is_key_name(name: &str) -> bool {
    is_plain_key(split_generation(name).1)
}

/// What kind of file a player may fetch, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Playlist,
    Segment,
    /// An fMP4 media segment (`.m4s`).
    Fmp4Segment,
    /// The fMP4 initialization segment (`init.mp4`).
    Fmp4Init,
    Image,
    /// WebVTT: caption segments and the storyboard's thumbnail track.
    Vtt,
    /// The MP4 download.
    Download,
}

impl FileKind {
    /// The `Content-Type` to serve it with.
    pub fn content_type(self) -> &'static str {
        match self {
            FileKind::Playlist => "application/vnd.apple.mpegurl",
            FileKind::Segment => "video/mp2t",
            // RFC 8216 §3.3 and the ISO BMFF segment type.
            FileKind::Fmp4Segment => "video/iso.segment",
            FileKind::Fmp4Init => "video/mp4",
            FileKind::Image => "image/jpeg",
            FileKind::Vtt => "text/vtt; charset=utf-8",
            FileKind::Download => "video/mp4",
        }
    }

    /// True for files that never change once published.
    pub fn is_immutable(self) -> bool {
        !matches!(self, FileKind::Playlist)
    }
}

/// Checks a file name under `/play/{id}/`: one path component of
/// `[A-Za-z0-9_-]` with a single known extension, not hidden, not temporary.
pub fn playable_file(name: &str) -> Option<FileKind> {
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || stem.len() > 64 || !stem.bytes().all(is_id_char) {
        return None;
    }
    match ext {
        "m3u8" => Some(FileKind::Playlist),
        "ts" => Some(FileKind::Segment),
        "m4s" => Some(FileKind::Fmp4Segment),
        "mp4" if split_generation(stem).1 == "init" => Some(FileKind::Fmp4Init),
        "mp4" if stem == "download" => Some(FileKind::Download),
        "jpg" => Some(FileKind::Image),
        "vtt" => Some(FileKind::Vtt),
        _ => None,
    }
}

/// Checks a folder name under `/play/{id}/`: a rung (`720p`, digits then
/// `p`), a caption track (`cc-en`, `cc-en-2`) or an audio rendition
/// (`audio-1`).
pub fn is_rung_name(name: &str) -> bool {
    if let Some(lang) = name.strip_prefix("cc-") {
        return language_tag(lang).as_deref() == Some(lang);
    }
    if let Some(n) = name.strip_prefix("audio-") {
        return (1..=2).contains(&n.len())
            && n.bytes().all(|b| b.is_ascii_digit())
            && !n.starts_with('0');
    }
    // A codec group's rung: `av1-720p`, `hevc-720p`.
    let name = name
        .strip_prefix("av1-")
        .or_else(|| name.strip_prefix("hevc-"))
        .unwrap_or(name);
    let Some(digits) = name.strip_suffix('p') else {
        return false;
    };
    (1..=4).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_odd_names_are_refused() {
        for bad in [
            "..",
            "../meta.json",
            "%2e%2e",
            "..%2fsource",
            "a/b.ts",
            "a\\b.ts",
            "/etc/passwd",
            "c:seg.ts",
            ".m3u8",
            ".muxer.m3u8",
            "seg.ts.tmp",
            "video.m3u8.tmp",
            "meta.json",
            "source",
            "source.done",
            "seg\0.ts",
            "séance.ts",
            "seg..ts",
            "seg.TS",
            "",
            ".",
            "seg%00.ts",
            "x_init.mp4",
        ] {
            assert_eq!(playable_file(bad), None, "{bad:?}");
        }
        assert_eq!(playable_file("video.m3u8"), Some(FileKind::Playlist));
        assert_eq!(playable_file("seg_00001.ts"), Some(FileKind::Segment));
        assert_eq!(playable_file("g2_seg_00001.ts"), Some(FileKind::Segment));
        assert_eq!(playable_file("seg_00001.m4s"), Some(FileKind::Fmp4Segment));
        assert_eq!(playable_file("init.mp4"), Some(FileKind::Fmp4Init));
        assert_eq!(playable_file("g3_init.mp4"), Some(FileKind::Fmp4Init));
        assert_eq!(playable_file("source.mp4"), None);
    }

    #[test]
    fn rung_names_are_heights() {
        assert!(is_rung_name("720p") && is_rung_name("2160p") && is_rung_name("120p"));
        for bad in ["p", "0720p", "720", "72x0p", "..", "keys", "12345p", "720P"] {
            assert!(!is_rung_name(bad), "{bad}");
        }
    }

    #[test]
    fn key_names_are_exact() {
        for good in [
            "key_00000.key",
            "key_12345.key",
            "key3_00001.key",
            "g1_key_00000.key",
            "g12_key3_00001.key",
        ] {
            assert!(is_key_name(good), "{good}");
        }
        for bad in [
            "keyx_00001.key",
            "key3-00001.key",
            "key_0000.key",
            "key_000000.key",
            "key_0000a.key",
            "../keyinfo",
            "keyinfo",
            "key_00000.keyx",
            "g0_key_00000.key",
            "g01_key_00000.key",
            "g_key_00000.key",
            "key12_00000.key",
        ] {
            assert!(!is_key_name(bad), "{bad}");
        }
    }

    #[test]
    fn parts_name_the_next_part_and_their_segment() {
        let (next, seg) = after_part("g2_part_00041.ts", 3).unwrap();
        assert_eq!(
            (next.as_str(), seg.as_str()),
            ("g2_part_00042.ts", "g2_seg_00003.ts")
        );
        let (next, _) = after_part("part_99999.m4s", 0).unwrap();
        assert_eq!(next, "part_100000.m4s");
        assert!(after_part("seg_00001.ts", 0).is_none());
        assert!(playable_file(&next).is_some());
    }

    #[test]
    fn generated_names_carry_their_generation() {
        assert_eq!(segment_pattern(0, false), "seg_%05d.ts");
        assert_eq!(segment_pattern(2, true), "g2_seg_%05d.m4s");
        assert_eq!(init_name(0), "init.mp4");
        assert_eq!(key_name(0, None, 3), "key_00003.key");
        assert_eq!(key_name(4, Some(1), 3), "g4_key1_00003.key");
        assert_eq!(generation_of("seg_00001.ts"), Some(0));
        assert_eq!(generation_of("g7_seg_00001.m4s"), Some(7));
        assert_eq!(generation_of("g7_init.mp4"), Some(7));
        assert_eq!(generation_of("g2_key1_00000.key"), Some(2));
        assert_eq!(generation_of("video.m3u8"), None);
        assert_eq!(generation_of("poster.jpg"), None);
    }
}
