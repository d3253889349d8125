//! Every variant: its status, its code, its message.

use super::*;

/// Every variant's place: an exhaustive `match`, so a new variant
/// must be named here, and the test below fails until it is listed.
fn place(e: &Error) -> usize {
    match e {
        Error::NotMultipart => 0,
        Error::NoFile => 1,
        Error::BadMultipart(_) => 2,
        Error::TooLarge { .. } => 3,
        Error::Aborted => 4,
        Error::Cancelled => 5,
        Error::CopyFallback(_) => 6,
        Error::NotReady => 7,
        Error::UnsupportedMedia(_) => 8,
        Error::Unprocessable(_) => 9,
        Error::Busy => 10,
        Error::QuotaExceeded { .. } => 11,
        Error::DiskFull => 12,
        Error::StoreUnavailable => 13,
        Error::OtherNode => 14,
        Error::BadRequest(_) => 15,
        Error::RateLimited { .. } => 16,
        Error::Unauthorized => 17,
        Error::InvalidToken => 18,
        Error::TokenExpired => 19,
        Error::ForbiddenOrigin => 20,
        Error::NotFound => 21,
        Error::MethodNotAllowed => 22,
        Error::RangeNotSatisfiable { .. } => 23,
        Error::BodyTimeout => 24,
        Error::TooSlow { .. } => 25,
        Error::Io(_) => 26,
        Error::Media(_) => 27,
        Error::Internal(_) => 28,
        Error::OffsetMismatch { .. } => 29,
        Error::ChecksumMismatch => 30,
        Error::UploadExpired => 31,
        Error::UnsupportedVersion => 32,
        Error::WrongContentType(_) => 33,
        Error::UnsupportedCaptions(_) => 34,
        Error::Conflict(_) => 35,
        Error::CaptionsTooLarge { .. } => 36,
        Error::ForbiddenHost => 37,
        Error::GrantUsed => 38,
        Error::OutsideClip => 39,
        Error::FormatNotImplemented => 40,
        Error::ImportRefused(_) => 41,
        Error::ImportFailed(_) => 42,
    }
}

#[test]
fn every_variant_has_a_status_and_a_distinct_code() {
    let all = [
        (Error::NotMultipart, 400),
        (Error::NoFile, 400),
        (Error::BadMultipart("x".into()), 400),
        (Error::TooLarge { limit: 1 }, 413),
        (Error::Aborted, 400),
        (Error::Cancelled, 503),
        (Error::CopyFallback("x".into()), 500),
        (Error::NotReady, 503),
        (Error::UnsupportedMedia("x".into()), 415),
        (Error::Unprocessable("x".into()), 422),
        (Error::Busy, 503),
        (Error::QuotaExceeded { limit: 1 }, 507),
        (Error::DiskFull, 507),
        (Error::StoreUnavailable, 503),
        (Error::OtherNode, 503),
        (Error::BadRequest("x".into()), 400),
        (Error::RateLimited { retry_after: 1 }, 429),
        (Error::Unauthorized, 401),
        (Error::InvalidToken, 403),
        (Error::TokenExpired, 403),
        (Error::ForbiddenOrigin, 403),
        (Error::NotFound, 404),
        (Error::MethodNotAllowed, 405),
        (Error::RangeNotSatisfiable { len: 1 }, 416),
        (Error::BodyTimeout, 408),
        (Error::TooSlow { min_rate: 1 }, 408),
        (Error::Io(std::io::Error::other("x")), 500),
        (Error::Media("x".into()), 500),
        (Error::Internal("x".into()), 500),
        (Error::OffsetMismatch { offset: 1 }, 409),
        (Error::ChecksumMismatch, 460),
        (Error::UploadExpired, 410),
        (Error::UnsupportedVersion, 412),
        (Error::WrongContentType("x"), 415),
        (Error::UnsupportedCaptions("x".into()), 415),
        (Error::Conflict("x".into()), 409),
        (Error::CaptionsTooLarge { bytes: 2, limit: 1 }, 413),
        (Error::ForbiddenHost, 421),
        (Error::GrantUsed, 403),
        (Error::OutsideClip, 403),
        (Error::FormatNotImplemented, 501),
        (Error::ImportRefused("x".into()), 403),
        (Error::ImportFailed("x".into()), 502),
    ];
    let places: std::collections::BTreeSet<usize> = all.iter().map(|(e, _)| place(e)).collect();
    assert_eq!(places.len(), all.len(), "a variant is listed twice");
    assert_eq!(
        places.last(),
        Some(&(all.len() - 1)),
        "a variant is missing"
    );
    let mut codes = std::collections::HashSet::new();
    for (e, s) in &all {
        assert_eq!(e.status().as_u16(), *s, "{e:?}");
        assert!(codes.insert(e.code()), "duplicate code {}", e.code());
        assert!(e.to_string().len() > 10, "{e:?} has no message");
        let copy = e.clone_for_client();
        assert_eq!(copy.status(), e.status(), "{e:?}");
    }
    assert!(!Error::Internal("secret path".into())
        .public_message()
        .contains("secret"));
}
