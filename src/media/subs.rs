//! Text subtitle streams of the source (`mov_text`, `subrip`, `ass`/`ssa`,
//! `webvtt`), decoded in-process into cues as their packets go by; the job
//! writes them as caption tracks at its end. Bitmap subtitles (PGS, DVB,
//! DVD) cannot become WebVTT and are left out with a note.

use crate::captions::{clean_text, Cue};
use crate::Error;
use ffmpeg_next::codec::subtitle::Rect;
use ffmpeg_next::{Packet, Rational};

/// Most caption tracks taken from one source.
pub(crate) const MAX_TRACKS: usize = 8;
/// Most cues, and bytes of cue text, kept per track.
const MAX_CUES: usize = 50_000;
const MAX_TEXT_BYTES: usize = 4 << 20;

/// What the probe learnt of a source's subtitle or audio stream (one more
/// caption track or audio rendition).
#[derive(Debug, Clone)]
pub(crate) struct SourceTrack {
    pub index: usize,
    /// Language tag from the stream's metadata (`und` when none).
    pub lang: String,
    /// Title from the metadata, else the language.
    pub name: String,
    pub default: bool,
    pub forced: bool,
}

/// Codec names that decode to text.
pub(crate) fn is_text_codec(name: &str) -> bool {
    matches!(
        name,
        "mov_text" | "subrip" | "srt" | "ass" | "ssa" | "webvtt"
    )
}

/// One subtitle stream being decoded.
pub(crate) struct SubtitleTrack {
    pub stream: SourceTrack,
    decoder: ffmpeg_next::decoder::Subtitle,
    tb: Rational,
    /// Subtracted from timestamps (the video's start), in `tb`.
    offset: i64,
    pub cues: Vec<Cue>,
    text_bytes: usize,
}

impl SubtitleTrack {
    /// Opens the decoder of `stream` (its parameters and time base from the
    /// input); `origin_us`: the instant that is output time 0.
    pub(crate) fn open(
        stream: SourceTrack,
        params: ffmpeg_next::codec::Parameters,
        tb: Rational,
        origin_us: i64,
    ) -> Result<Self, Error> {
        let decoder = ffmpeg_next::codec::context::Context::from_parameters(params)
            .and_then(|c| c.decoder().subtitle())
            .map_err(|e| Error::from_av(e, "subtitle decoder"))?;
        let offset = super::timing::rescale(origin_us, super::timing::MICROS, tb);
        Ok(SubtitleTrack {
            stream,
            decoder,
            tb,
            offset,
            cues: Vec::new(),
            text_bytes: 0,
        })
    }

    /// Decodes one packet into cues (a packet that does not decode is
    /// skipped: captions never fail a video).
    pub(crate) fn send_packet(&mut self, packet: &Packet) {
        let Some(pts) = packet.pts().or(packet.dts()) else {
            return;
        };
        let mut sub = ffmpeg_next::Subtitle::new();
        let got = self.decoder.decode(packet, &mut sub).unwrap_or(false);
        if got {
            let secs = f64::from(self.tb);
            let base = (pts - self.offset) as f64 * secs;
            let start = base + f64::from(sub.start()) / 1000.0;
            let end = if sub.end() > sub.start() {
                base + f64::from(sub.end()) / 1000.0
            } else {
                base + packet.duration().max(0) as f64 * secs
            };
            let text: Vec<String> = sub.rects().filter_map(|r| rect_text(&r)).collect();
            self.push(start, end, &text.join("\n"));
        }
        // The decoder allocates the rects; they are freed here.
        crate::ffi::free_subtitle(&mut sub);
    }

    fn push(&mut self, start: f64, end: f64, raw: &str) {
        let text = clean_text(raw);
        if text.is_empty() || end <= start || end <= 0.0 {
            return;
        }
        if self.cues.len() >= MAX_CUES || self.text_bytes + text.len() > MAX_TEXT_BYTES {
            return;
        }
        self.text_bytes += text.len();
        self.cues.push(Cue {
            start: start.max(0.0),
            end,
            text,
        });
    }

    /// The cues in time order.
    pub(crate) fn into_cues(mut self) -> (SourceTrack, Vec<Cue>) {
        self.cues.sort_by(|a, b| a.start.total_cmp(&b.start));
        (self.stream, self.cues)
    }
}

/// The text of a rect: plain text, or the `Text` field of an ASS event
/// line (`ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text`,
/// libavcodec's form since 5.0; older `Dialogue:` lines carry a timing
/// field more).
fn rect_text(r: &Rect<'_>) -> Option<String> {
    match r {
        Rect::Text(t) => Some(t.get().to_owned()),
        Rect::Ass(a) => {
            let line = a.get();
            let fields = if line.starts_with("Dialogue:") { 10 } else { 9 };
            line.splitn(fields, ',').nth(fields - 1).map(str::to_owned)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_text_codecs_become_captions() {
        for c in ["mov_text", "subrip", "ass", "webvtt"] {
            assert!(is_text_codec(c));
        }
        for c in [
            "hdmv_pgs_subtitle",
            "dvb_subtitle",
            "dvd_subtitle",
            "eia_608",
        ] {
            assert!(!is_text_codec(c));
        }
    }
}
