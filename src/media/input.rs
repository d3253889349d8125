//! Opening an upload: custom AVIO over the spool, a demuxer allowlist (so an
//! upload can never make libav open another file or URL), and the probe that
//! decides 415/422 before any heavy work.

use crate::catalog::{AudioInfo, SourceInfo, VideoInfo};
use crate::spool::{SpoolControl, SpoolReader};
use crate::Error;
use ffmpeg_next::codec::packet::side_data::Type as SideDataType;
use ffmpeg_next::format::context::{Input, StreamIo};
use ffmpeg_next::{format, media, Dictionary};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Demuxers an upload may be read with (libavformat names, matched with
/// `av_match_list` against `format_whitelist`). Left out on purpose: every
/// format that references other resources (`hls`, `dash`, `concat`, `sdp`,
/// `rtsp`, `ffmetadata`, `tee`…), still-image and pipe demuxers (an image is
/// not a video), and audio-only formats.
pub(crate) const ALLOWED_DEMUXERS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,\
flv,mpeg,asf,ogg,nut,mxf,dv,ivf,h264,hevc,m4v,mpegvideo,rm,wtv,yuv4mpegpipe,obu";

/// AVIO buffer size: 64 KiB reads keep syscalls few without delaying the
/// first packets of a slow upload (a read returns what is there).
const AVIO_BUFFER: usize = 64 * 1024;

/// An opened, probed upload, ready for the transcoder.
pub(crate) struct Source {
    pub ictx: Input,
    pub info: SourceInfo,
    pub video_index: usize,
    pub audio_index: Option<usize>,
    /// Every decodable audio stream (the first is `audio_index`'s), when
    /// the source has several.
    pub audio_streams: Vec<super::subs::SourceTrack>,
    /// Text subtitle streams, to become caption tracks.
    pub subtitles: Vec<super::subs::SourceTrack>,
    /// What is left out of the source, for the record.
    pub notes: Vec<String>,
    /// Spool state, to tell an aborted upload from a corrupt file.
    pub spool: Option<SpoolControl>,
}

/// libavformat options for every upload.
fn input_options() -> Dictionary<'static> {
    let mut opts = Dictionary::new();
    // libavformat's own `max_streams` (default 1000) bounds what a file can
    // make it allocate; `--max-streams` is checked by the probe, so the
    // client gets a 422 that names the count rather than an ENOMEM.
    opts.set("format_whitelist", ALLOWED_DEMUXERS);
    // No protocol at all may be opened on the upload's behalf (a nested
    // `file:` or `http:` reference fails instead of being followed).
    opts.set("protocol_whitelist", "none");
    // Otherwise the TS probe seeks to the end for the last timestamp and
    // waits there for the whole upload (LIBAV-NOTES.md).
    opts.set("skip_estimate_duration_from_pts", "1");
    opts
}

/// Opens a growing upload. Blocks while the header bytes are still arriving;
/// `cancel` aborts a stalled open.
pub(crate) fn open_spool(
    reader: SpoolReader,
    cancel: Arc<AtomicBool>,
    settings: &super::Settings,
) -> Result<Source, Error> {
    let spool = reader.control();
    let io = StreamIo::from_read_seek_with_capacity(reader, AVIO_BUFFER)
        .map_err(|e| Error::Media(format!("custom AVIO: {e}")))?;
    let opened = format::input_from_stream_with_interrupt(io, None, Some(input_options()), {
        move || cancel.load(Ordering::Relaxed)
    });
    let ictx = match opened {
        Ok(ictx) => ictx,
        Err(e) => return Err(open_error(e, Some(&spool))),
    };
    probe(ictx, Some(spool), settings)
}

/// Opens a complete file on disk (benches, offline use).
pub(crate) fn open_file(
    path: &std::path::Path,
    settings: &super::Settings,
) -> Result<Source, Error> {
    let reader = crate::spool::open_finished(path)?;
    open_spool(reader, Arc::new(AtomicBool::new(false)), settings)
}

