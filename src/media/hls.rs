//! The libavformat `hls` muxer: its options, and finishing the playlist.

use super::Settings;
use crate::Error;
use ffmpeg_next::Dictionary;
use std::path::Path;

/// What players open (the tutorial's URL).
pub(crate) const PLAYLIST: &str = "video.m3u8";
/// Segment names: `seg_00000.ts`, … (`hls_segment_filename` pattern).
pub(crate) const SEGMENT_PATTERN: &str = "seg_%05d.ts";
/// fMP4 segment names.
pub(crate) const FMP4_SEGMENT_PATTERN: &str = "seg_%05d.m4s";
/// The fMP4 initialization segment (`#EXT-X-MAP`), beside the playlist.
pub(crate) const FMP4_INIT: &str = "init.mp4";
/// Each rung's I-frame playlist, beside its media playlist.
pub(crate) const IFRAME_PLAYLIST: &str = "iframes.m3u8";

/// True when this job writes fMP4 segments (encryption needs TS: FFmpeg's
/// hls muxer cannot encrypt fMP4).
pub(crate) fn is_fmp4(settings: &Settings) -> bool {
    settings.segment_format == crate::config::SegmentFormat::Fmp4 && !settings.encrypt
}

/// Options for `write_header` of the `hls` muxer (FFmpeg 5.1 names).
pub(crate) fn muxer_options(
    out_dir: &Path,
    settings: &Settings,
    key_info: Option<&Path>,
) -> Result<Dictionary<'static>, Error> {
    let fmp4 = is_fmp4(settings);
    let seg = out_dir.join(if fmp4 {
        FMP4_SEGMENT_PATTERN
    } else {
        SEGMENT_PATTERN
    });
    let seg = seg
        .to_str()
        .ok_or_else(|| Error::Internal("storage path is not UTF-8".into()))?;
    let mut opts = Dictionary::new();
    opts.set("hls_time", &settings.segment_seconds.to_string());
    // Keep every segment: this is VOD that grows, not a live window.
    opts.set("hls_list_size", "0");
    // EVENT while processing (RFC 8216 §4.3.3.5); we turn it into VOD at
    // the end, which §6.2.1 allows ("from EVENT to VOD").
    opts.set("hls_playlist_type", "event");
    if fmp4 {
        opts.set("hls_segment_type", "fmp4");
        // Relative to the playlist's folder, and the `#EXT-X-MAP` URI.
        opts.set("hls_fmp4_init_filename", FMP4_INIT);
    } else {
        opts.set("hls_segment_type", "mpegts");
    }
    // temp_file: segments and playlists are written as `*.tmp` and renamed,
    // so a player never reads half a file. independent_segments: every
    // segment starts with an IDR (we force them), so say so.
    let mut flags = String::from("temp_file+independent_segments");
    if let Some(info) = key_info {
        let info = info
            .to_str()
            .ok_or_else(|| Error::Internal("storage path is not UTF-8".into()))?;
        opts.set("hls_key_info_file", info);
        if settings.key_rotation_segments > 0 {
            flags.push_str("+periodic_rekey");
        }
    }
    opts.set("hls_flags", &flags);
    opts.set("hls_segment_filename", seg);
    opts.set("start_number", "0");
    Ok(opts)
}

/// Rewrites the finished playlist from EVENT to VOD, atomically.
pub(crate) fn finish_playlist(out_dir: &Path) -> Result<String, Error> {
    let path = out_dir.join(PLAYLIST);
    let text = std::fs::read_to_string(&path)?;
    let text = text.replace("#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-PLAYLIST-TYPE:VOD");
    if !text.contains("#EXT-X-ENDLIST") {
        return Err(Error::Media(
            "the muxer left the playlist without ENDLIST".into(),
        ));
    }
    crate::catalog::write_atomic(&path, text.as_bytes())?;
    Ok(text)
}

/// Segment count and total duration of a playlist's `#EXTINF` lines.
pub(crate) fn playlist_totals(text: &str) -> (usize, f64) {
    text.lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|l| l.split(',').next()?.trim().parse::<f64>().ok())
        .fold((0, 0.0), |(n, d), x| (n + 1, d + x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_extinf_lines() {
        let t = "#EXTM3U\n#EXTINF:6.000000,\nseg_00000.ts\n#EXTINF:2.5,\nseg_00001.ts\n#EXT-X-ENDLIST\n";
        let (n, d) = playlist_totals(t);
        assert_eq!(n, 2);
        assert!((d - 8.5).abs() < 1e-9);
    }
}
