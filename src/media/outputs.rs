//! One libavformat `hls` muxer per rung: its streams (encoded or copied
//! video, the shared audio), its key rotation, and the writes into it.

use super::keys::Keys;
use super::ladder::RungPlan;
use super::Settings;
use crate::Error;
use ffmpeg_next::format::context::Output;
use ffmpeg_next::{codec, Packet, Rational};
use std::path::{Path, PathBuf};

/// Where a rung's video stream comes from.
pub(crate) enum VideoParams<'a> {
    /// An opened libx264 encoder.
    Encoded(&'a ffmpeg_next::encoder::Video),
    /// The source stream's parameters, copied.
    Copied(codec::Parameters),
}

/// Where the audio stream comes from (the same for every rung).
pub(crate) enum AudioParams<'a> {
    Encoded(&'a ffmpeg_next::encoder::Audio),
    Copied(codec::Parameters),
}

/// One rung's muxer and what is needed to write into it.
pub(crate) struct RungOutput {
    pub plan: RungPlan,
    /// Folder of its playlist and segments.
    pub dir: PathBuf,
    octx: Output,
    video_ost: usize,
    audio_ost: Option<usize>,
    /// The muxer's stream time bases (known after `write_header`).
    video_tb: Rational,
    audio_tb: Rational,
    keys: Option<Keys>,
    /// `CODECS` of its video stream (`avc1.64001f`), when known.
    pub video_codec: Option<String>,
    /// Seconds of video written (presentation end of the last packet).
    pub position: f64,
    /// Video packets written.
    pub packets: u64,
}

impl RungOutput {
    /// Creates the muxer writing `dir/video.m3u8` and its segments, adds the
    /// streams, and writes the header. `keys`: with encryption, this rung's
    /// key series and the key-info file the muxer reads.
    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    pub(crate) fn create(
        plan: RungPlan,
        dir: PathBuf,
        video: VideoParams<'_>,
        video_tb: Rational,
        fps: Rational,
        audio: Option<(AudioParams<'_>, Rational)>,
        settings: &Settings,
        keys: Option<(Keys, PathBuf)>,
    ) -> Result<Self, Error> {
        let mut octx = super::ffi::alloc_hls_output(&dir.join(super::hls::PLAYLIST))?;
        let video_codec;
        {
            let mut ost = octx
                .add_stream(ffmpeg_next::encoder::find(codec::Id::H264))
                .map_err(|e| Error::from_av(e, "add video stream"))?;
            match video {
                VideoParams::Encoded(enc) => {
                    ost.set_parameters(enc);
                    video_codec = super::master::avc1_codec(super::ffi::extradata(enc.as_ref()));
                }
                VideoParams::Copied(par) => {
                    video_codec = super::master::avc1_codec(super::ffi::par_extradata(&par));
                    ost.set_parameters(par);
                    super::ffi::clear_codec_tag(&mut ost);
                }
            }
            ost.set_time_base(video_tb);
            ost.set_avg_frame_rate(fps);
        }
        let audio_ost = match &audio {
            Some((a, tb)) => {
                let index = octx.nb_streams() as usize;
                let mut ost = octx
                    .add_stream(ffmpeg_next::encoder::find(codec::Id::AAC))
                    .map_err(|e| Error::from_av(e, "add audio stream"))?;
                match a {
                    AudioParams::Encoded(enc) => ost.set_parameters(*enc),
                    AudioParams::Copied(par) => {
                        ost.set_parameters(par.clone());
                        super::ffi::clear_codec_tag(&mut ost);
                    }
                }
                ost.set_time_base(*tb);
                Some(index)
            }
            None => None,
        };
        let (keys, key_info) = match keys {
            Some((k, info)) => (Some(k), Some(info)),
            None => (None, None),
        };
        let opts = super::hls::muxer_options(&dir, settings, key_info.as_deref())?;
        octx.write_header_with(opts)
            .map_err(|e| Error::from_av(e, "starting the hls muxer"))?;
        let tb = |i: usize| octx.stream(i).map(|s| s.time_base());
        let video_tb = tb(0).unwrap_or(video_tb);
        let audio_tb = audio_ost
            .and_then(tb)
            .or(audio.map(|a| a.1))
            .unwrap_or(Rational(1, 90_000));
        Ok(RungOutput {
            plan,
            dir,
            octx,
            video_ost: 0,
            audio_ost,
            video_tb,
            audio_tb,
            keys,
            video_codec,
            position: 0.0,
            packets: 0,
        })
    }

    /// Writes a video packet whose timestamps are in `tb`.
    pub(crate) fn write_video(&mut self, packet: &mut Packet, tb: Rational) -> Result<(), Error> {
        packet.set_stream(self.video_ost);
        if packet.is_key() {
            if let (Some(keys), Some(pts)) = (self.keys.as_mut(), packet.pts()) {
                keys.before_keyframe(pts as f64 * f64::from(tb))?;
            }
        }
        if let Some(pts) = packet.pts() {
            let end = (pts + packet.duration().max(0)) as f64 * f64::from(tb);
            if end > self.position {
                self.position = end;
            }
        }
        self.packets += 1;
        packet.rescale_ts(tb, self.video_tb);
        packet
            .write_interleaved(&mut self.octx)
            .map_err(|e| Error::from_av(e, "writing a video packet"))
    }

    /// Writes (a copy of) an audio packet whose timestamps are in `tb`.
    pub(crate) fn write_audio(&mut self, packet: &Packet, tb: Rational) -> Result<(), Error> {
        let Some(index) = self.audio_ost else {
            return Ok(());
        };
        let mut p = packet.clone();
        p.set_stream(index);
        p.rescale_ts(tb, self.audio_tb);
        p.write_interleaved(&mut self.octx)
            .map_err(|e| Error::from_av(e, "writing an audio packet"))
    }

    /// Writes the trailer (the last segment, `#EXT-X-ENDLIST`).
    pub(crate) fn finish(&mut self) -> Result<(), Error> {
        self.octx
            .write_trailer()
            .map_err(|e| Error::from_av(e, "finishing the hls muxer"))
    }

    /// True once the muxer has published its playlist (first segment done).
    pub(crate) fn has_playlist(&self) -> bool {
        self.dir.join(super::hls::PLAYLIST).is_file()
    }
}

/// The folder of rung `plan` under `out_dir` (`out_dir` itself for a
/// single rendition).
pub(crate) fn rung_dir(out_dir: &Path, plan: &RungPlan, single: bool) -> PathBuf {
    if single {
        out_dir.to_path_buf()
    } else {
        out_dir.join(&plan.name)
    }
}
