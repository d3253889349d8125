//! The import's HTTP client: one `GET` per hop on a new connection to an
//! address the [`Policy`] permits (resolved here, then pinned), TLS for
//! `https`, redirects followed (at most [`MAX_REDIRECTS`]) with every hop
//! checked again. Nothing of the server's own credentials or cookies is
//! ever sent.

use crate::netpolicy::Policy;
use crate::Error;
use bytes::Bytes;
use http::{header, Request, Response, StatusCode, Uri};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;

/// Redirects followed before giving up.
pub(crate) const MAX_REDIRECTS: usize = 5;
/// Longest URL accepted.
pub(crate) const MAX_URL: usize = 4096;
/// Time to resolve a host and to connect (each address), and to get the
/// answer's head.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The remote's answer: its body streams from a connection kept by a task
/// that ends with it.
pub(crate) struct Fetched {
    pub response: Response<Incoming>,
    _conn: ConnTask,
}

/// Ends the connection's task when the answer is dropped.
struct ConnTask(tokio::task::JoinHandle<()>);

impl Drop for ConnTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An `http`/`https` URL with a host and no credentials (`400` else).
pub(crate) fn parse(url: &str) -> Result<Uri, Error> {
    let bad = |m: &str| Error::BadRequest(format!("url: {m}"));
    if url.len() > MAX_URL {
        return Err(bad("longer than 4096 characters"));
    }
    let uri: Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
    check_uri(&uri).map_err(|m| bad(&m))?;
    Ok(uri)
}

/// `http` or `https`, a host, no user info.
fn check_uri(uri: &Uri) -> Result<(), String> {
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("only http:// and https:// URLs are imported".into()),
    }
    let authority = uri.authority().ok_or("the URL names no host")?;
    if authority.as_str().contains('@') {
        return Err("credentials in the URL are not sent; use a signed URL".into());
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL names no host".into());
    }
    Ok(())
}

/// The addresses of `uri`'s host that the policy permits (`403
/// import_refused` when there are none).
pub(crate) async fn resolve(uri: &Uri, policy: &Policy) -> Result<Vec<SocketAddr>, Error> {
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let host = uri.host().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let lookup = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((bare, port)));
    let found: Vec<SocketAddr> = lookup
        .await
        .map_err(|_| Error::ImportFailed(format!("{host} did not resolve within 10 s")))?
        .map_err(|e| Error::ImportFailed(format!("cannot resolve {host}: {e}")))?
        .collect();
    let permitted: Vec<SocketAddr> = found
        .iter()
        .copied()
        .filter(|a| policy.permits(*a))
        .collect();
    match (permitted.is_empty(), found.first()) {
        (false, _) => Ok(permitted),
        (true, Some(a)) => Err(Error::ImportRefused(format!(
            "{host} is {}, on the server's own network (--import-allow-private or \
             --import-allow lets imports reach it)",
            a.ip()
        ))),
        (true, None) => Err(Error::ImportFailed(format!("{host} has no address"))),
    }
}

