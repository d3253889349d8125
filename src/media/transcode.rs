//! The packet loop: demux → (video chain, audio chain) → hls muxer.

use super::audio::AudioChain;
use super::hls;
use super::input::Source;
use super::video::VideoChain;
use super::Settings;
use crate::catalog::OutputInfo;
use crate::Error;
use ffmpeg_next::{Packet, Rational};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Below this much free disk the job stops with `DiskFull`: the hls muxer
/// does not report a failed segment write at once (LIBAV-NOTES has the
/// muxer's pitfalls), so free space is watched instead.
const MIN_FREE_BYTES: u64 = 1 << 20;
/// Packets between two free-space checks.
const FREE_CHECK_EVERY: u64 = 64;

/// Transcodes `source` into HLS under `out_dir` (which must exist).
/// `progress` gets seconds of output produced, as they grow.
/// On error, files already written are the caller's to remove.
pub(crate) fn transcode(
    source: Source,
    out_dir: &Path,
    settings: &Settings,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(f64),
) -> Result<OutputInfo, Error> {
    let disk_full = || super::ffi::free_bytes(out_dir).is_some_and(|b| b < MIN_FREE_BYTES);
    match run(source, out_dir, settings, cancel, progress, &disk_full) {
        Err(Error::Media(_) | Error::Io(_)) if disk_full() => Err(Error::DiskFull),
        other => other,
    }
}

fn run(
    mut source: Source,
    out_dir: &Path,
    settings: &Settings,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(f64),
    disk_full: &dyn Fn() -> bool,
) -> Result<OutputInfo, Error> {
    let mut octx = super::ffi::alloc_hls_output(&out_dir.join(hls::PLAYLIST))?;
    // The instant that becomes output time 0: where the video starts.
    let origin_us = {
        let vst = source
            .ictx
            .stream(source.video_index)
            .ok_or_else(|| Error::Internal("video stream vanished".into()))?;
        match vst.start_time() {
            t if t != ffmpeg_next::ffi::AV_NOPTS_VALUE => rescale(t, vst.time_base(), MICROS),
            _ => 0,
        }
    };
    let mut video = {
        let vst = source
            .ictx
            .stream(source.video_index)
            .ok_or_else(|| Error::Internal("video stream vanished".into()))?;
        let offset = rescale(origin_us, MICROS, vst.time_base());
        VideoChain::new(
            &vst,
            source.info.video.rotation,
            offset,
            source.info.duration,
            &mut octx,
            settings,
        )?
    };
    let mut audio = match source.audio_index.and_then(|i| source.ictx.stream(i)) {
        Some(ast) => {
            let offset = rescale(origin_us, MICROS, ast.time_base());
            Some(AudioChain::new(&ast, offset, &mut octx, settings)?)
        }
        None => None,
    };
    let key_info = if settings.encrypt {
        let id = out_dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Internal("video folder has no name".into()))?;
        let (keys, info) = super::keys::Keys::start(
            out_dir,
            id,
            settings.key_rotation_segments,
            settings.segment_seconds,
        )?;
        video.keys = Some(keys);
        Some(info)
    } else {
        None
    };
    let opts = hls::muxer_options(out_dir, settings, key_info.as_deref())?;
    octx.write_header_with(opts)
        .map_err(|e| Error::from_av(e, "starting the hls muxer"))?;
    video.set_output_time_base(&octx);
    if let Some(a) = audio.as_mut() {
        a.set_output_time_base(&octx);
    }

    let max_secs = settings.max_duration_secs as f64;
    let mut packets: u64 = 0;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        packets += 1;
        if packets.is_multiple_of(FREE_CHECK_EVERY) && disk_full() {
            return Err(Error::DiskFull);
        }
        // A fresh packet per read: `av_read_frame` overwrites its argument
        // without unreferencing the previous buffer, so reusing one packet
        // leaks every packet read (measured: RSS grew with the input size).
        let mut packet = Packet::empty();
        match packet.read(&mut source.ictx) {
            Ok(()) => {}
            Err(ffmpeg_next::Error::Eof) => break,
            Err(e) => {
                // `packets()` would end silently here; tell an aborted upload
                // and a cancel from a truncated/corrupt file.
                if let Some(s) = &source.spool {
                    if s.is_aborted() {
                        return Err(Error::Aborted);
                    }
                }
                if cancel.load(Ordering::Relaxed) || matches!(e, ffmpeg_next::Error::Exit) {
                    return Err(Error::Cancelled);
                }
                tracing::warn!(error = %e, "input ends with a read error; keeping what decoded");
                break;
            }
        }
        let index = packet.stream();
        if index == source.video_index {
            video.send_packet(&packet, &mut octx)?;
            progress(video.position);
            if video.position > max_secs {
                return Err(Error::Unprocessable(format!(
                    "the video runs past the server's limit of {} s",
                    settings.max_duration_secs
                )));
            }
        } else if Some(index) == source.audio_index {
            if let Some(a) = audio.as_mut() {
                a.send_packet(&packet, &mut octx, video.position)?;
            }
        }
    }
    video.finish(&mut octx)?;
    if let Some(a) = audio.as_mut() {
        a.finish(&mut octx)?;
    }
    if video.frames == 0 {
        return Err(Error::Unprocessable(
            "no video frame could be decoded from the file".into(),
        ));
    }
    octx.write_trailer()
        .map_err(|e| Error::from_av(e, "finishing the hls muxer"))?;
    drop(octx);
    let text = hls::finish_playlist(out_dir)?;
    let poster = std::mem::replace(&mut video.poster, super::poster::PosterPicker::new(None));
    if let Err(e) = poster.write(out_dir) {
        // A missing poster never fails a playable video.
        tracing::warn!(error = %e, "could not write the poster");
    }
    let (segments, duration) = hls::playlist_totals(&text);
    progress(video.position);
    Ok(OutputInfo {
        width: video.width,
        height: video.height,
        video_codec: "h264".into(),
        audio_codec: audio.map(|_| "aac".to_owned()),
        segments,
        frames: video.frames,
        duration,
        segment_seconds: settings.segment_seconds,
    })
}

const MICROS: Rational = Rational(1, 1_000_000);

fn rescale(v: i64, from: Rational, to: Rational) -> i64 {
    // v * from / to, in i128 so large timestamps cannot overflow.
    let num = i128::from(v) * i128::from(from.numerator()) * i128::from(to.denominator());
    let den = i128::from(from.denominator()) * i128::from(to.numerator());
    if den == 0 {
        return 0;
    }
    i64::try_from(num / den).unwrap_or(0)
}
