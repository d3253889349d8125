//! Alternate audio: a source with several audio tracks gets one AAC
//! rendition per track (`audio-1/`, `audio-2/`, …), each decoded once and
//! muxed on its own, in an `AUDIO` group every video variant names (RFC
//! 8216 §4.3.4.1.1); the video rungs then carry no audio. A source with one
//! audio track keeps the muxed layout, unless the video has codec groups:
//! their variants then share that one track's group instead of each
//! carrying a copy.

use super::audio::{AudioChain, VideoClock};
use super::context::JobContext;
use super::input::Source;
use super::outputs::{AudioParams, RungOutput, RungSpec};
use super::timing::{rescale, MICROS};
use crate::catalog::AudioTrack;
use crate::hls::ladder::RungPlan;
use crate::hls::publish::Publisher;
use crate::playlist::{MasterPlaylist, MediaKind, Rendition};
use crate::storage::names;
use crate::Error;
use ffmpeg_next::Packet;

/// The group id of the audio renditions.
pub(crate) const AUDIO_GROUP: &str = "aud";

/// One audio track: its chain and its own muxer.
pub(crate) struct AudioRendition {
    /// Its input stream.
    pub index: usize,
    pub chain: AudioChain,
    pub out: RungOutput,
    pub track: AudioTrack,
}

/// The audio renditions of `source` (none when the probe kept no audio
/// track for a group, see `tracks::other_streams`, or when its segments
/// are encrypted: keys are per rung, so an encrypted video keeps one muxed
/// track).
pub(crate) fn open(
    source: &Source,
    origin_us: i64,
    ctx: &JobContext<'_>,
    queue: crate::hls::queue::Queue,
) -> Result<Vec<AudioRendition>, Error> {
    if source.audio_streams.is_empty() || ctx.settings.encrypt {
        return Ok(Vec::new());
    }
    let has_default = source.audio_streams.iter().any(|s| s.default);
    let mut group = Vec::with_capacity(source.audio_streams.len());
    for (n, s) in source.audio_streams.iter().enumerate() {
        let Some(ist) = source.ictx.stream(s.index) else {
            continue;
        };
        let offset = rescale(origin_us, MICROS, ist.time_base());
        let chain = AudioChain::new(&ist, offset, ctx.settings)?;
        let dir = names::audio_dir(n + 1);
        let nominal = ctx.settings.segment_seconds;
        // An AAC frame is 1024 samples: the muxer cuts parts between them.
        let frames = f64::from(chain.time_base().1.max(1)) / 1024.0;
        let timing = (
            nominal,
            ctx.settings.live_window,
            ctx.settings.part_target(frames),
        );
        let publisher = Publisher::new(ctx.store, ctx.id, &dir, timing, queue.clone());
        ctx.store.make_dir(ctx.id, &dir)?;
        let spec = RungSpec {
            plan: RungPlan {
                name: dir.clone(),
                width: 0,
                height: 0,
                maxrate_kbps: 0,
                copy: false,
                codec: crate::config::VideoCodec::H264,
            },
            dir: ctx.store.path(ctx.id, &dir),
            video: None,
            video_tb: chain.time_base(),
            fps: ffmpeg_next::Rational(1, 1),
            audio: Some((AudioParams::Encoded(chain.encoder()), chain.time_base())),
            generation: ctx.generation,
            fmp4: super::muxer::is_fmp4(ctx.settings),
            keys: None,
        };
        let out = RungOutput::create(spec, publisher, ctx.settings)?;
        let track = AudioTrack {
            lang: s.lang.clone(),
            name: s.name.clone(),
            channels: 2,
            default: has_default && s.default,
            dir,
        };
        group.push(AudioRendition {
            index: s.index,
            chain,
            out,
            track,
        });
    }
    // Exactly one DEFAULT: the first the source marks, else the first.
    let chosen = group.iter().position(|g| g.track.default).unwrap_or(0);
    for (i, g) in group.iter_mut().enumerate() {
        g.track.default = i == chosen;
    }
    Ok(group)
}

impl AudioRendition {
    pub(crate) fn send_packet(&mut self, packet: &Packet, video: VideoClock) -> Result<(), Error> {
        self.chain
            .send_packet(packet, std::slice::from_mut(&mut self.out), video)?;
        self.out.advance(video.secs)
    }
}

/// Adds the audio group to `m`: one `#EXT-X-MEDIA` per track, and every
/// variant names the group and counts the group's peak in its `BANDWIDTH`.
pub(crate) fn add_to_master(m: &mut MasterPlaylist, group: &[AudioRendition]) {
    if group.is_empty() {
        return;
    }
    let peak = group
        .iter()
        .map(|g| g.out.publisher.bitrates().0)
        .max()
        .unwrap_or(0);
    for v in &mut m.variants {
        v.audio = Some(AUDIO_GROUP.to_owned());
        v.bandwidth += peak;
        if let Some(a) = v.average_bandwidth.as_mut() {
            *a += peak;
        }
        if !v.codecs.contains("mp4a") {
            v.codecs.push_str(",mp4a.40.2");
        }
    }
    for g in group {
        m.renditions.push(Rendition {
            kind: MediaKind::Audio,
            group_id: AUDIO_GROUP.to_owned(),
            language: (g.track.lang != "und").then(|| g.track.lang.clone()),
            name: g.track.name.clone(),
            default: g.track.default,
            autoselect: true,
            forced: false,
            channels: Some(g.track.channels.to_string()),
            uri: Some(format!("{}/{}", g.track.dir, names::PLAYLIST)),
        });
    }
}
