//! The master playlist of a ladder (RFC 8216 §4.3.4): one variant per rung
//! with measured `BANDWIDTH` (peak segment bit rate, §4.3.4.2) and
//! `AVERAGE-BANDWIDTH`, the real `CODECS` (RFC 6381: `avc1.PPCCLL` from the
//! SPS the encoder or the source carries, `mp4a.40.2` for AAC-LC),
//! `RESOLUTION` and `FRAME-RATE`; one I-frame variant per rung whose
//! I-frame playlist exists.

use super::outputs::RungOutput;
use crate::playlist::{IFrameVariant, MasterPlaylist, Variant};
use crate::storage::names;

/// What a finished rung's I-frame playlist adds to the master.
#[derive(Debug, Clone)]
pub(crate) struct IFrames {
    /// Relative to the master (`720p/iframes.m3u8`).
    pub uri: String,
    pub peak: u64,
    pub average: u64,
}

/// A rung's video `CODECS`, with a logged fallback when no SPS was found.
fn video_codec(o: &RungOutput) -> String {
    o.video_codec.clone().unwrap_or_else(|| {
        tracing::warn!(rung = %o.plan.name, "no SPS found; CODECS says High 4.0");
        "avc1.640028".to_owned()
    })
}

/// The master playlist for `outs`, measured from what they published.
pub(crate) fn playlist(
    outs: &[RungOutput],
    has_audio: bool,
    fps: f64,
    iframes: &[Option<IFrames>],
) -> MasterPlaylist {
    let mut m = MasterPlaylist {
        independent_segments: true,
        ..MasterPlaylist::default()
    };
    for (i, o) in outs.iter().enumerate() {
        let (peak, avg) = o.publisher.bitrates();
        let video = video_codec(o);
        let resolution = Some((o.plan.width, o.plan.height));
        m.variants.push(Variant {
            bandwidth: peak,
            average_bandwidth: Some(avg),
            codecs: if has_audio {
                format!("{video},mp4a.40.2")
            } else {
                video.clone()
            },
            resolution,
            frame_rate: Some(fps),
            audio: None,
            subtitles: None,
            uri: format!("{}/{}", o.plan.name, names::PLAYLIST),
        });
        // BANDWIDTH falls strictly with RESOLUTION, so a player never
        // picks a smaller picture for more bytes (the rates are capped
        // to make it so; this only guards a measured peak that crept up).
        if let Some(above) = m.variants.iter().rev().nth(1) {
            let last = m.variants.len() - 1;
            if m.variants[last].bandwidth >= above.bandwidth {
                tracing::warn!(rung = %o.plan.name, "a lower rung peaked above the one above it");
                m.variants[last].bandwidth = above.bandwidth.saturating_sub(1).max(1);
            }
        }
        if let Some(Some(f)) = iframes.get(i) {
            m.iframe_variants.push(IFrameVariant {
                bandwidth: f.peak,
                average_bandwidth: Some(f.average),
                codecs: video,
                resolution,
                uri: f.uri.clone(),
            });
        }
    }
    m
}
