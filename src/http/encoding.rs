//! Content negotiation: gzip for text that compresses well (playlists, a
//! 2-hour VOD playlist is tens of KB; JSON answers), never for media.

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Response};
use std::io::Write;

/// Answers smaller than this are sent as they are.
pub(crate) const MIN_GZIP: usize = 512;

/// True when the request's `Accept-Encoding` takes gzip (RFC 9110 §12.5.3:
/// `gzip`, `x-gzip` or `*` with a non-zero weight).
pub(crate) fn accepts_gzip(req: &Parts) -> bool {
    let Some(v) = req
        .headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    v.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        q > 0.0
            && matches!(
                coding.to_ascii_lowercase().as_str(),
                "gzip" | "x-gzip" | "*"
            )
    })
}

/// `bytes` gzipped.
pub(crate) fn gzip(bytes: &[u8]) -> Option<Bytes> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        flate2::Compression::default(),
    );
    enc.write_all(bytes).ok()?;
    enc.finish().ok().map(Bytes::from)
}

/// Marks an answer that may be compressed: `Vary: Accept-Encoding`, and
/// `Content-Encoding: gzip` when it is.
pub(crate) fn mark<B>(res: &mut Response<B>, gzipped: bool) {
    let h = res.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(ae: &str) -> Parts {
        http::Request::get("/")
            .header("accept-encoding", ae)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn gzip_is_taken_only_when_offered() {
        assert!(accepts_gzip(&parts("gzip, deflate, br")));
        assert!(accepts_gzip(&parts("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(&parts("*")));
        assert!(!accepts_gzip(&parts("gzip;q=0")));
        assert!(!accepts_gzip(&parts("br, identity")));
        let text = "#EXTINF:6.000000,\nseg_00001.ts\n".repeat(100);
        let z = gzip(text.as_bytes()).unwrap();
        assert!(z.len() < text.len() / 5);
        let mut back = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&z[..]), &mut back)
            .unwrap();
        assert_eq!(back, text);
    }
}
