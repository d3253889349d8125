//! I-frame-only playlists (RFC 8216 §4.3.3.6 `#EXT-X-I-FRAMES-ONLY`, with
//! §4.3.2.2 `#EXT-X-BYTERANGE`), which Apple's HLS authoring specification
//! asks for so players can show trick play and scrubbing thumbnails. They
//! point into the existing MPEG-TS segments: each entry is the byte range
//! of one IDR frame, starting at the PAT/PMT that FFmpeg's mpegts muxer
//! writes just before each keyframe (so the range decodes alone) and ending
//! with the last TS packet of that frame's PES.
//!
//! The scanner reads finished segments; it trusts no length field and never
//! panics on malformed input (it returns what it found).

use super::ts::{has_idr, parse, pat_pmt_pid, pes, pmt_video_pid, section, TS};
use crate::playlist::{ByteRange, MediaPlaylist, PlaylistType, Segment};

/// 2^33: PTS wrap-around.
const PTS_WRAP: i64 = 1 << 33;

/// One I-frame (a keyframe access unit of the video stream) in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IFrame {
    pub offset: u64,
    pub length: u64,
    /// 90 kHz, as in the PES header.
    pub pts: i64,
}

/// One media segment as the I-frame playlist needs it.
pub(crate) struct SegmentIFrames {
    pub uri: String,
    /// Its `#EXTINF`.
    pub duration: f64,
    pub iframes: Vec<IFrame>,
}

/// Finds a TS stream's I-frames as its bytes go by, holding at most one
/// TS packet of them (a segment is never read into memory whole).
#[derive(Default)]
pub(crate) struct Scanner {
    out: Vec<IFrame>,
    pmt_pid: Option<u16>,
    video_pid: Option<u16>,
    /// Start of the run of PAT/PMT packets right before the current packet.
    psi_run: Option<usize>,
    /// The keyframe being measured: (offset, pts, end of its last packet).
    open: Option<(usize, i64, usize)>,
    /// Bytes of a TS packet split across two chunks.
    partial: Vec<u8>,
    /// Offset of the next whole packet.
    at: usize,
    /// A malformed packet ends the scan (what was found stays).
    stopped: bool,
}

impl Scanner {
    /// Feeds the next bytes of the segment.
    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        if !self.partial.is_empty() {
            let take = (TS - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() < TS {
                return;
            }
            let p = std::mem::take(&mut self.partial);
            self.packet(&p);
        }
        let whole = data.len() / TS * TS;
        for p in data[..whole].chunks(TS) {
            self.packet(p);
        }
        self.partial.extend_from_slice(&data[whole..]);
    }

    fn packet(&mut self, p: &[u8]) {
        if self.stopped {
            return;
        }
        let Some(pkt) = parse(p) else {
            self.stopped = true;
            return;
        };
        let at = self.at;
        self.at += TS;
        let is_psi = pkt.pid == 0 || Some(pkt.pid) == self.pmt_pid;
        if pkt.pid == 0 && pkt.start {
            self.pmt_pid = section(pkt.payload).and_then(pat_pmt_pid).or(self.pmt_pid);
        } else if Some(pkt.pid) == self.pmt_pid && pkt.start {
            self.video_pid = section(pkt.payload)
                .and_then(pmt_video_pid)
                .or(self.video_pid);
        }
        if Some(pkt.pid) == self.video_pid {
            if pkt.start {
                self.close();
                if let Some((pts, es)) = pes(pkt.payload) {
                    if pkt.random_access || has_idr(es) {
                        let off = self.psi_run.unwrap_or(at);
                        self.open = Some((off, pts.unwrap_or(0), at + TS));
                    }
                }
            } else if let Some(o) = self.open.as_mut() {
                o.2 = at + TS;
            }
        }
        self.psi_run = if is_psi {
            self.psi_run.or(Some(at))
        } else {
            None
        };
    }

    fn close(&mut self) {
        if let Some((off, pts, end)) = self.open.take() {
            self.out.push(IFrame {
                offset: off as u64,
                length: (end - off) as u64,
                pts,
            });
        }
    }

    /// The I-frames found.
    pub(crate) fn finish(mut self) -> Vec<IFrame> {
        self.close();
        self.out
    }
}

/// Scans one MPEG-TS segment held in memory.
#[cfg(test)]
pub(crate) fn scan_ts(data: &[u8]) -> Vec<IFrame> {
    let mut s = Scanner::default();
    s.feed(data);
    s.finish()
}