/// Classifies a failure to open: from the spool's own state first (an abort
/// shows up as EIO or as "moov atom not found"), then as unreadable input.
fn open_error(e: ffmpeg_next::Error, spool: Option<&SpoolControl>) -> Error {
    if let Some(s) = spool {
        if s.is_aborted() {
            return Error::Aborted;
        }
        if s.is_finished() && s.written() == 0 {
            return Error::Unprocessable("the uploaded file is empty (0 bytes)".into());
        }
    }
    if matches!(e, ffmpeg_next::Error::Exit) {
        return Error::Cancelled;
    }
    Error::UnsupportedMedia(format!(
        "no supported video container recognised ({e}); send MP4, MOV, MKV, WebM, AVI, MPEG-TS or FLV"
    ))
}

/// A stream's display rotation (its display matrix's; 0 without one).
pub(crate) fn rotation_of(st: &ffmpeg_next::format::stream::Stream) -> u32 {
    st.side_data()
        .find(|sd| sd.kind() == SideDataType::DisplayMatrix)
        .map_or(0, |sd| rotation_from_matrix(sd.data()))
}

/// Display rotation, clockwise degrees in {0, 90, 180, 270}, from a display
/// matrix (the computation of `av_display_rotation_get` and the CLI's
/// `get_rotation`: 16.16 fixed point, rotation is minus the matrix angle).
pub(crate) fn rotation_from_matrix(bytes: &[u8]) -> u32 {
    if bytes.len() < 36 {
        return 0;
    }
    let m = |i: usize| {
        let b = [
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ];
        f64::from(i32::from_ne_bytes(b)) / 65536.0
    };
    let (s0, s1) = (m(0).hypot(m(3)), m(1).hypot(m(4)));
    if s0 == 0.0 || s1 == 0.0 {
        return 0;
    }
    // av_display_rotation_get returns -atan2(m1, m0); the CLI's get_rotation
    // negates it again, so theta = atan2(m1, m0), and it turns 90 into
    // `transpose=clock`, 180 into `hflip,vflip`, 270 into `transpose=cclock`.
    let theta = (m(1) / s1)
        .atan2(m(0) / s0)
        .to_degrees()
        .round()
        .rem_euclid(360.0);
    match theta as u32 {
        45..=134 => 90,
        135..=224 => 180,
        225..=314 => 270,
        _ => 0,
    }
}

/// A short name for a channel layout (libav's names for the common ones).
fn layout_name(layout: ffmpeg_next::ChannelLayout, channels: u16) -> String {
    use ffmpeg_next::ChannelLayout as L;
    let known = [
        (L::MONO, "mono"),
        (L::STEREO, "stereo"),
        (L::_2POINT1, "2.1"),
        (L::QUAD, "quad"),
        (L::_5POINT0, "5.0(side)"),
        (L::_5POINT0_BACK, "5.0"),
        (L::_5POINT1, "5.1(side)"),
        (L::_5POINT1_BACK, "5.1"),
        (L::_7POINT1, "7.1"),
    ];
    known
        .iter()
        .find(|(l, _)| *l == layout)
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| format!("{channels} channels"))
}

fn probe(
    ictx: Input,
    spool: Option<SpoolControl>,
    settings: &super::Settings,
) -> Result<Source, Error> {
    let container = ictx.format().name().to_owned();
    let streams = ictx.nb_streams() as usize;
    if streams > settings.max_streams {
        return Err(Error::Unprocessable(format!(
            "the file has {streams} streams, more than the server's limit of {}",
            settings.max_streams
        )));
    }
    let (video_index, video, duration) = probe_video(&ictx, &container, settings)?;
    let audio = probe_audio(&ictx);
    let (audio_index, audio) = match audio {
        Some((i, a)) => (Some(i), Some(a)),
        None => (None, None),
    };
    // Codec groups share one audio group, even of one track (the video
    // rungs then carry none); an encrypted video keeps its audio muxed.
    let shared = settings.codecs.extra().next().is_some() && !settings.encrypt;
    let min_audio = if shared { 1 } else { 2 };
    let (subtitles, audio_streams, notes) =
        super::tracks::other_streams(&ictx, audio_index, min_audio);
    Ok(Source {
        audio_streams,
        subtitles,
        notes,
        info: SourceInfo {
            container,
            duration,
            video,
            audio,
        },
        ictx,
        video_index,
        audio_index,
        spool,
    })
}

