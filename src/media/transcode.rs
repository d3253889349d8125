//! The packet loop: demux → (copied top rung, video chain, audio) → one
//! `hls` muxer per rung → variant playlists, then the master playlist (as
//! soon as every rung has a segment, again with final numbers at the end)
//! and the I-frame playlists.

use super::audio::AudioChain;
use super::hls;
use super::input::Source;
use super::ladder;
use super::master::Variant;
use super::outputs::{self, AudioParams, RungOutput, VideoParams};
use super::video::{OpenedVideo, VideoChain};
use super::Settings;
use crate::catalog::{OutputInfo, Rendition};
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
/// `progress` gets each rung's seconds of output, as they grow.
/// On error, files already written are the caller's to remove;
/// `Error::CopyFallback` asks the caller to start over with copy off.
pub(crate) fn transcode(
    source: Source,
    out_dir: &Path,
    settings: &Settings,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(&[RungProgress]),
) -> Result<Produced, Error> {
    let disk_full = || super::ffi::free_bytes(out_dir).is_some_and(|b| b < MIN_FREE_BYTES);
    match run(source, out_dir, settings, cancel, progress, &disk_full) {
        Err(Error::Media(_) | Error::Io(_)) if disk_full() => Err(Error::DiskFull),
        other => other,
    }
}

/// One rung's progress, as the job reports it.
#[derive(Debug, Clone)]
pub struct RungProgress {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub copied: bool,
    /// Seconds of media written so far.
    pub seconds: f64,
}

/// What a finished transcode made.
#[derive(Debug, Clone)]
pub struct Produced {
    pub info: OutputInfo,
    /// Every rung, top first.
    pub renditions: Vec<Rendition>,
    /// The top rung is the source's packets, copied.
    pub copied: bool,
    /// Why the source was not copied, when it was not.
    pub copy_note: Option<String>,
}

/// The audio of a job: none, encoded once, or copied.
enum Audio {
    None,
    Encode(AudioChain),
    Copy {
        params: ffmpeg_next::codec::Parameters,
        tb: Rational,
        offset: i64,
    },
}

/// Video packets between two progress reports (and master checks).
const REPORT_EVERY: u64 = 8;

