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

/// `avc1.PPCCLL` from H.264 extradata: an `avcC` record (mp4) or Annex B
/// NAL units with an SPS (libx264's global header, MPEG-TS sources).
pub(crate) fn avc1_codec(extradata: Vec<u8>) -> Option<String> {
    let e = extradata.as_slice();
    let (p, c, l) = if e.first() == Some(&1) && e.len() >= 4 {
        (e[1], e[2], e[3])
    } else {
        // Annex B: find a start code followed by NAL type 7 (SPS).
        let mut i = 0;
        loop {
            let rest = e.get(i..)?;
            let pos = rest.windows(3).position(|w| w == [0, 0, 1])?;
            let nal = i + pos + 3;
            if e.get(nal).is_some_and(|b| b & 0x1f == 7) {
                break (*e.get(nal + 1)?, *e.get(nal + 2)?, *e.get(nal + 3)?);
            }
            i = nal;
        }
    };
    Some(format!("avc1.{p:02x}{c:02x}{l:02x}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_from_avcc_and_annex_b() {
        assert_eq!(
            avc1_codec(vec![1, 0x64, 0x00, 0x1f, 0xff]).as_deref(),
            Some("avc1.64001f")
        );
        let annexb = vec![
            0, 0, 0, 1, 0x67, 0x4d, 0x40, 0x28, 0xaa, 0, 0, 1, 0x68, 0xee,
        ];
        assert_eq!(avc1_codec(annexb).as_deref(), Some("avc1.4d4028"));
        assert_eq!(avc1_codec(vec![0, 0, 1, 0x68]), None);
        assert_eq!(avc1_codec(vec![]), None);
    }
}
