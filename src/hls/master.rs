//! The master playlist of a ladder (RFC 8216 §4.3.4): one variant per rung
//! with measured `BANDWIDTH` (peak segment bit rate, §4.3.4.2) and
//! `AVERAGE-BANDWIDTH`, the real `CODECS` (RFC 6381: `avc1.PPCCLL` from the
//! SPS the encoder or the source carries, `mp4a.40.2` for AAC-LC),
//! `RESOLUTION` and `FRAME-RATE`; one I-frame variant per rung whose
//! I-frame playlist exists.

use crate::catalog::{CaptionTrack, Record};
use crate::playlist::{IFrameVariant, MasterPlaylist, MediaKind, Rendition, Variant};
use crate::storage::{names, Store};

/// What a finished rung's I-frame playlist adds to the master.
#[derive(Debug, Clone)]
pub(crate) struct IFrames {
    /// Relative to the master (`720p/iframes.m3u8`).
    pub uri: String,
    pub peak: u64,
    pub average: u64,
}

/// What the master says of one rung, measured from what it published:
/// plain numbers, so that whoever runs the muxers (media) hands them over
/// and this module needs none of its types.
#[derive(Debug, Clone)]
pub(crate) struct RungSummary {
    /// Folder and display name: `720p`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Peak segment bit rate, bit/s.
    pub peak: u64,
    /// Average bit rate over its segments, bit/s.
    pub average: u64,
    /// `CODECS` of its video stream (`avc1.64001f`), when known.
    pub video_codec: Option<String>,
    /// `PQ`/`HLG` when it keeps the source's HDR (`--hdr keep`).
    pub hdr_range: Option<&'static str>,
}

/// A rung's video `CODECS`, with a logged fallback when no SPS was found.
fn video_codec(r: &RungSummary) -> String {
    r.video_codec.clone().unwrap_or_else(|| {
        tracing::warn!(rung = %r.name, "no SPS found; CODECS says High 4.0");
        "avc1.640028".to_owned()
    })
}

/// The master playlist for `rungs`, measured from what they published.
pub(crate) fn playlist(
    rungs: &[RungSummary],
    has_audio: bool,
    fps: f64,
    iframes: &[Option<IFrames>],
) -> MasterPlaylist {
    let mut m = MasterPlaylist {
        independent_segments: true,
        ..MasterPlaylist::default()
    };
    // With an HDR rung, every variant says its range.
    let ranged = rungs.iter().any(|r| r.hdr_range.is_some());
    for (i, o) in rungs.iter().enumerate() {
        let video = video_codec(o);
        let resolution = Some((o.width, o.height));
        m.variants.push(Variant {
            bandwidth: o.peak,
            average_bandwidth: Some(o.average),
            codecs: if has_audio {
                format!("{video},mp4a.40.2")
            } else {
                video.clone()
            },
            resolution,
            frame_rate: Some(fps),
            audio: None,
            subtitles: None,
            video_range: ranged.then(|| o.hdr_range.unwrap_or("SDR").to_owned()),
            uri: format!("{}/{}", o.name, names::PLAYLIST),
        });
        // BANDWIDTH falls strictly with RESOLUTION within a codec group,
        // so a player never picks a smaller picture for more bytes (the
        // rates are capped to make it so; this only guards a measured peak
        // that crept up).
        let same_codec = |a: &Variant| a.codecs.get(..4) == video.get(..4);
        if let Some(above) = m.variants.iter().rev().nth(1).filter(|a| same_codec(a)) {
            let last = m.variants.len() - 1;
            if m.variants[last].bandwidth >= above.bandwidth {
                tracing::warn!(rung = %o.name, "a lower rung peaked above the one above it");
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

/// The group of every caption track.
pub(crate) const SUBTITLES_GROUP: &str = "subs";

/// Adds `captions` to `m` as a `SUBTITLES` group every variant names (RFC
/// 8216 §4.3.4.1, §4.3.4.2); without captions, `m` is unchanged.
pub(crate) fn add_captions(m: &mut MasterPlaylist, captions: &[CaptionTrack]) {
    m.renditions.retain(|r| r.kind != MediaKind::Subtitles);
    for v in &mut m.variants {
        v.subtitles = (!captions.is_empty()).then(|| SUBTITLES_GROUP.to_owned());
    }
    for c in captions {
        m.renditions.push(Rendition {
            kind: MediaKind::Subtitles,
            group_id: SUBTITLES_GROUP.to_owned(),
            language: (c.lang != "und").then(|| c.lang.clone()),
            name: c.name.clone(),
            default: c.default,
            // A forced track must be on whatever the viewer chose.
            autoselect: true,
            forced: c.forced,
            channels: None,
            uri: Some(c.playlist()),
        });
    }
}

/// The master playlist of a finished video, from its record (variants,
/// I-frame variants, captions): for changes after the job (captions
/// uploaded later).
pub(crate) fn from_record(rec: &Record) -> MasterPlaylist {
    let mut m = MasterPlaylist {
        independent_segments: true,
        ..MasterPlaylist::default()
    };
    for r in &rec.renditions {
        let resolution = Some((r.width, r.height));
        m.variants.push(Variant {
            bandwidth: r.bandwidth.max(1),
            average_bandwidth: (r.average_bandwidth > 0).then_some(r.average_bandwidth),
            codecs: r.codecs.clone(),
            resolution,
            frame_rate: (r.frame_rate > 0.0).then_some(r.frame_rate),
            audio: None,
            subtitles: None,
            video_range: r.video_range.clone(),
            uri: r.playlist.clone(),
        });
        if let Some(uri) = &r.iframe_playlist {
            m.iframe_variants.push(IFrameVariant {
                bandwidth: (r.bandwidth / 10).max(1),
                average_bandwidth: None,
                codecs: r.codecs.split(',').next().unwrap_or("").to_owned(),
                resolution,
                uri: uri.clone(),
            });
        }
    }
    add_captions(&mut m, &rec.captions);
    m
}

/// Rewrites a finished video's master playlist from its record; the
/// caller holds its master lock ([`Store::master_lock`]). A single
/// rendition in the flat layout (its media playlist at `video.m3u8`) first
/// gets that playlist copied to `media.m3u8`, which the master then names;
/// returns the new rendition playlist when so.
pub(crate) fn republish_locked(store: &Store, rec: &Record) -> std::io::Result<Option<String>> {
    let mut rec = rec.clone();
    let mut moved = None;
    if rec.is_flat() {
        if rec.captions.is_empty() {
            return Ok(None);
        }
        let media = store.read(rec.id, names::PLAYLIST)?;
        if !String::from_utf8_lossy(&media).contains("#EXT-X-STREAM-INF") {
            store.write(rec.id, names::FLAT_MEDIA_PLAYLIST, &media)?;
        }
        rec.renditions[0].playlist = names::FLAT_MEDIA_PLAYLIST.to_owned();
        moved = Some(names::FLAT_MEDIA_PLAYLIST.to_owned());
    }
    let m = from_record(&rec);
    store.write(rec.id, names::PLAYLIST, m.to_string().as_bytes())?;
    Ok(moved)
}
