//! One libavformat `hls` muxer per rung: its streams (encoded or copied
//! video, the shared audio), its key rotation, its publisher, and the
//! writes into it.

use super::Settings;
use crate::config::VideoCodec;
use crate::hls::keys::Keys;
use crate::hls::ladder::RungPlan;
use crate::hls::master::RungSummary;
use crate::hls::publish::Publisher;
use crate::Error;
use ffmpeg_next::format::context::Output;
use ffmpeg_next::{codec, Packet, Rational};
use std::path::PathBuf;

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

/// What a rung's muxer is made from.
pub(crate) struct RungSpec<'a> {
    pub plan: RungPlan,
    /// Folder of its segments (scratch for the muxer; the public folder
    /// with the file store).
    pub dir: PathBuf,
    /// `None` for an audio rendition (a track of an audio group).
    pub video: Option<VideoParams<'a>>,
    /// Time base of the video packets given to [`RungOutput::write_video`].
    pub video_tb: Rational,
    pub fps: Rational,
    pub audio: Option<(AudioParams<'a>, Rational)>,
    pub generation: u32,
    /// fMP4 segments (else MPEG-TS).
    pub fmp4: bool,
    /// With encryption: this rung's key series and its key-info file.
    pub keys: Option<(Keys, PathBuf)>,
}

/// One rung's muxer and what is needed to write into it.
pub(crate) struct RungOutput {
    pub plan: RungPlan,
    /// `PQ`/`HLG` when it keeps the source's HDR (`--hdr keep`).
    pub hdr_range: Option<&'static str>,
    octx: Output,
    video_ost: Option<usize>,
    audio_ost: Option<usize>,
    /// The muxer's stream time bases (known after `write_header`).
    video_tb: Rational,
    audio_tb: Rational,
    keys: Option<Keys>,
    /// Publishes what the muxer closes.
    pub publisher: Publisher,
    /// `CODECS` of its video stream (`avc1.64001f`), when known.
    pub video_codec: Option<String>,
    /// Its init segment (fMP4), where an AV1 or HEVC rung's `CODECS` is
    /// read from (`av1C`, `hvcC`), once.
    init: Option<PathBuf>,
    init_codecs: std::cell::OnceCell<String>,
    /// Seconds of video written (presentation end of the last packet).
    pub position: f64,
    /// Video packets written.
    pub packets: u64,
    /// Audio packets (in the muxer's audio time base) waiting for the video
    /// to reach them: audio never runs past the video's end.
    held_audio: std::collections::VecDeque<Packet>,
    /// Most audio packets held (see [`MAX_HELD_AUDIO`]).
    max_held_audio: usize,
}

/// Where a video chain's encoded packets go: the rungs' muxers, or a
/// chunk's queue to the job's thread (`media::chunks`).
pub(crate) trait VideoSink {
    /// Writes a packet of rung `out` whose timestamps are in `tb`.
    fn write_video(&mut self, out: usize, packet: &mut Packet, tb: Rational) -> Result<(), Error>;
}

impl VideoSink for Vec<RungOutput> {
    fn write_video(&mut self, out: usize, packet: &mut Packet, tb: Rational) -> Result<(), Error> {
        self.get_mut(out)
            .ok_or_else(|| Error::Internal("rung output vanished".into()))?
            .write_video(packet, tb)
    }
}

/// Most audio packets held back (about a minute of AAC); past this the
/// oldest are written anyway, so memory stays bounded.
const MAX_HELD_AUDIO: usize = 3000;

