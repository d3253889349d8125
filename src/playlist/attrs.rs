//! Attribute lists (RFC 8216 §4.2): `NAME=value,NAME="quoted, value"`.

use std::fmt::Write as _;

/// Parses an attribute list leniently: names and raw values (quotes
/// removed). Malformed pieces are skipped; the input is our own or the
/// muxer's, and a reader of untrusted text must still never panic.
pub(crate) fn parse(list: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.push((name.trim().to_owned(), value.to_owned()));
        rest = tail.trim_start_matches(',').trim_start();
    }
    out
}

/// Looks up `name` in a parsed list.
pub(crate) fn get<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Builds an attribute list in order.
#[derive(Default)]
pub(crate) struct Writer(String);

impl Writer {
    fn sep(&mut self) {
        if !self.0.is_empty() {
            self.0.push(',');
        }
    }

    /// An unquoted value (numbers, enumerated strings, resolutions).
    pub(crate) fn raw(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.sep();
        let _ = write!(self.0, "{name}={value}");
        self
    }

    /// A quoted string; quotes and line breaks are not allowed in one
    /// (§4.2), so they are dropped.
    pub(crate) fn quoted(mut self, name: &str, value: &str) -> Self {
        self.sep();
        let clean: String = value
            .chars()
            .filter(|c| !matches!(c, '"' | '\r' | '\n'))
            .collect();
        let _ = write!(self.0, "{name}=\"{clean}\"");
        self
    }

    pub(crate) fn raw_opt(self, name: &str, value: Option<impl std::fmt::Display>) -> Self {
        match value {
            Some(v) => self.raw(name, v),
            None => self,
        }
    }

    pub(crate) fn quoted_opt(self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.quoted(name, v),
            None => self,
        }
    }

    pub(crate) fn finish(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_may_hold_commas() {
        let a = parse("BANDWIDTH=800000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=640x360");
        assert_eq!(get(&a, "BANDWIDTH"), Some("800000"));
        assert_eq!(get(&a, "CODECS"), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(get(&a, "RESOLUTION"), Some("640x360"));
        assert_eq!(parse("X=\"unterminated").len(), 1);
        assert!(parse("garbage").is_empty());
        let w = Writer::default().raw("A", 1).quoted("B", "x\"y").finish();
        assert_eq!(w, "A=1,B=\"xy\"");
    }
}