/// The best video stream: decodable, within the pixel and duration caps.
fn probe_video(
    ictx: &Input,
    container: &str,
    settings: &super::Settings,
) -> Result<(usize, VideoInfo, Option<f64>), Error> {
    let Some(vst) = ictx.streams().best(media::Type::Video) else {
        return Err(Error::Unprocessable(format!(
            "the {container} file has no video stream"
        )));
    };
    let video_index = vst.index();
    let params = vst.parameters();
    let codec_id = params.id();
    if ffmpeg_next::decoder::find(codec_id).is_none() {
        return Err(Error::Unprocessable(format!(
            "no decoder for the video codec {codec_id:?}"
        )));
    }
    let vctx = ffmpeg_next::codec::context::Context::from_parameters(params)
        .map_err(|e| Error::Media(format!("video parameters: {e}")))?;
    let vdec = vctx
        .decoder()
        .video()
        .map_err(|e| Error::Unprocessable(format!("video stream cannot be decoded: {e}")))?;
    let (width, height) = (vdec.width(), vdec.height());
    if width == 0 || height == 0 || vdec.format() == ffmpeg_next::format::Pixel::None {
        return Err(Error::Unprocessable(
            "the video stream could not be decoded (no frame size or pixel format found)".into(),
        ));
    }
    if u64::from(width) * u64::from(height) > settings.max_pixels {
        return Err(Error::Unprocessable(format!(
            "the video is {width}×{height}, more than the server's limit of {} pixels per frame",
            settings.max_pixels
        )));
    }
    let duration = (ictx.duration() > 0).then(|| ictx.duration() as f64 / 1e6);
    if let Some(d) = duration {
        if d > settings.max_duration_secs as f64 {
            return Err(Error::Unprocessable(format!(
                "the video lasts {d:.0} s, more than the server's limit of {} s",
                settings.max_duration_secs
            )));
        }
    }
    let fps = [vst.avg_frame_rate(), vst.rate()]
        .into_iter()
        .find(|r| r.numerator() > 0 && r.denominator() > 0)
        .map(f64::from);
    let rotation = rotation_of(&vst);
    let video = VideoInfo {
        codec: codec_id.name().to_owned(),
        width,
        height,
        fps,
        rotation,
        pixel_format: format!("{:?}", vdec.format()).to_lowercase(),
        colour: Some(super::colour::Colour::of_stream(&vst, &vdec).info()),
    };
    Ok((video_index, video, duration))
}

/// The best audio stream that decodes.
fn probe_audio(ictx: &Input) -> Option<(usize, AudioInfo)> {
    ictx.streams().best(media::Type::Audio).and_then(|ast| {
        let p = ast.parameters();
        let id = p.id();
        ffmpeg_next::decoder::find(id)?;
        let dec = ffmpeg_next::codec::context::Context::from_parameters(p)
            .ok()?
            .decoder()
            .audio()
            .ok()?;
        (dec.rate() > 0 && dec.channels() > 0).then(|| {
            (
                ast.index(),
                AudioInfo {
                    codec: id.name().to_owned(),
                    channels: dec.channels(),
                    sample_rate: dec.rate(),
                    layout: layout_name(dec.channel_layout(), dec.channels()),
                },
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(a: f64) -> Vec<u8> {
        // av_display_rotation_set(matrix, a): counter-clockwise angle `a`.
        let r = (-a).to_radians();
        let fp = |v: f64| ((v * 65536.0).round() as i32).to_ne_bytes();
        let vals = [
            fp(r.cos()),
            fp(-r.sin()),
            [0; 4],
            fp(r.sin()),
            fp(r.cos()),
            [0; 4],
            [0; 4],
            [0; 4],
            (1i32 << 30).to_ne_bytes(),
        ];
        vals.concat()
    }

    #[test]
    fn rotation_matches_the_cli_convention() {
        // Whether the picture comes out upright is checked end to end
        // against the CLI's autorotation in tests/transcode.rs.
        assert_eq!(rotation_from_matrix(&matrix(0.0)), 0);
        assert_eq!(rotation_from_matrix(&matrix(90.0)), 90);
        assert_eq!(rotation_from_matrix(&matrix(180.0)), 180);
        assert_eq!(rotation_from_matrix(&matrix(-90.0)), 270);
        assert_eq!(rotation_from_matrix(&[0; 8]), 0);
    }
}
