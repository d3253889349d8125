//! Conditional and partial requests (RFC 9110 §13, §14): which copy a
//! client holds that is still current (`If-None-Match`,
//! `If-Modified-Since`), whether its `Range` applies (`If-Range`), and the
//! range itself.

use crate::Error;
use http::{header, HeaderMap};
use std::time::SystemTime;

/// Which copy of the file a client holds that is still current.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Current {
    /// The file as it is (or a date, or `*`).
    Plain,
    /// Its gzipped representation (a playlist's `…-gz` ETag).
    Gzipped,
}

/// The client's current copy, if any (RFC 9110 §13.1.2, §13.1.3):
/// `If-None-Match` decides when present, else `If-Modified-Since`. `gz`:
/// the gzipped representation's ETag, for the kinds that have one.
pub(super) fn not_modified(
    req: &HeaderMap,
    etag: &str,
    gz: Option<&str>,
    modified: SystemTime,
) -> Option<Current> {
    if let Some(inm) = req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        let tags = || inm.split(',').map(|t| t.trim().trim_start_matches("W/"));
        if gz.is_some_and(|gz| tags().any(|t| t == gz)) {
            return Some(Current::Gzipped);
        }
        return tags()
            .any(|t| t == "*" || t == etag)
            .then_some(Current::Plain);
    }
    let since = req
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    since
        .is_some_and(|since| modified <= since + std::time::Duration::from_millis(999))
        .then_some(Current::Plain)
}

/// The ETag of the gzipped representation (RFC 9110 §8.8.3: a strong
/// validator differs between content codings), as Apache does it.
pub(super) fn gzip_etag(etag: &str) -> String {
    format!("{}-gz\"", etag.trim_end_matches('"'))
}

/// True when a `Range` may be honoured: no `If-Range`, or one naming the
/// current representation (strong ETag, or exactly its date).
pub(super) fn range_applies(req: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    let Some(v) = req.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let v = v.trim();
    if v.starts_with('"') {
        return v == etag;
    }
    httpdate::parse_http_date(v)
        .is_ok_and(|d| httpdate::fmt_http_date(d) == httpdate::fmt_http_date(modified))
}

/// An inclusive byte range of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// Parses a `Range` header for a resource of `len` bytes (RFC 9110 §14.1.2).
/// `Ok(None)`: serve the whole resource (no header, a syntax we ignore, or
/// several ranges, which a server may answer in full). `Err`: 416.
pub(crate) fn parse_range(value: Option<&str>, len: u64) -> Result<Option<ByteRange>, Error> {
    // The range unit is case-insensitive (RFC 9110 §14.1).
    let Some(spec) = value.map(str::trim).and_then(|v| {
        v.get(..6)
            .filter(|u| u.eq_ignore_ascii_case("bytes="))
            .map(|_| &v[6..])
    }) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let unsatisfiable = Err(Error::RangeNotSatisfiable { len });
    if a.is_empty() {
        // Suffix range: the last N bytes.
        if !digits(b) {
            return Ok(None);
        }
        let n: u64 = b.parse().unwrap_or(u64::MAX);
        if n == 0 || len == 0 {
            return unsatisfiable;
        }
        return Ok(Some(ByteRange {
            start: len.saturating_sub(n),
            end: len - 1,
        }));
    }
    if !digits(a) || !(b.is_empty() || digits(b)) {
        return Ok(None);
    }
    let start: u64 = a.parse().unwrap_or(u64::MAX);
    let end: u64 = if b.is_empty() {
        u64::MAX
    } else {
        b.parse().unwrap_or(u64::MAX)
    };
    if end < start {
        return Ok(None);
    }
    if start >= len {
        return unsatisfiable;
    }
    Ok(Some(ByteRange {
        start,
        end: end.min(len - 1),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn validators_decide_304_and_if_range() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(t);
        let tag = "\"a-1\"";
        let gz = Some("\"a-1-gz\"");
        let current = |h: &[(&str, &str)]| not_modified(&headers(h), tag, gz, t);
        assert_eq!(
            current(&[("if-none-match", "\"x\", \"a-1\"")]),
            Some(Current::Plain)
        );
        assert_eq!(current(&[("if-none-match", "\"b-2\"")]), None);
        assert_eq!(
            current(&[("if-none-match", "W/\"a-1-gz\"")]),
            Some(Current::Gzipped)
        );
        // A kind that is never gzipped has no gz validator.
        assert_eq!(
            not_modified(&headers(&[("if-none-match", "\"a-1-gz\"")]), tag, None, t),
            None
        );
        assert_eq!(
            current(&[("if-modified-since", &date)]),
            Some(Current::Plain)
        );
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            current(&[("if-none-match", "\"b\""), ("if-modified-since", &date)]),
            None
        );
        assert!(range_applies(&headers(&[]), tag, t));
        assert!(range_applies(&headers(&[("if-range", tag)]), tag, t));
        assert!(!range_applies(&headers(&[("if-range", "\"old\"")]), tag, t));
        assert!(range_applies(&headers(&[("if-range", &date)]), tag, t));
    }

    fn r(s: &str, len: u64) -> Result<Option<(u64, u64)>, u16> {
        parse_range(Some(s), len)
            .map(|o| o.map(|r| (r.start, r.end)))
            .map_err(|e| e.status().as_u16())
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(r("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(r("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=90-200", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(r("bytes=-200", 100), Ok(Some((0, 99))));
        assert_eq!(r("bytes=100-", 100), Err(416));
        assert_eq!(r("bytes=-0", 100), Err(416));
        assert_eq!(r("bytes=5-1", 100), Ok(None));
        assert_eq!(r("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(r("items=0-1", 100), Ok(None));
        assert_eq!(r("bytes=a-b", 100), Ok(None));
        assert_eq!(parse_range(None, 100).unwrap(), None);
    }
}
