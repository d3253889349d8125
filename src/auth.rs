//! Access control: API bearer tokens for writes and management, and signed,
//! expiring playback tokens for `/play` (HMAC-SHA256 over id and expiry).
//!
//! A playback token is `<claims>.<hex HMAC-SHA256(key, "<id>.<claims>")>`,
//! where the claims are `<expiry unix seconds>` or, for a token that grants
//! one part of the video (an instant clip, issue 29),
//! `<expiry>-<start ms>-<end ms>` (`<end ms>` empty: to the end).
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

/// The part of a video a playback token grants (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClipClaim {
    pub start_ms: u64,
    pub end_ms: Option<u64>,
}

fn mac(key: &[u8], id: &str, claims: &str) -> Option<HmacSha256> {
    let mut m = HmacSha256::new_from_slice(key).ok()?;
    m.update(id.as_bytes());
    m.update(b".");
    m.update(claims.as_bytes());
    Some(m)
}

fn seal(key: &[u8], id: &str, claims: String) -> String {
    let sig = mac(key, id, &claims)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("{claims}.{sig}")
}

/// Mints a token for video `id` valid until `expires` (unix seconds).
pub(crate) fn sign(key: &[u8], id: &str, expires: u64) -> String {
    seal(key, id, expires.to_string())
}

/// Mints a token for part `clip` of video `id`, valid until `expires`.
pub(crate) fn sign_clip(key: &[u8], id: &str, expires: u64, clip: ClipClaim) -> String {
    let end = clip.end_ms.map_or(String::new(), |e| e.to_string());
    seal(key, id, format!("{expires}-{}-{end}", clip.start_ms))
}

/// `<expiry>[-<start>-<end>]`.
fn parse_claims(claims: &str) -> Option<(u64, Option<ClipClaim>)> {
    let mut parts = claims.split('-');
    let expires = parts.next()?.parse().ok()?;
    let Some(start) = parts.next() else {
        return Some((expires, None));
    };
    let start_ms = start.parse().ok()?;
    let end_ms = match parts.next()? {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    if parts.next().is_some() || end_ms.is_some_and(|e| e <= start_ms) {
        return None;
    }
    Some((expires, Some(ClipClaim { start_ms, end_ms })))
}

/// Checks a token for video `id` at time `now`: the part of the video it
/// grants (`None`: all of it).
pub(crate) fn verify(
    key: &[u8],
    id: &str,
    token: &str,
    now: u64,
) -> Result<Option<ClipClaim>, TokenError> {
    let (claims, sig) = token.split_once('.').ok_or(TokenError::Invalid)?;
    let sig = hex::decode(sig).map_err(|_| TokenError::Invalid)?;
    let m = mac(key, id, claims).ok_or(TokenError::Invalid)?;
    // Signature first (constant time), so an attacker learns nothing about
    // expiry from a forged token.
    m.verify_slice(&sig).map_err(|_| TokenError::Invalid)?;
    let (expires, clip) = parse_claims(claims).ok_or(TokenError::Invalid)?;
    if expires < now {
        return Err(TokenError::Expired);
    }
    Ok(clip)
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
        assert_eq!(verify(key, "A", &t, 999), Ok(None));
        assert_eq!(verify(key, "A", &t, 1001), Err(TokenError::Expired));
        assert_eq!(verify(key, "B", &t, 999), Err(TokenError::Invalid));
        assert_eq!(verify(b"other", "A", &t, 999), Err(TokenError::Invalid));
        let tampered = t.replacen("1000", "2000", 1);
        assert_eq!(verify(key, "A", &tampered, 999), Err(TokenError::Invalid));
        assert_eq!(verify(key, "A", "garbage", 0), Err(TokenError::Invalid));
        assert_eq!(verify(key, "A", "1.zz", 0), Err(TokenError::Invalid));
    }

    #[test]
    fn clip_tokens_carry_their_range_under_the_signature() {
        let key = b"secret key";
        let clip = ClipClaim {
            start_ms: 3000,
            end_ms: Some(6500),
        };
        let t = sign_clip(key, "A", 1000, clip);
        assert!(t.starts_with("1000-3000-6500."), "{t}");
        assert_eq!(verify(key, "A", &t, 999), Ok(Some(clip)));
        assert_eq!(verify(key, "A", &t, 1001), Err(TokenError::Expired));
        // Widening the range, or dropping it, breaks the signature.
        for forged in [
            t.replacen("-3000-", "-0-", 1),
            t.replacen("-6500.", "-.", 1),
            t.replacen("1000-3000-6500", "1000", 1),
        ] {
            assert_eq!(verify(key, "A", &forged, 999), Err(TokenError::Invalid));
        }
        let open = sign_clip(
            key,
            "A",
            1000,
            ClipClaim {
                end_ms: None,
                ..clip
            },
        );
        assert_eq!(
            verify(key, "A", &open, 999).map(|c| c.and_then(|c| c.end_ms)),
            Ok(None)
        );
        // Well signed but malformed claims are refused too.
        for claims in ["1000-5-5", "1000-5", "1000-x-9", "1000-1-2-3"] {
            let t = seal(key, "A", claims.to_owned());
            assert_eq!(
                verify(key, "A", &t, 999),
                Err(TokenError::Invalid),
                "{claims}"
            );
        }
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
