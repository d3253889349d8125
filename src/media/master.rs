//! The master playlist (RFC 8216 §4.3.4): one `#EXT-X-STREAM-INF` per rung
//! with measured `BANDWIDTH` (the peak segment bit rate, §4.3.4.2) and
//! `AVERAGE-BANDWIDTH`, the real `CODECS` (RFC 6381: `avc1.PPCCLL` from the
//! SPS the encoder or the source carries, `mp4a.40.2` for AAC-LC),
//! `RESOLUTION` and `FRAME-RATE`; one `#EXT-X-I-FRAME-STREAM-INF` per rung
//! whose I-frame playlist exists.

use crate::Error;
use std::fmt::Write as _;
use std::path::Path;

/// One variant as the master playlist lists it.
#[derive(Debug, Clone)]
pub(crate) struct Variant {
    /// Its media playlist, relative to the master (`720p/video.m3u8`).
    pub uri: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// Full `CODECS` value (`avc1.64001f,mp4a.40.2`).
    pub codecs: String,
    /// `avc1…` alone, for the I-frame stream.
    pub video_codec: String,
    pub peak_bps: u64,
    pub average_bps: u64,
    /// The I-frame playlist (relative URI, peak, average), when made.
    pub iframes: Option<(String, u64, u64)>,
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

/// Peak and average bit rates (bit/s) of the segments a media playlist
/// lists, from their sizes on disk under `dir` and their `#EXTINF`s.
/// Segments not on disk (yet) are skipped.
pub(crate) fn measure(dir: &Path, playlist: &str) -> (u64, u64) {
    let (mut peak, mut bits, mut secs) = (0f64, 0f64, 0f64);
    let mut dur = None;
    for line in playlist.lines() {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            dur = rest
                .split(',')
                .next()
                .and_then(|d| d.trim().parse::<f64>().ok());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let Some(d) = dur.take().filter(|d| *d > 0.001) else {
                continue;
            };
            let name = line.trim().split('?').next().unwrap_or("");
            let Ok(meta) = std::fs::metadata(dir.join(name)) else {
                continue;
            };
            let b = meta.len() as f64 * 8.0;
            peak = peak.max(b / d);
            bits += b;
            secs += d;
        }
    }
    let avg = if secs > 0.0 { bits / secs } else { 0.0 };
    (peak.ceil() as u64, avg.ceil() as u64)
}

/// The master playlist text.
pub(crate) fn text(variants: &[Variant]) -> String {
    let mut t = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let _ = write!(
            t,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",RESOLUTION={}x{},FRAME-RATE={:.3}\n{}\n",
            v.peak_bps.max(1),
            v.average_bps.max(1),
            v.codecs,
            v.width,
            v.height,
            v.fps,
            v.uri
        );
    }
    for v in variants {
        if let Some((uri, peak, avg)) = &v.iframes {
            let _ = writeln!(
                t,
                "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",RESOLUTION={}x{},URI=\"{}\"",
                peak.max(&1),
                avg.max(&1),
                v.video_codec,
                v.width,
                v.height,
                uri
            );
        }
    }
    t
}

/// Writes the master playlist at `path` (temp name, then rename).
pub(crate) fn write(path: &Path, variants: &[Variant]) -> Result<(), Error> {
    crate::catalog::write_atomic(path, text(variants).as_bytes())?;
    Ok(())
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

    #[test]
    fn measures_segment_sizes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.ts"), vec![0u8; 6000]).unwrap();
        std::fs::write(dir.path().join("b.ts"), vec![0u8; 1000]).unwrap();
        let pl = "#EXTM3U\n#EXTINF:6.000000,\na.ts\n#EXTINF:1.0,\nb.ts\n#EXTINF:2.0,\nc.ts\n";
        let (peak, avg) = measure(dir.path(), pl);
        assert_eq!(peak, 8000);
        assert_eq!(avg, 8000);
    }
}
