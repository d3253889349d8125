//! Captions as WebVTT (no libav here): cues parsed from uploaded WebVTT
//! or SRT, cue text cleaned of styling WebVTT does not keep (ASS override
//! tags, fonts, colours), and a track written as segmented WebVTT for HLS
//! (RFC 8216 §3.5): one `.vtt` per segment of the video, each with an
//! `X-TIMESTAMP-MAP` that puts its cue times on the video's timeline, and
//! a VOD media playlist over them.

mod parse;
mod track;

pub use parse::{parse, ParseError};
pub use track::{output_size, segment_grid, write_segments, SegmentedTrack};

/// One cue: from `start` to `end` (seconds on the video's timeline).
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    /// WebVTT cue text (`<b>`, `<i>`, `<u>` kept; escapes as WebVTT wants).
    pub text: String,
}

/// `hh:mm:ss.mmm`, as WebVTT writes times.
pub fn timestamp(secs: f64) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Cleans cue text for WebVTT: ASS override blocks (`{\an8}`) go, `\N`
/// and `\n` become line breaks, HTML-like tags other than `b`, `i`, `u`
/// go, `&`, `<` and `>` outside kept tags are escaped, blank lines dropped.
pub fn clean_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'\\') => {
                for d in chars.by_ref() {
                    if d == '}' {
                        break;
                    }
                }
            }
            '\\' if matches!(chars.peek(), Some('N' | 'n')) => {
                chars.next();
                out.push('\n');
            }
            '\\' if chars.peek() == Some(&'h') => {
                chars.next();
                out.push(' ');
            }
            '<' => {
                let mut tag = String::new();
                let mut closed = false;
                for d in chars.by_ref() {
                    if d == '>' {
                        closed = true;
                        break;
                    }
                    tag.push(d);
                }
                let name = tag.trim_start_matches('/').trim().to_ascii_lowercase();
                if closed && matches!(name.as_str(), "b" | "i" | "u") {
                    out.push('<');
                    out.push_str(&tag.to_ascii_lowercase());
                    out.push('>');
                } else if !closed {
                    out.push_str("&lt;");
                    out.push_str(&tag);
                }
            }
            '>' => out.push_str("&gt;"),
            '&' => {
                // Keep entities WebVTT knows; escape a bare ampersand.
                let rest: String = chars.clone().take(6).collect();
                let entity = ["amp;", "lt;", "gt;", "nbsp;", "lrm;", "rlm;"]
                    .iter()
                    .any(|e| rest.starts_with(e));
                out.push_str(if entity { "&" } else { "&amp;" });
            }
            '\r' => {}
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_keeps_what_webvtt_keeps() {
        assert_eq!(clean_text("{\\an8}Hello\\Nworld"), "Hello\nworld");
        assert_eq!(
            clean_text("<font color=\"red\">Red</font> & <i>it</i>"),
            "Red &amp; <i>it</i>"
        );
        // "-->" would end a cue early; escaped it cannot.
        assert_eq!(clean_text("a --> b\r\n\r\n"), "a --&gt; b");
        assert_eq!(clean_text("1 < 2 &amp; 3"), "1 &lt; 2 &amp; 3");
        assert_eq!(timestamp(3725.5), "01:02:05.500");
    }
}
