//! Access control: API bearer tokens for writes and management, and signed,
//! expiring playback tokens for `/play` (HMAC-SHA256 over id and expiry).
//!
//! A playback token is `<expiry unix seconds>.<hex HMAC-SHA256(key, "<id>.<expiry>")>`.
//! It travels as `?token=` on every URL a player fetches: playlists are
//! rewritten on the way out so that their segment, variant and key URIs
//! carry it, so players need no custom headers.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Equality that takes the same time wherever the inputs differ (only the
/// length can be learnt from timing).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// True if `header` (an `Authorization` value) is `Bearer <one of tokens>`.
pub(crate) fn bearer_ok(tokens: &[String], header: Option<&str>) -> bool {
    let Some(presented) = header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return false;
    };
    // Compare against every token (no early exit on a match).
    tokens.iter().fold(false, |ok, t| {
        ok | ct_eq(t.as_bytes(), presented.as_bytes())
    })
}

/// Why a playback token was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TokenError {
    Invalid,
    Expired,
}

fn mac(key: &[u8], id: &str, expires: u64) -> Option<HmacSha256> {
    let mut m = HmacSha256::new_from_slice(key).ok()?;
    m.update(id.as_bytes());
    m.update(b".");
    m.update(expires.to_string().as_bytes());
    Some(m)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Mints a token for video `id` valid until `expires` (unix seconds).
pub(crate) fn sign(key: &[u8], id: &str, expires: u64) -> String {
    let sig = mac(key, id, expires)
        .map(|m| hex(&m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("{expires}.{sig}")
}

/// Checks a token for video `id` at time `now`.
pub(crate) fn verify(key: &[u8], id: &str, token: &str, now: u64) -> Result<(), TokenError> {
    let (exp, sig) = token.split_once('.').ok_or(TokenError::Invalid)?;
    let expires: u64 = exp.parse().map_err(|_| TokenError::Invalid)?;
    let sig = unhex(sig).ok_or(TokenError::Invalid)?;
    let m = mac(key, id, expires).ok_or(TokenError::Invalid)?;
    // Signature first (constant time), so an attacker learns nothing about
    // expiry from a forged token.
    m.verify_slice(&sig).map_err(|_| TokenError::Invalid)?;
    if expires < now {
        return Err(TokenError::Expired);
    }
    Ok(())
}

/// The `token` query parameter of a request, if any.
pub(crate) fn token_from_query(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|p| p.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

fn with_token(uri: &str, token: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}token={token}")
}

/// Rewrites a playlist so that every URI in it carries `token`: URI lines,
/// and `URI="…"` attributes of tags (`EXT-X-KEY`, `EXT-X-MAP`, `EXT-X-MEDIA`,
/// `EXT-X-I-FRAME-STREAM-INF`).
pub(crate) fn rewrite_playlist(text: &str, token: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line.is_empty() {
        } else if !line.starts_with('#') {
            out.push_str(&with_token(line.trim(), token));
        } else if let Some(start) = line.find("URI=\"") {
            let value_start = start + 5;
            match line[value_start..].find('"') {
                Some(len) => {
                    let uri = &line[value_start..value_start + len];
                    out.push_str(&line[..value_start]);
                    out.push_str(&with_token(uri, token));
                    out.push_str(&line[value_start + len..]);
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_expire_and_bind_to_their_video() {
        let key = b"secret key";
        let t = sign(key, "A", 1000);
        assert_eq!(verify(key, "A", &t, 999), Ok(()));
        assert_eq!(verify(key, "A", &t, 1001), Err(TokenError::Expired));
        assert_eq!(verify(key, "B", &t, 999), Err(TokenError::Invalid));
        assert_eq!(verify(b"other", "A", &t, 999), Err(TokenError::Invalid));
        let tampered = t.replacen("1000", "2000", 1);
        assert_eq!(verify(key, "A", &tampered, 999), Err(TokenError::Invalid));
        assert_eq!(verify(key, "A", "garbage", 0), Err(TokenError::Invalid));
        assert_eq!(verify(key, "A", "1.zz", 0), Err(TokenError::Invalid));
    }

    #[test]
    fn bearer_tokens_compare_exactly() {
        let tokens = vec!["abc".to_owned(), "def".to_owned()];
        assert!(bearer_ok(&tokens, Some("Bearer def")));
        assert!(!bearer_ok(&tokens, Some("Bearer de")));
        assert!(!bearer_ok(&tokens, Some("Basic abc")));
        assert!(!bearer_ok(&tokens, None));
    }

    #[test]
    fn playlist_uris_carry_the_token() {
        let pl = "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/x/k0.key\",IV=0x01\n#EXTINF:6,\nseg_00000.ts\n#EXT-X-MAP:URI=\"init.mp4\"\nlow/index.m3u8?x=1\n#EXT-X-ENDLIST\n";
        let out = rewrite_playlist(pl, "T");
        assert!(out.contains("URI=\"/keys/x/k0.key?token=T\",IV=0x01"));
        assert!(out.contains("\nseg_00000.ts?token=T\n"));
        assert!(out.contains("URI=\"init.mp4?token=T\""));
        assert!(out.contains("low/index.m3u8?x=1&token=T"));
        assert!(out.contains("#EXTINF:6,\n"));
        assert!(out.ends_with("#EXT-X-ENDLIST\n"));
        assert_eq!(token_from_query(Some("a=1&token=Q")), Some("Q"));
        assert_eq!(token_from_query(Some("token=")), None);
    }
}
