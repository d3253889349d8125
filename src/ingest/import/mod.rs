//! Imports (issue 29, item 4): `POST /videos {"url"}` streams a remote
//! file into the spool and through the usual pipeline, as an upload
//! whose bytes come from the [`fetch`]er instead of a client, under the
//! same limits (size, quota, idle time and minimum rate). The video plays
//! while it imports. The remote's errors (a status, a cut-off body, no
//! answer) end as a `failed` record with `import_failed`; where the
//! fetcher may connect is [`crate::netpolicy`]'s to say, at every hop.

pub(crate) mod fetch;

use super::guard::{BodyGuard, GuardState, Limits};
use super::Upload;
use crate::Error;
use futures_util::TryStreamExt;
use http::{header, HeaderMap, Uri};
use http_body_util::BodyExt;
use std::sync::Arc;

pub(crate) use crate::netpolicy::Policy;

/// One import's remote and rules.
pub(crate) struct Import {
    pub uri: Uri,
    pub policy: Policy,
    pub limits: Limits,
    pub max_bytes: u64,
    /// The first hop's addresses, resolved and checked before the 201.
    pub first_hop: Option<Vec<std::net::SocketAddr>>,
}

/// The file name an import's URL suggests (its last path segment).
pub(crate) fn file_name(uri: &Uri) -> Option<String> {
    let last = uri.path().rsplit('/').next().unwrap_or("");
    let decoded = crate::percent::decode(last, false);
    super::form::sanitize_file_name(&decoded)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Streams the remote file into `up`: `Ok` once every byte is in.
pub(crate) async fn receive(up: &mut Upload<'_>, import: &Import) -> Result<(), Error> {
    let fetched = fetch::get(&import.uri, &import.policy, import.first_hop.clone()).await?;
    let response = fetched.response;
    let length = content_length(response.headers());
    let status = response.status();
    up.note_import(status.as_u16(), length).await?;
    if !status.is_success() {
        return Err(fetch::remote_status(status));
    }
    if length.is_some_and(|n| n > import.max_bytes) {
        return Err(Error::TooLarge {
            limit: import.max_bytes,
        });
    }
    let guard = Arc::new(GuardState::default());
    guard.file_started();
    let data = response.into_body().into_data_stream();
    let guarded = BodyGuard::new(data, import.limits, guard.clone());
    let body = guarded.map_err(|e| {
        guard
            .verdict()
            .unwrap_or_else(|| Error::ImportFailed(format!("the remote's body was cut off ({e})")))
    });
    super::receive(up, body).await?;
    match length {
        Some(n) if n != up.received => Err(Error::ImportFailed(format!(
            "the remote's body was cut off after {} of its {n} bytes",
            up.received
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_last_segment_names_the_file() {
        let name = |u: &str| file_name(&u.parse().unwrap());
        assert_eq!(
            name("https://h/v/My%20Clip.mp4?sig=x").as_deref(),
            Some("My Clip.mp4")
        );
        assert_eq!(
            name("https://h/v/..%2F..%2Fetc%2Fpasswd").as_deref(),
            Some("passwd")
        );
        assert_eq!(name("https://h/"), None);
    }
}