#[allow(clippy::too_many_lines)]
fn run(
    mut source: Source,
    out_dir: &Path,
    settings: &Settings,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(&[RungProgress]),
    disk_full: &dyn Fn() -> bool,
) -> Result<Produced, Error> {
    let id = out_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Internal("video folder has no name".into()))?
        .to_owned();
    let vanished = || Error::Internal("video stream vanished".into());
    let (vtb, origin_us, vparams) = {
        let vst = source
            .ictx
            .stream(source.video_index)
            .ok_or_else(vanished)?;
        let vtb = vst.time_base();
        // The instant that becomes output time 0: where the video starts.
        let origin_us = match vst.start_time() {
            t if t != ffmpeg_next::ffi::AV_NOPTS_VALUE => rescale(t, vtb, MICROS),
            _ => 0,
        };
        (vtb, origin_us, vst.parameters())
    };
    let display = {
        let (_, _, sar, w, h) = super::ffi::video_par_fields(&vparams);
        super::video::output_size(
            w,
            h,
            Rational(sar.0, sar.1),
            source.info.video.rotation,
            settings.max_pixels,
        )
    };
    let copy_check = super::copy::eligible(&source, display, settings);
    let copy = copy_check.is_ok();
    // Everything copied: the decoder only makes the poster.
    let copy_only = copy && settings.ladder == crate::config::Ladder::Source;
    let opened = {
        let vst = source
            .ictx
            .stream(source.video_index)
            .ok_or_else(vanished)?;
        OpenedVideo::open(&vst, source.info.video.rotation, settings, !copy_only)?
    };
    let fps = opened.fps;
    let rungs = ladder::plan(
        &settings.ladder,
        opened.width,
        opened.height,
        f64::from(fps),
        copy,
        settings.max_video_kbps,
    );
    let single = rungs.len() == 1;
    let voffset = rescale(origin_us, MICROS, vtb);
    let mut video = VideoChain::new(
        opened,
        voffset,
        source.info.duration,
        &rungs,
        copy && !single,
        settings,
    )?;
    let mut audio = match source.audio_index.and_then(|i| source.ictx.stream(i)) {
        Some(ast) if copy => Audio::Copy {
            params: ast.parameters(),
            tb: ast.time_base(),
            offset: rescale(origin_us, MICROS, ast.time_base()),
        },
        Some(ast) => {
            let offset = rescale(origin_us, MICROS, ast.time_base());
            Audio::Encode(AudioChain::new(&ast, offset, settings)?)
        }
        None => Audio::None,
    };
    let mut outs = Vec::with_capacity(rungs.len());
    for (i, plan) in rungs.iter().enumerate() {
        let dir = outputs::rung_dir(out_dir, plan, single);
        std::fs::create_dir_all(&dir)?;
        let vp = if plan.copy {
            VideoParams::Copied(vparams.clone())
        } else {
            VideoParams::Encoded(
                video
                    .encoder_for(i)
                    .ok_or_else(|| Error::Internal("rung without encoder".into()))?,
            )
        };
        let ap = match &audio {
            Audio::None => None,
            Audio::Encode(a) => Some((AudioParams::Encoded(a.encoder()), a.time_base())),
            Audio::Copy { params, tb, .. } => Some((AudioParams::Copied(params.clone()), *tb)),
        };
        let keys = if settings.encrypt {
            Some(super::keys::Keys::start(
                out_dir,
                &id,
                (!single).then_some(i),
                settings.key_rotation_segments,
                settings.segment_seconds,
            )?)
        } else {
            None
        };
        outs.push(RungOutput::create(
            plan.clone(),
            dir,
            vp,
            vtb,
            fps,
            ap,
            settings,
            keys,
        )?);
    }
    let has_audio = !matches!(audio, Audio::None);
    let report = |outs: &[RungOutput]| -> Vec<RungProgress> {
        outs.iter()
            .map(|o| RungProgress {
                name: o.plan.name.clone(),
                width: o.plan.width,
                height: o.plan.height,
                copied: o.plan.copy,
                seconds: o.position,
            })
            .collect()
    };
    progress(&report(&outs));

    let mut cadence = copy.then(|| super::copy::Cadence::new(settings.segment_seconds));
    let frame_dur = {
        let per_frame = 1.0 / f64::from(fps).max(1.0);
        ((per_frame / f64::from(vtb)).round() as i64).max(1)
    };
    let max_secs = settings.max_duration_secs as f64;
    let mut master_published = single;
    let (mut packets, mut video_packets): (u64, u64) = (0, 0);
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
        let position = outs
            .iter()
            .map(|o| o.position)
            .fold(f64::INFINITY, f64::min);
        if index == source.video_index {
            video_packets += 1;
            if copy {
                let mut p = packet.clone();
                shift(&mut p, voffset);
                if p.duration() <= 0 {
                    p.set_duration(frame_dur);
                }
                let Some(pts) = p.pts() else {
                    return Err(Error::CopyFallback(
                        "a video packet has no timestamp".into(),
                    ));
                };
                if let Some(c) = cadence.as_mut() {
                    c.packet(pts as f64 * f64::from(vtb), p.is_key())
                        .map_err(Error::CopyFallback)?;
                }
                outs[0].write_video(&mut p, vtb)?;
            }
            video.send_packet(&packet, &mut outs)?;
            if video_packets.is_multiple_of(REPORT_EVERY) {
                progress(&report(&outs));
                if !master_published && outs.iter().all(RungOutput::has_playlist) {
                    // Every rung has its first segment: players may start.
                    let v = variants(&outs, has_audio, fps, &[]);
                    super::master::write(&out_dir.join(hls::PLAYLIST), &v)?;
                    master_published = true;
                }
            }
            if position > max_secs {
                return Err(Error::Unprocessable(format!(
                    "the video runs past the server's limit of {} s",
                    settings.max_duration_secs
                )));
            }
        } else if Some(index) == source.audio_index {
            match &mut audio {
                Audio::None => {}
                Audio::Encode(a) => a.send_packet(&packet, &mut outs, position)?,
                Audio::Copy { tb, offset, .. } => {
                    let mut p = packet.clone();
                    shift(&mut p, *offset);
                    let secs = f64::from(*tb);
                    if let Some(pts) = p.pts() {
                        let (t, d) = (pts as f64 * secs, p.duration() as f64 * secs);
                        // Audio from before the video is dropped, and audio
                        // far ahead of it (a timestamp jump) or past the
                        // duration limit.
                        let limit = (position + super::audio::MAX_AUDIO_LEAD_SECS).min(max_secs);
                        if t + d <= 0.0 || t > limit {
                            continue;
                        }
                    }
                    for o in &mut outs {
                        o.write_audio(&p, *tb)?;
                    }
                }
            }
        }
    }
    video.finish(&mut outs)?;
    if let Audio::Encode(a) = &mut audio {
        a.finish(&mut outs)?;
    }
    if let Some(c) = &cadence {
        c.finish(outs[0].position).map_err(Error::CopyFallback)?;
    }
    if outs.iter().any(|o| o.packets == 0) {
        return Err(Error::Unprocessable(
            "no video frame could be decoded from the file".into(),
        ));
    }
    let fmp4 = hls::is_fmp4(settings);
    let mut iframes = Vec::with_capacity(outs.len());
    let mut top_text = String::new();
    for (i, o) in outs.iter_mut().enumerate() {
        o.finish()?;
        let text = hls::finish_playlist(&o.dir)?;
        // I-frame playlists are listed by the master; fMP4 would need byte
        // ranges into `moof`/`mdat` pairs, which we do not make.
        iframes.push(if single || fmp4 {
            None
        } else {
            Some(write_iframe_playlist(&o.dir, &text, &o.plan.name)?)
        });
        if i == 0 {
            top_text = text;
        }
    }
    let v = variants(&outs, has_audio, fps, &iframes);
    if !single {
        super::master::write(&out_dir.join(hls::PLAYLIST), &v)?;
    }
    let poster = std::mem::replace(&mut video.poster, super::poster::PosterPicker::new(None));
    if let Err(e) = poster.write(out_dir) {
        // A missing poster never fails a playable video.
        tracing::warn!(error = %e, "could not write the poster");
    }
    progress(&report(&outs));
    let (segments, duration) = hls::playlist_totals(&top_text);
    let renditions = outs
        .iter()
        .zip(&v)
        .map(|(o, v)| Rendition {
            playlist: if single {
                hls::PLAYLIST.to_owned()
            } else {
                v.uri.clone()
            },
            name: o.plan.name.clone(),
            width: o.plan.width,
            height: o.plan.height,
            bandwidth: v.peak_bps,
            average_bandwidth: v.average_bps,
            codecs: v.codecs.clone(),
            frame_rate: v.fps,
            copied: o.plan.copy,
            progress: 1.0,
            iframe_playlist: v.iframes.as_ref().map(|i| i.0.clone()),
        })
        .collect();
    Ok(Produced {
        info: OutputInfo {
            width: rungs[0].width,
            height: rungs[0].height,
            video_codec: "h264".into(),
            audio_codec: has_audio.then(|| "aac".to_owned()),
            segments,
            frames: if copy {
                outs[0].packets
            } else {
                video.encoders.first().map_or(0, |e| e.frames)
            },
            duration,
            segment_seconds: settings.segment_seconds,
            processing_seconds: 0.0,
        },
        renditions,
        copied: copy,
        copy_note: copy_check.err(),
    })
}

