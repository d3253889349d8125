//! The one error type. Each variant has a stable machine-readable `code`
//! and one HTTP status; `http::error_response` is the only place an error
//! becomes a response. `Display` describes this level only (hyper's rule);
//! causes are logged by the caller for 5xx and never sent to the client.

mod message;

/// The object store failed a request after its retries (unreachable,
/// refusing, answering errors): a job that meets it fails with
/// `store_unavailable`.
#[derive(Debug)]
pub struct StoreDown(pub String);

impl std::fmt::Display for StoreDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "object store unavailable: {}", self.0)
    }
}

impl std::error::Error for StoreDown {}

/// Everything that can go wrong in a request or a job.
#[derive(Debug)]
pub enum Error {
    /// The request body is not `multipart/form-data` with a boundary.
    NotMultipart,
    /// The multipart body holds no file field.
    NoFile,
    /// The multipart body is malformed (bad boundary, truncated part…).
    BadMultipart(String),
    /// The upload exceeds `--max-upload-bytes`.
    TooLarge { limit: u64 },
    /// The upload was cut off (client gone, stalled or rejected).
    Aborted,
    /// The job was cancelled (shutdown or deletion).
    Cancelled,
    /// The copy fast path found the source's keyframes unfit (internal: the
    /// job starts over encoding every rung).
    CopyFallback(String),
    /// The video's playlist is not published yet (still queued).
    NotReady,
    /// Not a container we demux (text, an image, random bytes, a playlist…).
    UnsupportedMedia(String),
    /// A container we demux but cannot use: no video stream, an unknown
    /// codec, over the decode caps.
    Unprocessable(String),
    /// The server is at its upload/job limit.
    Busy,
    /// The upload would take storage past `--max-storage-bytes`.
    QuotaExceeded { limit: u64 },
    /// The disk itself is full.
    DiskFull,
    /// The object store (an S3 bucket) did not answer, after retries.
    StoreUnavailable,
    /// A video another node of a shared store is working on, in a way
    /// only that node can change (a resumable upload's bytes; a deletion
    /// where the store has no conditional writes to hand it over).
    OtherNode,
    /// A request the API cannot use (bad JSON, bad query…).
    BadRequest(String),
    /// No or a wrong API token.
    Unauthorized,
    /// No or an invalid playback token.
    InvalidToken,
    /// A playback token past its expiry.
    TokenExpired,
    /// A write sent by a page of another origin (not ours, not listed in
    /// `--api-cors-origin`).
    ForbiddenOrigin,
    /// A request whose `Host` does not name this server (a rebound DNS
    /// name): see `--allowed-host`.
    ForbiddenHost,
    /// A direct upload URL whose upload is complete: it grants nothing
    /// more.
    GrantUsed,
    /// A clip's playback token asked for a file outside its range (or the
    /// whole video's download or storyboard).
    OutsideClip,
    /// An oEmbed request for a format other than JSON.
    FormatNotImplemented,
    /// An import whose URL the fetcher may not reach (the server's own
    /// network, a scheme other than http/https).
    ImportRefused(String),
    /// An import whose remote failed (its status, a cut-off body, no
    /// answer): the record's `error`.
    ImportFailed(String),
    /// Too many uploads from one client; retry after this many seconds.
    RateLimited { retry_after: u64 },
    /// A resumable upload's `Upload-Offset` is not where its bytes end.
    OffsetMismatch { offset: u64 },
    /// A resumable upload's chunk does not match its `Upload-Checksum`.
    ChecksumMismatch,
    /// A resumable upload expired before it was complete (and is removed).
    UploadExpired,
    /// A tus request speaking another protocol version.
    UnsupportedVersion,
    /// A body of a content type this route does not take.
    WrongContentType(&'static str),
    /// An uploaded caption file that is not WebVTT or SRT.
    UnsupportedCaptions(String),
    /// A caption file whose segmented output would be out of proportion
    /// to it (`bytes`, over `limit`): cues spanning many segments.
    CaptionsTooLarge { bytes: u64, limit: u64 },
    /// No such video, or no such file of a video.
    NotFound,
    /// A change the video's state does not allow (its lifecycle's table).
    Conflict(String),
    /// Method not allowed on this route.
    MethodNotAllowed,
    /// The `Range` header cannot be satisfied for a resource of `len` bytes.
    RangeNotSatisfiable { len: u64 },
    /// The client went quiet in the middle of its body.
    BodyTimeout,
    /// The client sends its body too slowly (below the minimum rate).
    TooSlow { min_rate: u64 },
    /// A local I/O failure (disk full, permissions…).
    Io(std::io::Error),
    /// A libav failure that is ours, not the upload's.
    Media(String),
    /// Anything else that is our fault.
    Internal(String),
}

impl Error {
    /// The HTTP status for this error.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Error::NotMultipart | Error::NoFile | Error::BadMultipart(_) | Error::Aborted => {
                S::BAD_REQUEST
            }
            Error::TooLarge { .. } | Error::CaptionsTooLarge { .. } => S::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMedia(_) => S::UNSUPPORTED_MEDIA_TYPE,
            Error::Unprocessable(_) => S::UNPROCESSABLE_ENTITY,
            Error::Busy
            | Error::Cancelled
            | Error::NotReady
            | Error::StoreUnavailable
            | Error::OtherNode => S::SERVICE_UNAVAILABLE,
            Error::QuotaExceeded { .. } | Error::DiskFull => S::INSUFFICIENT_STORAGE,
            Error::BadRequest(_) => S::BAD_REQUEST,
            Error::RateLimited { .. } => S::TOO_MANY_REQUESTS,
            Error::Unauthorized => S::UNAUTHORIZED,
            Error::InvalidToken
            | Error::TokenExpired
            | Error::ForbiddenOrigin
            | Error::GrantUsed
            | Error::OutsideClip => S::FORBIDDEN,
            Error::FormatNotImplemented => S::NOT_IMPLEMENTED,
            Error::ImportRefused(_) => S::FORBIDDEN,
            Error::ImportFailed(_) => S::BAD_GATEWAY,
            Error::ForbiddenHost => S::MISDIRECTED_REQUEST,
            Error::NotFound => S::NOT_FOUND,
            Error::OffsetMismatch { .. } | Error::Conflict(_) => S::CONFLICT,
            // tus's "460 Checksum Mismatch".
            Error::ChecksumMismatch => S::from_u16(460).unwrap_or(S::BAD_REQUEST),
            Error::UploadExpired => S::GONE,
            Error::UnsupportedVersion => S::PRECONDITION_FAILED,
            Error::WrongContentType(_) | Error::UnsupportedCaptions(_) => S::UNSUPPORTED_MEDIA_TYPE,
            Error::MethodNotAllowed => S::METHOD_NOT_ALLOWED,
            Error::RangeNotSatisfiable { .. } => S::RANGE_NOT_SATISFIABLE,
            Error::BodyTimeout | Error::TooSlow { .. } => S::REQUEST_TIMEOUT,
            Error::Io(_) | Error::Media(_) | Error::Internal(_) | Error::CopyFallback(_) => {
                S::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// A stable code for scripts (`{"error":{"code":…}}`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotMultipart => "not_multipart",
            Error::NoFile => "no_file",
            Error::BadMultipart(_) => "bad_multipart",
            Error::TooLarge { .. } => "too_large",
            Error::Aborted => "upload_aborted",
            Error::Cancelled => "cancelled",
            Error::CopyFallback(_) => "copy_fallback",
            Error::NotReady => "not_ready",
            Error::UnsupportedMedia(_) => "unsupported_media",
            Error::Unprocessable(_) => "unprocessable_media",
            Error::Busy => "busy",
            Error::QuotaExceeded { .. } => "quota_exceeded",
            Error::DiskFull => "disk_full",
            Error::StoreUnavailable => "store_unavailable",
            Error::OtherNode => "other_node",
            Error::BadRequest(_) => "bad_request",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unauthorized => "unauthorized",
            Error::InvalidToken => "invalid_token",
            Error::TokenExpired => "token_expired",
            Error::ForbiddenOrigin => "forbidden_origin",
            Error::ForbiddenHost => "forbidden_host",
            Error::GrantUsed => "grant_used",
            Error::OutsideClip => "outside_clip",
            Error::FormatNotImplemented => "format_not_implemented",
            Error::ImportRefused(_) => "import_refused",
            Error::ImportFailed(_) => "import_failed",
            Error::NotFound => "not_found",
            Error::OffsetMismatch { .. } => "offset_mismatch",
            Error::Conflict(_) => "conflict",
            Error::CaptionsTooLarge { .. } => "captions_too_large",
            Error::ChecksumMismatch => "checksum_mismatch",
            Error::UploadExpired => "upload_expired",
            Error::UnsupportedVersion => "unsupported_version",
            Error::WrongContentType(_) => "unsupported_content_type",
            Error::UnsupportedCaptions(_) => "unsupported_captions",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Error::BodyTimeout => "body_timeout",
            Error::TooSlow { .. } => "upload_too_slow",
            Error::Io(_) => "io_error",
            Error::Media(_) => "media_error",
            Error::Internal(_) => "internal",
        }
    }

    /// True for faults of the server, whose details stay in the log.
    pub fn is_server_fault(&self) -> bool {
        self.status().is_server_error()
            && !matches!(
                self,
                Error::Busy
                    | Error::Cancelled
                    | Error::NotReady
                    | Error::QuotaExceeded { .. }
                    | Error::DiskFull
                    | Error::StoreUnavailable
                    | Error::OtherNode
                    | Error::ImportFailed(_)
            )
    }

    /// The message a client sees: actionable for 4xx, generic for 5xx.
    pub fn public_message(&self) -> String {
        if self.is_server_fault() {
            "the server failed to handle this request; see its log".to_owned()
        } else {
            self.to_string()
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A blocking task that panicked or was cancelled.
impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.raw_os_error() == Some(libc::ENOSPC) || e.kind() == std::io::ErrorKind::StorageFull {
            Error::DiskFull
        } else if e.get_ref().is_some_and(|inner| inner.is::<StoreDown>()) {
            Error::StoreUnavailable
        } else {
            Error::Io(e)
        }
    }
}

