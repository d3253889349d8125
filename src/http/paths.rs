//! Validation of untrusted path pieces. Only canonical forms are accepted:
//! anything else (`..`, percent-encoding, backslashes, absolute paths, NUL,
//! non-ASCII) is "not found", so no request can name a file outside
//! `storage/<id>/`.

/// Length of a video id (nanoid's default).
pub const ID_LEN: usize = 21;

/// nanoid's default alphabet: `A-Za-z0-9_-`.
fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// True for a well-formed video id.
pub fn is_video_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(is_id_char)
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
        }
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
        "mp4" if stem == "init" => Some(FileKind::Fmp4Init),
        "jpg" => Some(FileKind::Image),
        _ => None,
    }
}

/// Checks a rung folder name under `/play/{id}/`: `720p` (digits then `p`).
pub fn is_rung_name(name: &str) -> bool {
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
            "seg.ts.tmp",
            "video.m3u8.tmp",
            "meta.json",
            "source",
            "seg\0.ts",
            "séance.ts",
            "seg..ts",
            "seg.TS",
            "",
            ".",
            "seg%00.ts",
        ] {
            assert_eq!(playable_file(bad), None, "{bad:?}");
        }
        assert_eq!(playable_file("video.m3u8"), Some(FileKind::Playlist));
        assert_eq!(playable_file("seg_00001.ts"), Some(FileKind::Segment));
        assert_eq!(playable_file("seg_00001.m4s"), Some(FileKind::Fmp4Segment));
        assert_eq!(playable_file("init.mp4"), Some(FileKind::Fmp4Init));
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
    fn ids_are_exactly_nanoids() {
        assert!(is_video_id("V1StGXR8_Z5jdHi6B-myT"));
        for bad in [
            "V1StGXR8_Z5jdHi6B-my",
            "V1StGXR8_Z5jdHi6B-myT1",
            "V1StGXR8/Z5jdHi6B-myT",
            "..StGXR8_Z5jdHi6B-myT",
        ] {
            assert!(!is_video_id(bad), "{bad}");
        }
    }
}