/// Subtracts `offset` from a packet's timestamps.
fn shift(p: &mut Packet, offset: i64) {
    p.set_pts(p.pts().map(|t| t - offset));
    p.set_dts(p.dts().map(|t| t - offset));
}

/// The master playlist's entries for `outs`, measured from what is on disk.
fn variants(
    outs: &[RungOutput],
    has_audio: bool,
    fps: Rational,
    iframes: &[Option<(String, u64, u64)>],
) -> Vec<Variant> {
    outs.iter()
        .enumerate()
        .map(|(i, o)| {
            let text = std::fs::read_to_string(o.dir.join(hls::PLAYLIST)).unwrap_or_default();
            let (peak, avg) = super::master::measure(&o.dir, &text);
            let video_codec = o.video_codec.clone().unwrap_or_else(|| {
                tracing::warn!(rung = %o.plan.name, "no SPS found; CODECS says High 4.0");
                "avc1.640028".to_owned()
            });
            let codecs = if has_audio {
                format!("{video_codec},mp4a.40.2")
            } else {
                video_codec.clone()
            };
            Variant {
                uri: format!("{}/{}", o.plan.name, hls::PLAYLIST),
                width: o.plan.width,
                height: o.plan.height,
                fps: f64::from(fps),
                codecs,
                video_codec,
                peak_bps: peak,
                average_bps: avg,
                iframes: iframes.get(i).cloned().flatten(),
            }
        })
        .collect()
}

/// Scans a finished TS rung's segments for I-frames and writes its I-frame
/// playlist; returns (URI relative to the master, peak, average bit rate).
fn write_iframe_playlist(
    dir: &Path,
    playlist: &str,
    name: &str,
) -> Result<(String, u64, u64), Error> {
    let mut segments = Vec::new();
    let mut dur = None;
    for line in playlist.lines() {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            dur = rest
                .split(',')
                .next()
                .and_then(|d| d.trim().parse::<f64>().ok());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let uri = line.trim().to_owned();
            let data = std::fs::read(dir.join(&uri))?;
            segments.push(super::iframes::SegmentIFrames {
                iframes: super::iframes::scan_ts(&data),
                uri,
                duration: dur.take().unwrap_or(0.0),
            });
        }
    }
    let (text, peak, avg) = super::iframes::iframe_playlist(&segments);
    crate::catalog::write_atomic(&dir.join(hls::IFRAME_PLAYLIST), text.as_bytes())?;
    Ok((format!("{name}/{}", hls::IFRAME_PLAYLIST), peak, avg))
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
