//! The stream configuration an SRT publisher's MPEG-TS carries in-band:
//! its video's sequence parameter set (H.264 or HEVC) and its AAC audio's
//! ADTS header, read from the packets as they pass (PAT, then PMT, then
//! the start of each stream's PES payload). The broadcast compares a
//! publisher that comes back with the first one (see `broadcast`), as it
//! does RTMP's sequence headers.

/// An MPEG-TS packet's size.
const PACKET: usize = 188;
/// Payload bytes of a stream looked through for its configuration.
const LOOK: usize = 256 << 10;

/// What a stream's configuration is, once read.
pub(super) type Config = (Option<Vec<u8>>, Option<[u8; 4]>);

/// One stream being looked through.
#[derive(Debug, Default)]
struct Look {
    pid: Option<u16>,
    seen: Vec<u8>,
    /// Where NAL units begin in `seen` (after a start code), found so far.
    starts: Vec<usize>,
    scanned: usize,
    /// Read, or given up on (nothing found in [`LOOK`] bytes).
    done: bool,
}

impl Look {
    fn take(&mut self, data: &[u8]) {
        let room = LOOK.saturating_sub(self.seen.len());
        self.seen.extend_from_slice(&data[..data.len().min(room)]);
        if self.seen.len() >= LOOK {
            self.done = true;
        }
    }

    /// The first whole sequence parameter set of the Annex B bytes seen
    /// (each byte looked at once).
    fn sps(&mut self, hevc: bool) -> Option<Vec<u8>> {
        let from = self.scanned.saturating_sub(2);
        let old = self.starts.len();
        for i in from..self.seen.len().saturating_sub(2) {
            if self.seen[i..i + 3] == [0, 0, 1] {
                self.starts.push(i + 3);
            }
        }
        self.scanned = self.seen.len();
        let s = &self.seen;
        let pairs = self.starts.windows(2).skip(old.saturating_sub(1));
        pairs.into_iter().find_map(|w| {
            let (a, end) = (w[0], w[1] - 3);
            let kind = match hevc {
                true => (s.get(a)? >> 1) & 0x3f == 33,
                false => s.get(a)? & 0x1f == 7,
            };
            let nal = s.get(a..end).filter(|n| kind && !n.is_empty())?;
            let zeros = nal.iter().rev().take_while(|&&b| b == 0).count();
            Some(nal[..nal.len() - zeros].to_vec())
        })
    }
}

/// Reads one publisher's configuration from its MPEG-TS bytes.
#[derive(Debug, Default)]
pub(super) struct TsConf {
    partial: Vec<u8>,
    pmt: Option<u16>,
    /// Whether the PMT said the video is HEVC.
    hevc: bool,
    video: Look,
    audio: Look,
    sps: Option<Vec<u8>>,
    adts: Option<[u8; 4]>,
}