/// Scans one MPEG-TS segment file in 64 KiB reads.
pub(crate) fn scan_file(path: &std::path::Path) -> std::io::Result<Vec<IFrame>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 348 * TS];
    let mut s = Scanner::default();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(s.finish());
        }
        s.feed(&buf[..n]);
    }
}

/// An fMP4 rung's I-frames: each segment starts on a keyframe, so its
/// entry is `[0, end of its first video sample)` (the `moof` and that
/// sample; the init section is the playlist's `EXT-X-MAP`), timed by the
/// segments' start. `segments`: (URI, duration, path); `init`: the init
/// section's path. A segment it cannot read a first sample from is left
/// out.
pub(crate) fn scan_fmp4(
    init: &std::path::Path,
    segments: &[(String, f64, std::path::PathBuf)],
) -> std::io::Result<Vec<SegmentIFrames>> {
    let track = super::fmp4::video_track(&std::fs::read(init)?);
    let mut start = 0.0f64;
    let mut out = Vec::with_capacity(segments.len());
    for (uri, duration, path) in segments {
        let end = track.and_then(|t| super::fmp4::first_sample_end(&std::fs::read(path).ok()?, t));
        let pts = (start * 90_000.0).round() as i64;
        out.push(SegmentIFrames {
            uri: uri.clone(),
            duration: *duration,
            iframes: end
                .map(|length| IFrame {
                    offset: 0,
                    length,
                    pts,
                })
                .into_iter()
                .collect(),
        });
        start += duration;
    }
    Ok(out)
}

