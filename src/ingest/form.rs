//! Reading a multipart form up to its file: small fields are read under
//! caps (each [`FIELD_LIMIT`], all of them within the guard's
//! [`FORM_LIMIT`] budget), unknown ones drained under the same caps; the
//! file's size is computed from `Content-Length` when it can be. Fields
//! after the file (`curl -F video=@clip.mp4 -F title=…`, the order most
//! people type) are read when it ends, under the same caps: a title is
//! applied with the upload's completion, so the 201 says it; a field that
//! would have changed the encoding (`encrypt`) comes too late and is a
//! 400, never silently dropped.

use super::guard::GuardState;
use crate::Error;
use bytes::Bytes;
use std::sync::{Arc, Mutex};

/// Most bytes of one non-file field.
pub(crate) const FIELD_LIMIT: usize = 4 * 1024;
/// Most bytes of the body before the file's data (fields, part headers,
/// boundaries, preamble).
pub(crate) const FORM_LIMIT: u64 = 64 * 1024;
/// Longest title, in characters.
pub(crate) const MAX_TITLE: usize = 200;

/// The small fields of an upload form.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    /// `encrypt=1` (or true/yes/on) asks for AES-128.
    pub encrypt: bool,
    /// `title=…`.
    pub title: Option<String>,
    /// `codecs=h264,av1`.
    pub codecs: Option<String>,
}

/// The form's file part, ready to stream.
pub(crate) struct FilePart {
    pub field: multer::Field<'static>,
    /// Its form name (to find its data in the raw body).
    pub name: String,
    /// The client's file name, sanitised.
    pub file_name: Option<String>,
}

/// Reads fields until the file (field `video`, else the first file field).
pub(crate) async fn read_until_file(
    multipart: &mut multer::Multipart<'static>,
    guard: &GuardState,
) -> Result<(Fields, FilePart), Error> {
    let mut fields = Fields::default();
    loop {
        let next = multipart.next_field().await.map_err(|e| error(e, guard))?;
        let Some(field) = next else {
            return Err(Error::NoFile);
        };
        if field.name() == Some("video") || field.file_name().is_some() {
            guard.file_started();
            let part = FilePart {
                name: field.name().unwrap_or("").to_owned(),
                file_name: field.file_name().and_then(sanitize_file_name),
                field,
            };
            return Ok((fields, part));
        }
        let name = field.name().unwrap_or("").to_owned();
        let value = small_field(field, guard).await?;
        match name.as_str() {
            "encrypt" => fields.encrypt |= truthy(&value),
            "title" => fields.title = clean_title(&value),
            "codecs" => fields.codecs = Some(value),
            // Anything else was read under the same caps and is dropped.
            _ => {}
        }
    }
}

/// Most fields after the file (each within [`FIELD_LIMIT`]).
const AFTER_FILE_FIELDS: usize = 16;

/// What the form said after its file.
#[derive(Debug, Default)]
pub(crate) struct After {
    pub title: Option<String>,
}

/// Reads the fields after the file, to the end of the form: at most
/// [`AFTER_FILE_FIELDS`] of them and [`FORM_LIMIT`] bytes in all (413
/// beyond); a second file, or `encrypt` asking for what the upload
/// (`encrypting` or not) is not getting, refused (400).
pub(crate) async fn read_after_file(
    multipart: &mut multer::Multipart<'static>,
    guard: &GuardState,
    encrypting: bool,
) -> Result<After, Error> {
    let mut after = After::default();
    let (mut count, mut bytes) = (0, 0);
    while let Some(field) = multipart.next_field().await.map_err(|e| error(e, guard))? {
        count += 1;
        if count > AFTER_FILE_FIELDS {
            return Err(Error::BadRequest(format!(
                "at most {AFTER_FILE_FIELDS} fields may follow the file"
            )));
        }
        if field.name() == Some("video") || field.file_name().is_some() {
            return Err(Error::BadRequest("one file per upload".into()));
        }
        let name = field.name().unwrap_or("").to_owned();
        let value = small_field(field, guard).await?;
        bytes += value.len() as u64;
        if bytes > FORM_LIMIT {
            return Err(Error::TooLarge { limit: FORM_LIMIT });
        }
        match name.as_str() {
            "title" => after.title = clean_title(&value).or(after.title),
            "encrypt" if truthy(&value) != encrypting => {
                return Err(Error::BadRequest(
                    "encrypt must come before the file: it changes how the upload is encoded"
                        .into(),
                ))
            }
            "codecs" => {
                return Err(Error::BadRequest(
                    "codecs must come before the file: it changes how the upload is encoded".into(),
                ))
            }
            _ => {}
        }
    }
    Ok(after)
}

/// A yes in a form field (1, true, yes, on).
fn truthy(value: &str) -> bool {
    matches!(value.trim(), "1" | "true" | "yes" | "on")
}

