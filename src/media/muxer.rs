//! The libavformat `hls` muxer's options. The muxer writes the segments
//! and its own playlist ([`names::MUXER_PLAYLIST`], scratch); the playlist
//! players read is published by [`crate::hls::publish`].

use super::Settings;
use crate::storage::names;
use crate::Error;
use ffmpeg_next::Dictionary;
use std::path::Path;

/// True when this job writes fMP4 segments (encryption needs TS: FFmpeg's
/// hls muxer cannot encrypt fMP4).
pub(crate) fn is_fmp4(settings: &Settings) -> bool {
    settings.segment_format == crate::config::SegmentFormat::Fmp4 && !settings.encrypt
}

fn utf8(p: &Path) -> Result<&str, Error> {
    p.to_str()
        .ok_or_else(|| Error::Internal("storage path is not UTF-8".into()))
}

/// Options for `write_header` of the `hls` muxer (FFmpeg 5.1 names) writing
/// generation `generation` into `dir`, in fMP4 segments when `fmp4`, of
/// video at `fps` (a low-latency live's parts follow it).
pub(crate) fn muxer_options(
    dir: &Path,
    settings: &Settings,
    (generation, fmp4, fps): (u32, bool, f64),
    key_info: Option<&Path>,
) -> Result<Dictionary<'static>, Error> {
    let mut opts = Dictionary::new();
    let seg = if settings.live_low {
        // Parts: cut by time, between any two frames; the publisher groups
        // them into segments and keeps its own list, so the muxer's is short.
        let part = crate::hls::lowlat::part_seconds(fps);
        opts.set("hls_time", &part.to_string());
        opts.set("hls_list_size", "16");
        dir.join(names::part_pattern(generation, fmp4))
    } else {
        opts.set("hls_time", &settings.segment_seconds.to_string());
        // Keep every segment: this is VOD that grows, not a live window.
        opts.set("hls_list_size", "0");
        opts.set("hls_playlist_type", "event");
        dir.join(names::segment_pattern(generation, fmp4))
    };
    if fmp4 {
        opts.set("hls_segment_type", "fmp4");
        // Relative to the playlist's folder, and the `#EXT-X-MAP` URI.
        opts.set("hls_fmp4_init_filename", &names::init_name(generation));
    } else {
        opts.set("hls_segment_type", "mpegts");
    }
    // temp_file: segments and the muxer's playlist are written as `*.tmp`
    // and renamed, so a finished name always holds a whole file.
    // independent_segments: every segment starts with an IDR (we force them).
    let mut flags = String::from(if settings.live_low {
        "temp_file+split_by_time"
    } else {
        "temp_file+independent_segments"
    });
    if let Some(info) = key_info {
        opts.set("hls_key_info_file", utf8(info)?);
        if settings.key_rotation_segments > 0 {
            flags.push_str("+periodic_rekey");
        }
    }
    opts.set("hls_flags", &flags);
    opts.set("hls_segment_filename", utf8(&seg)?);
    opts.set("start_number", "0");
    Ok(opts)
}