/// `GET uri`, following redirects: the final answer (any status but a
/// redirect), or why there is none. `first`: the first hop's addresses
/// when they were resolved and checked already (not asked twice).
pub(crate) async fn get(
    url: &Uri,
    policy: &Policy,
    mut first: Option<Vec<SocketAddr>>,
) -> Result<Fetched, Error> {
    let mut uri = url.clone();
    for hop in 0..=MAX_REDIRECTS {
        let addrs = match first.take() {
            Some(a) => a,
            None => resolve(&uri, policy).await?,
        };
        let fetched = exchange(&uri, &addrs).await?;
        let status = fetched.response.status();
        if !status.is_redirection() {
            return Ok(fetched);
        }
        let location = fetched
            .response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok());
        match location {
            Some(_) if hop == MAX_REDIRECTS => break,
            Some(l) => uri = join(&uri, l).ok_or_else(|| bad_redirect(l))?,
            None => return Err(remote_status(status)),
        }
    }
    Err(Error::ImportFailed(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

fn bad_redirect(l: &str) -> Error {
    let shown: String = l.chars().take(200).collect();
    Error::ImportFailed(format!("a redirect to {shown:?}, which cannot be imported"))
}

/// The record's words for a remote's refusal.
pub(crate) fn remote_status(status: StatusCode) -> Error {
    Error::ImportFailed(format!(
        "the remote server answered {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    ))
}

/// A redirect's `Location` against the URL it came from (absolute, scheme
/// relative, absolute path, or relative path); `None` when the result is
/// not one an import may follow.
fn join(base: &Uri, location: &str) -> Option<Uri> {
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let scheme_of = location.split_once(':').map(|(s, _)| s);
    let absolute = scheme_of.is_some_and(|s| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let joined = if absolute {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{scheme}://{authority}{dir}{location}")
    };
    let uri: Uri = joined.parse().ok()?;
    check_uri(&uri).ok().map(|()| uri)
}

/// Connects to the first of `addrs` that answers, and sends `GET`.
async fn exchange(uri: &Uri, addrs: &[SocketAddr]) -> Result<Fetched, Error> {
    let mut last = String::from("no address");
    for addr in addrs {
        let connect = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr));
        match connect.await {
            Ok(Ok(tcp)) => return request(uri, tcp).await,
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "connection timed out".into(),
        }
    }
    let host = uri.host().unwrap_or("");
    Err(Error::ImportFailed(format!(
        "cannot connect to {host}: {last}"
    )))
}

async fn request(uri: &Uri, tcp: tokio::net::TcpStream) -> Result<Fetched, Error> {
    let _ = tcp.set_nodelay(true);
    let host = uri.host().unwrap_or("");
    let req = Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(header::HOST, uri.authority().map_or(host, |a| a.as_str()))
        .header(
            header::USER_AGENT,
            concat!("hlsd/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, "*/*")
        .body(Empty::<Bytes>::new())
        .map_err(|e| Error::ImportFailed(e.to_string()))?;
    let answer = match uri.scheme_str() {
        Some("https") => {
            let tls = crate::tlsclient::connect(host, tcp)
                .await
                .map_err(Error::ImportFailed)?;
            tokio::time::timeout(HEAD_TIMEOUT, send(TokioIo::new(tls), req)).await
        }
        _ => tokio::time::timeout(HEAD_TIMEOUT, send(TokioIo::new(tcp), req)).await,
    };
    answer.map_err(|_| Error::ImportFailed(format!("{host} did not answer within 30 s")))?
}

async fn send<IO>(io: IO, req: Request<Empty<Bytes>>) -> Result<Fetched, Error>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let failed = |e: hyper::Error| Error::ImportFailed(format!("the remote server: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(failed)?;
    let conn = ConnTask(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let response = sender.send_request(req).await.map_err(failed)?;
    Ok(Fetched {
        response,
        _conn: conn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_with_a_host_and_no_credentials() {
        assert!(parse("https://cdn.example/v/clip.mp4?sig=1").is_ok());
        assert!(parse("http://[::1]:8080/a").is_ok());
        for bad in [
            "ftp://h/x",
            "file:///etc/passwd",
            "gopher://h/",
            "https://user:pw@h/x",
            "h/x",
            "http:///x",
            "not a url",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse(&format!("http://h/{}", "a".repeat(5000))).is_err());
    }

    #[test]
    fn redirects_resolve_against_their_url() {
        let base: Uri = "https://a.example/dir/file.mp4?x=1".parse().unwrap();
        let j = |l: &str| join(&base, l).map(|u| u.to_string());
        assert_eq!(
            j("http://b.example/y").as_deref(),
            Some("http://b.example/y")
        );
        assert_eq!(j("//c.example/z").as_deref(), Some("https://c.example/z"));
        assert_eq!(
            j("/root.mp4").as_deref(),
            Some("https://a.example/root.mp4")
        );
        assert_eq!(
            j("other.mp4").as_deref(),
            Some("https://a.example/dir/other.mp4")
        );
        assert_eq!(j("file:///etc/passwd"), None);
        assert_eq!(j("gopher://h/x"), None);
        assert_eq!(j("a:b/c"), None);
        assert_eq!(j("https://u:p@evil/"), None);
    }
}
