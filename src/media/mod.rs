//! Everything libav: opening an upload, probing it, decoding, filtering
//! (rotation, square pixels, even sizes, resampling), encoding with libx264
//! and aac, and muxing HLS. Runs only on job threads; never imports hyper.
//! What HLS needs that is not libav (the ladder, publishing, playlists,
//! keys, MPEG-TS parsing) is in `crate::hls`, which never imports media.
//!
//! # Layout
//! - `settings`: [`Settings`], what a job is told, copied out of the config.
//! - `input`: open a spool through custom AVIO with a demuxer allowlist; probe.
//! - `copy`: when the top rung can be the source's own packets; `copycheck`
//!   (+ `paramsets`): what the copied packets must keep as they go.
//! - `cut`: exact clips (a smart cut: encoded at the cut GOPs, copied between).
//! - `video`: one decoder → filter graph with a scaler per rung (`vgraph`)
//!   → one libx264 per encoded rung (`x264`); `audio`: one decoder → AAC,
//!   shared by rungs.
//! - `outputs`: one `hls` muxer per rung; `muxer`: its options; each
//!   rung's public playlist is published by `crate::hls`'s `Publisher`.
//! - `job` (+ `finish`): one transcode as a struct with named steps;
//!   `transcode`: its entry point, with the copy fallback (a new
//!   generation of names); `context`: what a job is given and reports.
//! - `timing`: timestamp arithmetic.
//!
//! The few libav calls with no safe wrapper are in [`crate::ffi`], the
//! crate's one file of `unsafe` code.
//!
//! Writes go through [`crate::storage::Store`]; playlist text through
//! [`crate::playlist`].

mod audio;
mod chunks;
mod colour;
mod context;
mod copy;
mod copycheck;
pub(crate) mod cut;
mod download;
mod encoders;
mod extras;
mod finish;
mod group;
mod groupenc;
mod haldclut;
mod hdrkeep;
mod input;
mod job;
mod keymode;
mod muxer;
mod opened;
mod outputs;
mod packets;
mod paramsets;
mod plan;
mod poster;
mod restart;
mod settings;
mod splitting;
pub(crate) mod still;
mod storyboard;
mod subs;
mod svtlock;
mod timing;
mod tonelut;
mod tracks;
mod transcode;
mod vgraph;
mod video;
mod x264;
mod ycctone;

pub(crate) use crate::ffi::free_bytes;
pub(crate) use context::{JobContext, JobEvents, Produced, RungProgress};
pub(crate) use input::{open_file, open_spool, Source};
pub(crate) use poster::THUMB_WIDTH;
pub use settings::Settings;
pub(crate) use tracks::display_name as track_name;
pub(crate) use transcode::transcode;

/// The error for a failed libav call, saying `what` was being done
/// (`.map_err(media_err("video decoder"))`).
fn media_err(what: &str) -> impl Fn(ffmpeg_next::Error) -> crate::Error + '_ {
    move |e| crate::Error::from_av(e, what)
}

/// Initialises libav once per process and quiets its logging to errors;
/// SVT-AV1 too, which prints its banner and settings to stderr at every
/// encoder it opens (read from `SVT_LOG` when its first encoder opens, so
/// set here, before any job; one the operator set is kept).
pub fn init() -> Result<(), crate::Error> {
    ffmpeg_next::init().map_err(|e| crate::Error::Media(format!("libav init: {e}")))?;
    ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Error);
    if std::env::var_os("SVT_LOG").is_none() {
        std::env::set_var("SVT_LOG", "1");
    }
    Ok(())
}

/// True when both encoders we need are compiled into the system's libavcodec.
pub fn encoders_available() -> bool {
    ffmpeg_next::encoder::find_by_name("libx264").is_some()
        && ffmpeg_next::encoder::find_by_name("aac").is_some()
}

/// `Err` naming the first codec group of `codecs` whose encoder the system
/// FFmpeg lacks (SVT-AV1 for `av1`, libx265 for `hevc`).
pub fn codec_groups_available(codecs: &crate::config::Codecs) -> Result<(), String> {
    for c in codecs.extra() {
        let name = match c {
            crate::config::VideoCodec::Av1 => "libsvtav1",
            crate::config::VideoCodec::Hevc => "libx265",
            crate::config::VideoCodec::H264 => continue,
        };
        if ffmpeg_next::encoder::find_by_name(name).is_none() {
            return Err(format!(
                "--codecs {}: the system FFmpeg has no {name} encoder",
                c.name()
            ));
        }
    }
    Ok(())
}

/// Ignores every event (benchmarks).
struct NoEvents;

impl JobEvents for NoEvents {
    fn progress(&mut self, _: &[RungProgress]) {}
}

#[doc(hidden)]
/// Transcodes a file on disk into a new video folder under `root`
/// (benchmarks and the comparison script use this; the server always goes
/// through the spool).
pub fn transcode_path(
    input: &std::path::Path,
    root: &std::path::Path,
    settings: &Settings,
) -> Result<crate::catalog::OutputInfo, crate::Error> {
    let store = crate::storage::Store::open(root)?;
    let id = crate::storage::VideoId::random();
    store.create(id)?;
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let ctx = JobContext {
        store: &store,
        id,
        settings,
        generation: 0,
        cancel: &cancel,
    };
    let source = open_file(input, settings)?;
    let mut reopen = |s: &Settings| open_file(input, s);
    transcode(source, &mut reopen, &ctx, &mut NoEvents).map(|p| p.info)
}

/// For the fuzz target `video_packets` (in `fuzzing`): the parsers of
/// copied H.264/HEVC packets (parameter sets, `avcC`, Annex B) over
/// untrusted `extra` (extradata) and `packet`.
pub(crate) fn fuzz_video_packets(extra: &[u8], packet: &[u8]) {
    for id in [ffmpeg_next::codec::Id::H264, ffmpeg_next::codec::Id::HEVC] {
        let mut sets = paramsets::ParamSets::new(id, extra);
        let _ = (sets.check(packet), sets.check(extra));
    }
    cut::fuzz_annex_b(extra, packet);
}