impl RungOutput {
    /// Creates the muxer (its playlist is the publisher's scratch), adds
    /// the streams, and writes the header.
    pub(crate) fn create(
        spec: RungSpec<'_>,
        publisher: Publisher,
        settings: &Settings,
    ) -> Result<Self, Error> {
        let mut octx = crate::ffi::alloc_hls_output(publisher.muxer_playlist())?;
        let video_ost = spec.video.is_some().then_some(0);
        let video_codec = match spec.video {
            Some(v) => add_video(&mut octx, v, spec.plan.codec, (spec.video_tb, spec.fps))?,
            None => None,
        };
        let audio_ost = match &spec.audio {
            Some((a, tb)) => Some(add_audio(&mut octx, a, *tb)?),
            None => None,
        };
        let (keys, key_info) = match spec.keys {
            Some((k, info)) => (Some(k), Some(info)),
            None => (None, None),
        };
        let init = spec.fmp4.then(|| {
            spec.dir
                .join(crate::storage::names::init_name(spec.generation))
        });
        let opts = super::muxer::muxer_options(
            &spec.dir,
            settings,
            (spec.generation, spec.fmp4, f64::from(spec.fps)),
            key_info.as_deref(),
        )?;
        octx.write_header_with(opts)
            .map_err(|e| Error::from_av(e, "starting the hls muxer"))?;
        let tb = |i: usize| octx.stream(i).map(|s| s.time_base());
        let video_tb = video_ost.and_then(tb).unwrap_or(spec.video_tb);
        let audio_tb = audio_ost
            .and_then(tb)
            .or(spec.audio.map(|a| a.1))
            .unwrap_or(Rational(1, 90_000));
        Ok(RungOutput {
            plan: spec.plan,
            hdr_range: None,
            octx,
            video_ost,
            audio_ost,
            video_tb,
            audio_tb,
            keys,
            publisher,
            video_codec,
            init,
            init_codecs: std::cell::OnceCell::new(),
            position: 0.0,
            packets: 0,
            held_audio: std::collections::VecDeque::new(),
            max_held_audio: MAX_HELD_AUDIO,
        })
    }

    /// What the master playlist says of this rung, measured from what it
    /// has published so far.
    pub(crate) fn summary(&self) -> RungSummary {
        let (peak, average) = self.publisher.bitrates();
        RungSummary {
            name: self.plan.name.clone(),
            width: self.plan.width,
            height: self.plan.height,
            peak,
            average,
            video_codec: self.codecs(),
            hdr_range: self.hdr_range,
        }
    }

    /// `CODECS` of its video stream: the H.264 SPS's, else read from the
    /// init segment's configuration box once the muxer has written it
    /// (and kept: every master written after reads it).
    pub(crate) fn codecs(&self) -> Option<String> {
        if self.video_codec.is_some() {
            return self.video_codec.clone();
        }
        if let Some(c) = self.init_codecs.get() {
            return Some(c.clone());
        }
        let bytes = std::fs::read(self.init.as_ref()?).ok()?;
        let c = crate::hls::codecs::from_init_segment(&bytes)?;
        Some(self.init_codecs.get_or_init(|| c).clone())
    }

    /// Holds up to `n` audio packets for the video to reach them (a split
    /// job reads further ahead of its muxed video).
    pub(crate) fn hold_audio(&mut self, n: usize) {
        self.max_held_audio = self.max_held_audio.max(n);
    }

    /// True when it writes fMP4 segments.
    pub(crate) fn is_fmp4(&self) -> bool {
        self.init.is_some()
    }

    /// Writes a video packet whose timestamps are in `tb`.
    pub(crate) fn write_video(&mut self, packet: &mut Packet, tb: Rational) -> Result<(), Error> {
        let Some(index) = self.video_ost else {
            return Ok(());
        };
        packet.set_stream(index);
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
            .map_err(|e| Error::from_av(e, "writing a video packet"))?;
        self.release_audio(self.position)
    }

    /// Queues (a copy of) an audio packet whose timestamps are in `tb`; it
    /// is written once the video has reached it.
    pub(crate) fn write_audio(&mut self, packet: &Packet, tb: Rational) -> Result<(), Error> {
        let Some(index) = self.audio_ost else {
            return Ok(());
        };
        let mut p = packet.clone();
        p.set_stream(index);
        p.rescale_ts(tb, self.audio_tb);
        self.held_audio.push_back(p);
        self.release_audio(self.position)
    }

