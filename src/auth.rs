//! Access control: API bearer tokens for writes and management, and signed,
//! expiring playback tokens for `/play` (HMAC-SHA256 over id and expiry).
//!
//! A playback token is `<expiry unix seconds>.<hex HMAC-SHA256(key, "<id>.<expiry>")>`.
//! It travels as `?token=` on every URL a player fetches: playlists are
//! rewritten on the way out (`playlist::rewrite_uris`) so that their
//! segment, variant and key URIs carry it, so players need no custom headers.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The credentials of an `Authorization: Bearer …` header; the scheme is
/// matched case-insensitively (RFC 9110 §11.1).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// True if `header` (an `Authorization` value) is `Bearer <one of tokens>`.
pub(crate) fn bearer_ok(tokens: &[String], header: Option<&str>) -> bool {
    let Some(presented) = header.and_then(bearer) else {
        return false;
    };
    // Compare against every token in constant time (no early exit).
    tokens.iter().fold(0u8, |ok, t| {
        ok | t.as_bytes().ct_eq(presented.as_bytes()).unwrap_u8()
    }) == 1
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

/// Mints a token for video `id` valid until `expires` (unix seconds).
pub(crate) fn sign(key: &[u8], id: &str, expires: u64) -> String {
    let sig = mac(key, id, expires)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("{expires}.{sig}")
}

/// Checks a token for video `id` at time `now`.
pub(crate) fn verify(key: &[u8], id: &str, token: &str, now: u64) -> Result<(), TokenError> {
    let (exp, sig) = token.split_once('.').ok_or(TokenError::Invalid)?;
    let expires: u64 = exp.parse().map_err(|_| TokenError::Invalid)?;
    let sig = hex::decode(sig).map_err(|_| TokenError::Invalid)?;
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
        assert!(bearer_ok(&tokens, Some("bearer def")));
        assert!(bearer_ok(&tokens, Some("BEARER  abc ")));
        assert!(!bearer_ok(&tokens, Some("Bearer de")));
        assert!(!bearer_ok(&tokens, Some("Bearer ")));
        assert!(!bearer_ok(&tokens, Some("Basic abc")));
        assert!(!bearer_ok(&tokens, Some("Bearerabc")));
        assert!(!bearer_ok(&tokens, None));
    }

    #[test]
    fn tokens_come_from_the_query() {
        assert_eq!(token_from_query(Some("a=1&token=Q")), Some("Q"));
        assert_eq!(token_from_query(Some("token=")), None);
    }
}
