//! Which video codec a rendition is in, from what the record keeps.

pub(super) fn h264() -> String {
    "h264".to_owned()
}

/// The video codec of a rung by its folder's name (`av1-720p`).
pub fn codec_of_rung(name: &str) -> &'static str {
    match name.split_once('-') {
        Some(("av1", _)) => "av1",
        Some(("hevc", _)) => "hevc",
        _ => "h264",
    }
}

/// The video codec an RFC 6381 `CODECS` value names first: `av1` for
/// `av01.…`, `hevc` for `hvc1.…`/`hev1.…`, else `h264`.
pub fn codec_of(codecs: &str) -> &'static str {
    match codecs.get(..4) {
        Some("av01") => "av1",
        Some("hvc1" | "hev1") => "hevc",
        _ => "h264",
    }
}