impl Error {
    /// An equal error for a second owner (`io::Error` is not `Clone`; an
    /// I/O error is copied as an internal one with the same text).
    pub fn clone_for_client(&self) -> Error {
        match self {
            Error::NotMultipart => Error::NotMultipart,
            Error::NoFile => Error::NoFile,
            Error::BadMultipart(m) => Error::BadMultipart(m.clone()),
            Error::TooLarge { limit } => Error::TooLarge { limit: *limit },
            Error::Aborted => Error::Aborted,
            Error::Cancelled => Error::Cancelled,
            Error::CopyFallback(m) => Error::CopyFallback(m.clone()),
            Error::NotReady => Error::NotReady,
            Error::UnsupportedMedia(m) => Error::UnsupportedMedia(m.clone()),
            Error::Unprocessable(m) => Error::Unprocessable(m.clone()),
            Error::Busy => Error::Busy,
            Error::QuotaExceeded { limit } => Error::QuotaExceeded { limit: *limit },
            Error::DiskFull => Error::DiskFull,
            Error::StoreUnavailable => Error::StoreUnavailable,
            Error::OtherNode => Error::OtherNode,
            Error::BadRequest(m) => Error::BadRequest(m.clone()),
            Error::Unauthorized => Error::Unauthorized,
            Error::InvalidToken => Error::InvalidToken,
            Error::TokenExpired => Error::TokenExpired,
            Error::ForbiddenOrigin => Error::ForbiddenOrigin,
            Error::ForbiddenHost => Error::ForbiddenHost,
            Error::GrantUsed => Error::GrantUsed,
            Error::OutsideClip => Error::OutsideClip,
            Error::FormatNotImplemented => Error::FormatNotImplemented,
            Error::ImportRefused(m) => Error::ImportRefused(m.clone()),
            Error::ImportFailed(m) => Error::ImportFailed(m.clone()),
            Error::RateLimited { retry_after } => Error::RateLimited {
                retry_after: *retry_after,
            },
            Error::NotFound => Error::NotFound,
            Error::Conflict(m) => Error::Conflict(m.clone()),
            Error::CaptionsTooLarge { bytes, limit } => Error::CaptionsTooLarge {
                bytes: *bytes,
                limit: *limit,
            },
            Error::OffsetMismatch { offset } => Error::OffsetMismatch { offset: *offset },
            Error::ChecksumMismatch => Error::ChecksumMismatch,
            Error::UploadExpired => Error::UploadExpired,
            Error::UnsupportedVersion => Error::UnsupportedVersion,
            Error::WrongContentType(w) => Error::WrongContentType(w),
            Error::UnsupportedCaptions(m) => Error::UnsupportedCaptions(m.clone()),
            Error::MethodNotAllowed => Error::MethodNotAllowed,
            Error::RangeNotSatisfiable { len } => Error::RangeNotSatisfiable { len: *len },
            Error::BodyTimeout => Error::BodyTimeout,
            Error::TooSlow { min_rate } => Error::TooSlow {
                min_rate: *min_rate,
            },
            Error::Io(e) => Error::Internal(e.to_string()),
            Error::Media(m) => Error::Media(m.clone()),
            Error::Internal(m) => Error::Internal(m.clone()),
        }
    }

    /// A libav failure while doing `what`; "no space left" becomes `DiskFull`.
    pub fn from_av(e: ffmpeg_next::Error, what: &str) -> Error {
        match e {
            ffmpeg_next::Error::Other { errno } if errno == libc::ENOSPC => Error::DiskFull,
            e => Error::Media(format!("{what}: {e}")),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