/// A field's text, at most [`FIELD_LIMIT`] bytes (413 beyond).
async fn small_field(
    mut field: multer::Field<'static>,
    guard: &GuardState,
) -> Result<String, Error> {
    let mut value = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| error(e, guard))? {
        if value.len() + chunk.len() > FIELD_LIMIT {
            return Err(Error::TooLarge {
                limit: FIELD_LIMIT as u64,
            });
        }
        value.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&value).into_owned())
}

/// A title as the API takes it: no control characters, trimmed, 1 to
/// [`MAX_TITLE`] characters; `None` when nothing is left.
pub(crate) fn clean_title(s: &str) -> Option<String> {
    let t: String = s.chars().filter(|c| !c.is_control()).collect();
    let t: String = t.trim().chars().take(MAX_TITLE).collect();
    (!t.is_empty()).then_some(t)
}

/// Strips a client file name to something safe to show (never a path).
pub(crate) fn sanitize_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let clean = clean.trim().trim_start_matches('.').to_owned();
    (!clean.is_empty()).then_some(clean)
}

/// The error for a failed read: the guard's verdict when it cut the body,
/// else multer's error mapped.
pub(crate) fn error(e: multer::Error, guard: &GuardState) -> Error {
    guard.verdict().unwrap_or_else(|| multipart_error(e))
}

/// Maps multer's errors: a broken body is an aborted upload, limits are
/// 413, everything else is a malformed form.
pub(crate) fn multipart_error(e: multer::Error) -> Error {
    match e {
        multer::Error::StreamReadFailed(_) | multer::Error::IncompleteStream => Error::Aborted,
        multer::Error::StreamSizeExceeded { limit }
        | multer::Error::FieldSizeExceeded { limit, .. } => Error::TooLarge { limit },
        other => Error::BadMultipart(other.to_string()),
    }
}

/// Bytes of the raw body kept to locate the file part's data (its headers
/// must end within this prefix for the size to be declared).
const PREFIX_KEEP: usize = FORM_LIMIT as usize + 1024;

/// The first bytes of the raw body, shared with the counting stream.
pub(crate) type RawPrefix = Arc<Mutex<Vec<u8>>>;

/// Records the body's first bytes as they pass to multer.
pub(crate) fn remember_prefix(prefix: &RawPrefix, chunk: &Bytes) {
    let mut p = prefix.lock().unwrap_or_else(|e| e.into_inner());
    if p.len() < PREFIX_KEEP {
        let take = (PREFIX_KEEP - p.len()).min(chunk.len());
        p.extend_from_slice(&chunk[..take]);
    }
}

/// Where the file part's data ends, computed from the request's
/// `Content-Length` (LIBAV-NOTES.md): total minus the bytes before the data
/// minus the closing delimiter `\r\n--BOUNDARY--`, and minus the CRLF that
/// curl and browsers send after it. RFC 2046 makes that CRLF optional, so
/// the file may be 2 bytes longer: the answer is (size, 2). Exact when the
/// file is the last part; larger otherwise, which only makes an MP4
/// demuxer wait, never fail.
pub(crate) fn expected_file_size(
    prefix: &[u8],
    content_length: u64,
    boundary: &str,
    field_name: &str,
) -> Option<(u64, u64)> {
    let needle = format!("name=\"{field_name}\"");
    let at = find(prefix, needle.as_bytes())?;
    let data_start = at + find(&prefix[at..], b"\r\n\r\n")? + 4;
    let tail = boundary.len() as u64 + 8;
    let size = content_length.checked_sub(data_start as u64 + tail)?;
    Some((size, 2))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_size_matches_a_curl_body() {
        let boundary = "------------------------abc123";
        let data = b"0123456789";
        let mut body = Vec::new();
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"a.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let got = expected_file_size(&body, body.len() as u64, boundary, "video");
        assert_eq!(got, Some((data.len() as u64, 2)));
        // Without the optional final CRLF the file is the "+2" answer.
        let got = expected_file_size(&body, body.len() as u64 - 2, boundary, "video");
        assert_eq!(got, Some((data.len() as u64 - 2, 2)));
        assert_eq!(
            expected_file_size(&body[..20], 100, boundary, "video"),
            None
        );
    }

    #[test]
    fn file_names_are_never_paths_and_titles_are_clean() {
        assert_eq!(
            sanitize_file_name("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_file_name("C:\\x\\clip.mov").as_deref(),
            Some("clip.mov")
        );
        assert_eq!(sanitize_file_name("..").as_deref(), None);
        assert_eq!(sanitize_file_name("a\u{0}b.mp4").as_deref(), Some("ab.mp4"));
        assert_eq!(clean_title("  My\u{7}  trip ").as_deref(), Some("My  trip"));
        assert_eq!(clean_title(" \n ").as_deref(), None);
        assert_eq!(clean_title(&"x".repeat(500)).unwrap().len(), MAX_TITLE);
    }
}