    /// An audio rendition follows the video: its held audio up to `secs`
    /// (how far every video rung has got) is written.
    pub(crate) fn advance(&mut self, secs: f64) -> Result<(), Error> {
        if self.video_ost.is_none() && secs > self.position {
            self.position = secs;
        }
        self.release_audio(self.position)
    }

    /// Writes the held audio that starts before `secs` (and the oldest when
    /// too much is held).
    fn release_audio(&mut self, secs: f64) -> Result<(), Error> {
        let tb = f64::from(self.audio_tb);
        while let Some(p) = self.held_audio.front() {
            let starts = p.pts().map_or(0.0, |t| t as f64 * tb);
            if starts >= secs && self.held_audio.len() <= self.max_held_audio {
                break;
            }
            if let Some(p) = self.held_audio.pop_front() {
                p.write_interleaved(&mut self.octx)
                    .map_err(|e| Error::from_av(e, "writing an audio packet"))?;
            }
        }
        Ok(())
    }

    /// Writes the trailer (the last segment) and publishes the playlist as
    /// VOD; returns the bytes newly published. Audio past the video's end
    /// is dropped: the duration follows the video.
    pub(crate) fn finish(&mut self) -> Result<u64, Error> {
        self.release_audio(self.position)?;
        self.held_audio.clear();
        self.octx
            .write_trailer()
            .map_err(|e| Error::from_av(e, "finishing the hls muxer"))?;
        self.publisher.finish()
    }
}

/// Adds the video stream; returns its `CODECS` value when the SPS is known
/// (H.264; the others' come from the init segment, see
/// [`RungOutput::codecs`]).
fn add_video(
    octx: &mut Output,
    video: VideoParams<'_>,
    kind: VideoCodec,
    (tb, fps): (Rational, Rational),
) -> Result<Option<String>, Error> {
    let id = match kind {
        VideoCodec::H264 => codec::Id::H264,
        VideoCodec::Av1 => codec::Id::AV1,
        VideoCodec::Hevc => codec::Id::HEVC,
    };
    let mut ost = octx
        .add_stream(ffmpeg_next::encoder::find(id))
        .map_err(|e| Error::from_av(e, "add video stream"))?;
    let codec = match video {
        VideoParams::Encoded(enc) if kind != VideoCodec::H264 => {
            ost.set_parameters(enc);
            // `hvc1`: parameter sets in the init segment only, the tag
            // Apple's players want.
            if kind == VideoCodec::Hevc {
                crate::ffi::set_codec_tag(&mut ost, *b"hvc1");
            }
            None
        }
        VideoParams::Encoded(enc) => {
            ost.set_parameters(enc);
            crate::hls::codecs::avc1_codec(crate::ffi::extradata(enc.as_ref()))
        }
        VideoParams::Copied(par) if kind != VideoCodec::H264 => {
            ost.set_parameters(par);
            match kind {
                VideoCodec::Hevc => crate::ffi::set_codec_tag(&mut ost, *b"hvc1"),
                _ => crate::ffi::clear_codec_tag(&mut ost),
            }
            None
        }
        VideoParams::Copied(par) => {
            let codec = crate::hls::codecs::avc1_codec(crate::ffi::par_extradata(&par));
            ost.set_parameters(par);
            crate::ffi::clear_codec_tag(&mut ost);
            codec
        }
    };
    ost.set_time_base(tb);
    ost.set_avg_frame_rate(fps);
    Ok(codec)
}

/// Adds the audio stream; returns its index.
fn add_audio(octx: &mut Output, audio: &AudioParams<'_>, tb: Rational) -> Result<usize, Error> {
    let index = octx.nb_streams() as usize;
    let mut ost = octx
        .add_stream(ffmpeg_next::encoder::find(codec::Id::AAC))
        .map_err(|e| Error::from_av(e, "add audio stream"))?;
    match audio {
        AudioParams::Encoded(enc) => ost.set_parameters(*enc),
        AudioParams::Copied(par) => {
            ost.set_parameters(par.clone());
            crate::ffi::clear_codec_tag(&mut ost);
        }
    }
    ost.set_time_base(tb);
    Ok(index)
}
