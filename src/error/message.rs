//! What each error says: `Display` words this level only (hyper's rule),
//! for the client of a 4xx and the log of a 5xx.

use super::Error;
use std::fmt;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadMultipart(m) => write!(f, "malformed multipart body: {m}"),
            Error::TooLarge { limit } => {
                write!(
                    f,
                    "the upload is larger than the server's limit of {limit} bytes"
                )
            }
            Error::CopyFallback(m) => write!(f, "the source cannot be copied: {m}"),
            Error::UnsupportedMedia(m) => write!(f, "not a video file we can read: {m}"),
            Error::Unprocessable(m) => write!(f, "cannot process this video: {m}"),
            Error::QuotaExceeded { limit } => write!(
                f,
                "storing this upload would exceed the server's storage quota of {limit} bytes"
            ),
            Error::BadRequest(m) => write!(f, "bad request: {m}"),
            Error::Conflict(m) => write!(f, "this change is not allowed now: {m}"),
            Error::CaptionsTooLarge { bytes, limit } => write!(
                f,
                "these captions would become {bytes} bytes of segments (a cue is repeated in \
                 every segment it spans); the limit is {limit}: split long cues"
            ),
            Error::RateLimited { retry_after } => write!(
                f,
                "too many uploads from this address; retry in {retry_after} s"
            ),
            Error::OffsetMismatch { offset } => write!(
                f,
                "Upload-Offset does not match the upload: its bytes end at {offset} \
                 (HEAD it and resume from there)"
            ),
            Error::WrongContentType(want) => write!(f, "send the body as `Content-Type: {want}`"),
            Error::UnsupportedCaptions(m) => {
                write!(f, "captions must be a WebVTT or SRT file: {m}")
            }
            Error::RangeNotSatisfiable { len } => {
                write!(
                    f,
                    "the requested range is outside the resource's {len} bytes"
                )
            }
            Error::TooSlow { min_rate } => write!(
                f,
                "the upload is too slow: the server needs at least {min_rate} bytes per second"
            ),
            Error::ImportRefused(m) => write!(f, "this URL cannot be imported: {m}"),
            Error::ImportFailed(m) => write!(f, "the import failed: {m}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Media(m) => write!(f, "media error: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
            _ => f.write_str(self.fixed_message()),
        }
    }
}

impl Error {
    /// The message of an error that carries nothing ("" for the others,
    /// which `Display` words with what they carry).
    fn fixed_message(&self) -> &'static str {
        match self {
            Error::NotMultipart => {
                "expected a multipart/form-data body with the video in a file field named `video` \
                 (curl -F video=@clip.mp4 …)"
            }
            Error::NoFile => {
                "the form has no file field: send the video as a file in field `video`"
            }
            Error::Aborted => "the upload was interrupted before it was complete",
            Error::Cancelled => "the job was cancelled",
            Error::NotReady => {
                "the video is not playable yet (waiting to be processed); retry shortly"
            }
            Error::Busy => "the server is busy with other uploads; retry later",
            Error::DiskFull => "the server's disk is full",
            Error::StoreUnavailable => "the object store cannot be reached; try again later",
            Error::OtherNode => {
                "another node is working on this video: send this request to that node"
            }
            Error::Unauthorized => {
                "this endpoint needs an API token: send `Authorization: Bearer <token>`"
            }
            Error::InvalidToken => {
                "this playback URL needs a valid `token`; ask the API for a fresh playback URL"
            }
            Error::TokenExpired => "this playback URL has expired; ask for a fresh one",
            Error::ForbiddenOrigin => {
                "cross-site writes are refused: this page's origin is not allowed to change \
                 this server (see --api-cors-origin)"
            }
            Error::NotFound => "no such video or file",
            Error::ForbiddenHost => {
                "this server does not answer to that host name (a DNS name rebound to it?): \
                 use its address, or name it with --allowed-host"
            }
            Error::GrantUsed => {
                "this upload is complete: its direct upload URL allows nothing more \
                 (use the API token)"
            }
            Error::FormatNotImplemented => "oEmbed answers in JSON only (format=json)",
            Error::OutsideClip => {
                "this playback token grants one clip of the video: only the segments that \
                 cover its range, not the rest, the download or the storyboard"
            }
            Error::ChecksumMismatch => {
                "the chunk does not match its Upload-Checksum; it was discarded, send it again"
            }
            Error::UploadExpired => {
                "this upload expired before it was complete and was removed; start a new one"
            }
            Error::UnsupportedVersion => {
                "this server speaks tus 1.0.0 (send `Tus-Resumable: 1.0.0`)"
            }
            Error::MethodNotAllowed => "method not allowed on this path",
            Error::BodyTimeout => "the upload stalled: no data arrived for too long",
            Error::BadMultipart(_)
            | Error::TooLarge { .. }
            | Error::CopyFallback(_)
            | Error::UnsupportedMedia(_)
            | Error::Unprocessable(_)
            | Error::QuotaExceeded { .. }
            | Error::BadRequest(_)
            | Error::Conflict(_)
            | Error::CaptionsTooLarge { .. }
            | Error::RateLimited { .. }
            | Error::OffsetMismatch { .. }
            | Error::WrongContentType(_)
            | Error::UnsupportedCaptions(_)
            | Error::RangeNotSatisfiable { .. }
            | Error::TooSlow { .. }
            | Error::ImportRefused(_)
            | Error::ImportFailed(_)
            | Error::Io(_)
            | Error::Media(_)
            | Error::Internal(_) => "",
        }
    }
}