/// The I-frame-only playlist (VOD, ended) and its measured peak and
/// average bit rates, bit/s, for `#EXT-X-I-FRAME-STREAM-INF`.
pub(crate) fn iframe_playlist(segments: &[SegmentIFrames]) -> (MediaPlaylist, u64, u64) {
    let total: f64 = segments.iter().map(|s| s.duration.max(0.0)).sum();
    let all: Vec<(&str, IFrame)> = segments
        .iter()
        .flat_map(|s| s.iframes.iter().map(move |f| (s.uri.as_str(), *f)))
        .collect();
    let first = all.first().map_or(0, |(_, f)| f.pts);
    let time = |f: &IFrame| (f.pts - first).rem_euclid(PTS_WRAP) as f64 / 90_000.0;
    let mut p = MediaPlaylist::new(PlaylistType::Vod, 1);
    p.iframes_only = true;
    p.ended = true;
    let (mut peak, mut bytes) = (0f64, 0u64);
    for (i, (uri, f)) in all.iter().enumerate() {
        let t = time(f);
        let next = all.get(i + 1).map_or(total, |(_, g)| time(g));
        let d = (next - t).max(0.0);
        let mut seg = Segment::new(d, *uri);
        seg.byte_range = Some(ByteRange {
            length: f.length,
            offset: f.offset,
        });
        p.segments.push(seg);
        if d >= 0.001 {
            peak = peak.max(f.length as f64 * 8.0 / d);
        }
        bytes += f.length;
    }
    p.fit_target(1);
    let avg = if total > 0.0 {
        bytes as f64 * 8.0 / total
    } else {
        0.0
    };
    (p, peak.ceil() as u64, avg.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TS packet: `pid`, start flag, optional random-access adaptation
    /// field, `payload` padded with 0xff stuffing in the adaptation field.
    fn packet(pid: u16, start: bool, rai: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x47,
            (pid >> 8) as u8 | if start { 0x40 } else { 0 },
            pid as u8,
        ];
        let room = TS - 4;
        let need_af = rai || payload.len() < room;
        if need_af {
            let af_len = room - 1 - payload.len();
            p.push(0x30);
            p.push(af_len as u8);
            if af_len > 0 {
                p.push(if rai { 0x40 } else { 0 });
                p.extend(std::iter::repeat_n(0xff, af_len - 1));
            }
        } else {
            p.push(0x10);
        }
        p.extend_from_slice(payload);
        assert_eq!(p.len(), TS);
        p
    }

    fn pat() -> Vec<u8> {
        // pointer, table 0, len 13, tsid, ver, sec, last, program 1 → 0x1000, crc.
        let sec = [
            0u8, 0x00, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1, 0xf0, 0x00, 1, 2, 3, 4,
        ];
        packet(0, true, false, &sec)
    }

    fn pmt() -> Vec<u8> {
        let sec = [
            0u8, 0x02, 0xb0, 23, 0, 1, 0xc1, 0, 0, 0xe1, 0x00, 0xf0,
            0x00, // header, PCR 0x100
            0x1b, 0xe1, 0x00, 0xf0, 0x00, // H.264 on 0x100
            0x0f, 0xe1, 0x01, 0xf0, 0x00, // AAC on 0x101
            1, 2, 3, 4,
        ];
        packet(0x1000, true, false, &sec)
    }

    fn pts_bytes(pts: i64) -> [u8; 5] {
        [
            0x21 | ((pts >> 29) & 0x0e) as u8,
            (pts >> 22) as u8,
            0x01 | ((pts >> 14) & 0xfe) as u8,
            (pts >> 7) as u8,
            0x01 | ((pts << 1) & 0xfe) as u8,
        ]
    }

    fn pes_start(pts: i64, nal: u8) -> Vec<u8> {
        let mut v = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
        v.extend(pts_bytes(pts));
        v.extend([0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, nal, 0x88]);
        v
    }

    /// PAT PMT [IDR pts 0: 3 packets] audio [P: 1] PAT PMT [IDR pts 180000: 2] audio.
    fn segment() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend(pat());
        s.extend(pmt());
        s.extend(packet(0x100, true, true, &pes_start(0, 0x65)));
        s.extend(packet(0x100, false, false, &[0xaa; 184]));
        s.extend(packet(
            0x101,
            true,
            false,
            &[0, 0, 1, 0xc0, 0, 0, 0x80, 0, 0],
        ));
        s.extend(packet(0x100, false, false, &[0xaa; 184]));
        s.extend(packet(0x100, true, false, &pes_start(3000, 0x41)));
        s.extend(pat());
        s.extend(pmt());
        s.extend(packet(0x100, true, false, &pes_start(180_000, 0x65)));
        s.extend(packet(0x100, false, false, &[0xbb; 184]));
        s.extend(packet(
            0x101,
            true,
            false,
            &[0, 0, 1, 0xc0, 0, 0, 0x80, 0, 0],
        ));
        s
    }

    #[test]
    fn finds_idr_frames_with_their_pat_and_pmt() {
        let f = scan_ts(&segment());
        assert_eq!(
            f,
            [
                IFrame {
                    offset: 0,
                    length: 6 * 188,
                    pts: 0
                },
                IFrame {
                    offset: 7 * 188,
                    length: 4 * 188,
                    pts: 180_000
                }
            ]
        );
    }

    #[test]
    fn garbage_and_truncation_never_panic() {
        let s = segment();
        // Fed in odd-sized pieces, the result is the same.
        let mut sc = Scanner::default();
        for piece in s.chunks(77) {
            sc.feed(piece);
        }
        assert_eq!(sc.finish(), scan_ts(&s));
        for n in 0..s.len() {
            let _ = scan_ts(&s[..n]);
        }
        let mut noise = Vec::new();
        let mut x: u32 = 12345;
        for _ in 0..188 * 50 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            noise.push((x >> 16) as u8);
        }
        for i in (0..noise.len()).step_by(188) {
            noise[i] = 0x47;
        }
        let _ = scan_ts(&noise);
        for k in 0..s.len() {
            let mut t = s.clone();
            t[k] ^= 0xff;
            let _ = scan_ts(&t);
        }
    }

    #[test]
    fn playlist_spans_segments() {
        let f = scan_ts(&segment());
        let segs = [
            SegmentIFrames {
                uri: "seg_00000.ts".into(),
                duration: 4.0,
                iframes: f.clone(),
            },
            SegmentIFrames {
                uri: "seg_00001.ts".into(),
                duration: 2.0,
                iframes: vec![IFrame {
                    offset: 0,
                    length: 1000,
                    pts: 360_000,
                }],
            },
        ];
        let (p, peak, avg) = iframe_playlist(&segs);
        let text = p.to_string();
        assert!(text.contains("#EXT-X-I-FRAMES-ONLY\n"), "{text}");
        assert!(text.contains("#EXTINF:2.000000,\n#EXT-X-BYTERANGE:1128@0\nseg_00000.ts\n"));
        assert!(text.contains("#EXT-X-BYTERANGE:752@1316\nseg_00000.ts\n"));
        assert!(text.contains("#EXTINF:2.000000,\n#EXT-X-BYTERANGE:1000@0\nseg_00001.ts\n"));
        assert!(text.ends_with("#EXT-X-ENDLIST\n"));
        assert_eq!(peak, 1128 * 4);
        assert_eq!(avg, ((1128 + 752 + 1000) * 8) as u64 / 6);
    }
}