impl TsConf {
    /// Takes the next bytes of the stream.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) {
        if !self.partial.is_empty() {
            let need = PACKET - self.partial.len();
            let n = need.min(bytes.len());
            self.partial.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.partial.len() < PACKET {
                return;
            }
            let p = std::mem::take(&mut self.partial);
            self.packet(&p);
        }
        while !bytes.is_empty() {
            if bytes[0] != 0x47 {
                // Out of step: on to the next sync byte.
                let skip = bytes.iter().position(|&b| b == 0x47).unwrap_or(bytes.len());
                bytes = &bytes[skip..];
                continue;
            }
            if bytes.len() < PACKET {
                self.partial = bytes.to_vec();
                return;
            }
            self.packet(&bytes[..PACKET]);
            bytes = &bytes[PACKET..];
        }
    }

    /// True once every stream the PMT lists was read (or given up on).
    pub(super) fn known(&self) -> bool {
        self.pmt.is_some()
            && (self.video.pid.is_none() || self.video.done)
            && (self.audio.pid.is_none() || self.audio.done)
            && (self.video.pid.is_some() || self.audio.pid.is_some())
    }

    /// The configuration read so far.
    pub(super) fn config(&self) -> Config {
        (self.sps.clone(), self.adts)
    }

    fn packet(&mut self, p: &[u8]) {
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let start = p[1] & 0x40 != 0;
        let control = (p[3] >> 4) & 3;
        let at = match control & 2 {
            0 => 4,
            _ => 5 + usize::from(p[4]),
        };
        if control & 1 == 0 || at >= PACKET {
            return;
        }
        let payload = &p[at..];
        match pid {
            0 if start => self.pat(payload),
            _ if Some(pid) == self.pmt && start => self.pmt(payload),
            _ if Some(pid) == self.video.pid && !self.video.done => self.video(payload, start),
            _ if Some(pid) == self.audio.pid && !self.audio.done && start => self.audio(payload),
            _ => {}
        }
    }

    /// The first program's PMT PID.
    fn pat(&mut self, payload: &[u8]) {
        let Some(t) = section(payload) else { return };
        self.pmt = t
            .get(8..t.len().saturating_sub(4))
            .and_then(|progs| {
                progs
                    .chunks_exact(4)
                    .find(|e| e[0] != 0 || e[1] != 0)
                    .map(|e| (u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]))
            })
            .or(self.pmt);
    }

    /// The video (H.264 0x1b, HEVC 0x24) and AAC (ADTS 0x0f) streams.
    fn pmt(&mut self, payload: &[u8]) {
        let Some(t) = section(payload) else { return };
        let Some(&[a, b]) = t.get(10..12) else { return };
        let mut i = 12 + ((usize::from(a & 0x0f) << 8) | usize::from(b));
        while i + 5 <= t.len().saturating_sub(4) {
            let pid = (u16::from(t[i + 1] & 0x1f) << 8) | u16::from(t[i + 2]);
            match t[i] {
                0x1b | 0x24 if self.video.pid.is_none() => {
                    self.video.pid = Some(pid);
                    self.hevc = t[i] == 0x24;
                }
                0x0f if self.audio.pid.is_none() => self.audio.pid = Some(pid),
                _ => {}
            }
            i += 5 + ((usize::from(t[i + 3] & 0x0f) << 8) | usize::from(t[i + 4]));
        }
    }

    fn video(&mut self, payload: &[u8], start: bool) {
        let data = if start {
            pes_data(payload)
        } else {
            Some(payload)
        };
        self.video.take(data.unwrap_or_default());
        if let Some(sps) = self.video.sps(self.hevc) {
            self.sps = Some(sps);
            self.video = Look {
                pid: self.video.pid,
                done: true,
                ..Look::default()
            };
        }
    }

    /// The first ADTS header: profile, rate, channels (not the frame's
    /// length).
    fn audio(&mut self, payload: &[u8]) {
        let data = pes_data(payload).unwrap_or_default();
        if let Some(h) = data
            .get(..4)
            .filter(|h| h[0] == 0xff && h[1] & 0xf0 == 0xf0)
        {
            self.adts = Some([h[0], h[1], h[2], h[3] & 0xc0]);
            self.audio.done = true;
        } else {
            self.audio.take(data);
        }
    }
}

/// A PSI section after its pointer field, cut to its length.
fn section(payload: &[u8]) -> Option<&[u8]> {
    let t = payload.get(1 + usize::from(*payload.first()?)..)?;
    let len = (usize::from(*t.get(1)? & 0x0f) << 8) | usize::from(*t.get(2)?);
    t.get(..3 + len)
}

/// A PES packet's data after its header.
fn pes_data(payload: &[u8]) -> Option<&[u8]> {
    if payload.get(..3)? != [0, 0, 1] {
        return None;
    }
    payload.get(9 + usize::from(*payload.get(8)?)..)
}

/// Bytes of a publisher back held at most while its configuration is
/// read (then let through, unread).
const HOLD: usize = 1 << 20;

/// What becomes of a publisher's bytes.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// To the spool (held ones first).
    Pass(Vec<bytes::Bytes>),
    /// Held until the publisher's configuration is read.
    Hold,
    /// A publisher back with another configuration.
    Refuse,
}

/// A broadcast's SRT publishers: the first one's configuration, and a
/// publisher that comes back held until its own is read and compared.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    first: Option<Config>,
    now: TsConf,
    held: Option<(Vec<bytes::Bytes>, usize)>,
}

impl Watch {
    /// A publisher is back: its bytes are held until compared.
    pub(crate) fn back(&mut self) {
        self.now = TsConf::default();
        self.held = Some((Vec::new(), 0));
    }

    pub(crate) fn take(&mut self, bytes: bytes::Bytes) -> Verdict {
        if !self.now.known() {
            self.now.feed(&bytes);
        }
        let known = self.now.known();
        let Some((held, len)) = &mut self.held else {
            if known && self.first.is_none() {
                self.first = Some(self.now.config());
            }
            return Verdict::Pass(vec![bytes]);
        };
        *len += bytes.len();
        held.push(bytes);
        if !known && *len < HOLD {
            return Verdict::Hold;
        }
        let held = std::mem::take(held);
        self.held = None;
        let now = known.then(|| self.now.config());
        match (&self.first, now) {
            (Some(first), Some(now)) if *first != now => Verdict::Refuse,
            (None, now) => {
                self.first = now;
                Verdict::Pass(held)
            }
            _ => Verdict::Pass(held),
        }
    }
}

#[cfg(test)]
#[path = "tsconf_tests.rs"]
mod tests;
