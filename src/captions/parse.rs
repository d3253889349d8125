//! Uploaded caption files: WebVTT (`WEBVTT` header) or SubRip (`.srt`),
//! told apart by their content, not their name. Anything else — and a
//! file with no cue at all — is refused.

use super::{clean_text, Cue};

/// Why a caption file was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Most cues a file may hold.
const MAX_CUES: usize = 100_000;

/// Parses WebVTT or SRT text into cues, in time order.
pub fn parse(bytes: &[u8]) -> Result<Vec<Cue>, ParseError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| ParseError("captions must be UTF-8 text".into()))?;
    let text = text
        .trim_start_matches('\u{feff}')
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let first = text.lines().next().unwrap_or("");
    let webvtt = first == "WEBVTT" || first.starts_with("WEBVTT ") || first.starts_with("WEBVTT\t");
    let mut cues = Vec::new();
    for block in text.split("\n\n") {
        if let Some(cue) = cue_of(block, webvtt)? {
            cues.push(cue);
            if cues.len() > MAX_CUES {
                return Err(ParseError(format!("more than {MAX_CUES} cues")));
            }
        }
    }
    if cues.is_empty() {
        return Err(ParseError(
            "not a WebVTT or SRT file (no cue with `start --> end` timings found)".into(),
        ));
    }
    cues.sort_by(|a, b| a.start.total_cmp(&b.start));
    Ok(cues)
}

/// One block's cue: `None` for blocks that are not cues (the header,
/// `NOTE`, `STYLE`, `REGION`).
fn cue_of(block: &str, webvtt: bool) -> Result<Option<Cue>, ParseError> {
    let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    let Some(at) = lines.iter().position(|l| l.contains("-->")) else {
        if !webvtt
            && !block.trim().is_empty()
            && !lines.iter().all(|l| l.trim().parse::<u64>().is_ok())
        {
            return Err(ParseError(format!(
                "not SRT: a block without timings: {:?}",
                first_line(block)
            )));
        }
        return Ok(None);
    };
    if webvtt && matches!(lines.first(), Some(l) if l.starts_with("NOTE") || l.starts_with("STYLE"))
    {
        return Ok(None);
    }
    // SRT: an index line (and nothing else) before the timings.
    if !webvtt && (at > 1 || (at == 1 && lines[0].trim().parse::<u64>().is_err())) {
        return Err(ParseError(format!("not SRT: {:?}", first_line(block))));
    }
    let (start, end) = timings(lines[at])?;
    let text = clean_text(&lines[at + 1..].join("\n"));
    if text.is_empty() || end <= start {
        return Ok(None);
    }
    Ok(Some(Cue { start, end, text }))
}

fn first_line(block: &str) -> String {
    block
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(60)
        .collect()
}

/// `00:01:02.500 --> 00:01:04,000 [settings]`.
fn timings(line: &str) -> Result<(f64, f64), ParseError> {
    let (a, b) = line
        .split_once("-->")
        .ok_or_else(|| ParseError("a timing line without -->".into()))?;
    let b = b.split_whitespace().next().unwrap_or("");
    let bad = || ParseError(format!("bad cue timing: {line:?}"));
    Ok((time(a.trim()).ok_or_else(bad)?, time(b).ok_or_else(bad)?))
}

/// `hh:mm:ss.mmm`, `mm:ss.mmm`, or SRT's `hh:mm:ss,mmm`.
fn time(s: &str) -> Option<f64> {
    let s = s.replace(',', ".");
    let parts: Vec<&str> = s.split(':').collect();
    let (h, m, sec) = match parts.as_slice() {
        [h, m, s] => (h.parse::<u64>().ok()?, m.parse::<u64>().ok()?, *s),
        [m, s] => (0, m.parse::<u64>().ok()?, *s),
        _ => return None,
    };
    let (whole, frac) = sec.split_once('.').unwrap_or((sec, "0"));
    if m >= 60 || whole.len() != 2 || frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = whole.parse().ok().filter(|s| *s < 60)?;
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    Some((h * 3600 + m * 60 + secs) as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webvtt_and_srt_parse_and_other_text_does_not() {
        let vtt = "WEBVTT\n\nNOTE hi\n\n1\n00:00:01.000 --> 00:00:02.500 line:0\n<b>Hello</b>\n\n00:03.000 --> 00:04.000\nBye\n";
        let cues = parse(vtt.as_bytes()).unwrap();
        assert_eq!(cues.len(), 2);
        assert_eq!(
            (cues[0].start, cues[0].end, cues[0].text.as_str()),
            (1.0, 2.5, "<b>Hello</b>")
        );
        assert_eq!(cues[1].start, 3.0);
        let srt = "1\r\n00:00:01,000 --> 00:00:02,000\r\n<font color=red>Hi</font>\r\nthere\r\n\r\n2\r\n00:01:00,250 --> 00:01:01,000\r\nx\r\n";
        let cues = parse(srt.as_bytes()).unwrap();
        assert_eq!(cues[0].text, "Hi\nthere");
        assert_eq!(cues[1].start, 60.25);
        for bad in [
            "hello world",
            "{\"a\":1}",
            "WEBVTT\n\n",
            "1\n2\n3",
            "\u{0}\u{1}binary",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse(&[0xff, 0xfe, 0x00]).is_err());
        assert!(parse(b"1\n00:00:01,000 --> 00:99:02,000\nx\n").is_err());
    }
}
