//! The delivery loop: due attempts, one POST each (HTTP/1.1, TLS by
//! rustls with the Mozilla roots), signed at the time of the attempt.

use super::{Entry, Webhooks, GIVE_UP_AFTER};
use bytes::Bytes;
use hmac::Mac;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// One attempt's whole time: connect, send, read the answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an answer read (the rest is dropped with the connection).
const MAX_ANSWER: usize = 64 << 10;
/// The longest sleep between two looks at the outbox.
const IDLE_LOOK: Duration = Duration::from_secs(30);

impl Webhooks {
    /// Delivers what is due, forever (the server aborts it at shutdown).
    pub async fn run(self: Arc<Self>) {
        loop {
            let now = self.clock.unix_ms();
            for (key, i) in self.due(now) {
                self.attempt(&key, i).await;
            }
            let next = self.next_due();
            let wait = next.map_or(IDLE_LOOK, |t| {
                Duration::from_millis(t.saturating_sub(self.clock.unix_ms())).min(IDLE_LOOK)
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// (event, target index) pairs whose attempt is due.
    fn due(&self, now: u64) -> Vec<(String, usize)> {
        let entries = self.lock();
        let mut due = Vec::new();
        for (key, e) in entries.iter() {
            for (i, t) in e.targets.iter().enumerate() {
                if !t.done && t.next_ms <= now {
                    due.push((key.clone(), i));
                }
            }
        }
        due
    }

    fn next_due(&self) -> Option<u64> {
        let entries = self.lock();
        entries
            .values()
            .flat_map(|e| e.targets.iter().filter(|t| !t.done).map(|t| t.next_ms))
            .min()
    }

    /// One attempt at one target; the outbox entry follows its outcome.
    async fn attempt(&self, key: &str, i: usize) {
        let Some((body, url)) = self
            .lock()
            .get(key)
            .and_then(|e| Some((e.body.clone(), e.targets.get(i)?.url.clone())))
        else {
            return;
        };
        let t = self.clock.unix();
        let signature = sign(&self.secret, t, &body);
        let sent = tokio::time::timeout(ATTEMPT_TIMEOUT, post(&url, key, &signature, body)).await;
        let result = sent.unwrap_or_else(|_| Err("timed out".into()));
        if result.is_ok() {
            // Delivered, not yet marked: it goes again after a crash here.
            crate::failpoint!("delivery.after_post");
        }
        let now = self.clock.unix_ms();
        let updated = {
            let mut entries = self.lock();
            let Some(e) = entries.get_mut(key) else {
                return;
            };
            self.follow(key, e, i, &result, now);
            e.clone()
        };
        self.persist(key, updated).await;
    }

    /// Records an attempt's outcome on target `i` of `e`.
    fn follow(&self, key: &str, e: &mut Entry, i: usize, result: &Result<(), String>, now: u64) {
        let t = &mut e.targets[i];
        t.attempts += 1;
        match result {
            Ok(()) => {
                t.done = true;
                self.metrics
                    .webhooks_delivered
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(event = %key, url = %t.url, attempts = t.attempts, "webhook delivered");
            }
            Err(why) => {
                self.metrics.webhooks_failed.fetch_add(1, Ordering::Relaxed);
                let next = now + Self::backoff(t.attempts).as_millis() as u64;
                if next > e.created_ms + GIVE_UP_AFTER.as_millis() as u64 {
                    t.done = true;
                    self.metrics
                        .webhooks_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(event = %key, url = %t.url, error = %why,
                        "webhook given up after 24 hours of failures");
                } else {
                    t.next_ms = next;
                    tracing::warn!(event = %key, url = %t.url, error = %why,
                        attempts = t.attempts, "webhook failed; retrying");
                }
            }
        }
    }

    /// Writes the entry back, or removes it once every target is done.
    async fn persist(&self, key: &str, e: Entry) {
        let finished = e.targets.iter().all(|t| t.done);
        if finished {
            self.lock().remove(key);
        }
        let (key, dir) = (key.to_owned(), self.dir.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let path = dir.join(format!("{key}.json"));
            if finished {
                std::fs::remove_file(path)
            } else {
                let bytes = serde_json::to_vec(&e).map_err(std::io::Error::other)?;
                crate::storage::fsio::write_atomic(&path, &bytes)
            }
        })
        .await;
    }
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub(crate) fn sign(secret: &str, t: u64, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs `body` to `url`; `Ok` only for a 2xx answer.
async fn post(url: &str, key: &str, signature: &str, body: String) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let host = uri.host().ok_or("no host")?.to_owned();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let req = http::Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(
            http::header::HOST,
            uri.authority().map_or(host.as_str(), |a| a.as_str()),
        )
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("hlsd/", env!("CARGO_PKG_VERSION")),
        )
        .header("hlsd-signature", signature)
        .header("hlsd-event-id", key)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    if https {
        let tls = crate::tlsclient::connect(&host, tcp).await?;
        send(TokioIo::new(tls), req).await
    } else {
        send(TokioIo::new(tcp), req).await
    }
}

/// Sends one request on a new connection; reads at most [`MAX_ANSWER`]
/// bytes of the answer. A redirect is a failure (never followed).
async fn send<IO>(io: IO, req: http::Request<Full<Bytes>>) -> Result<(), String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let res = sender.send_request(req).await.map_err(|e| e.to_string());
    let outcome = match res {
        Ok(res) => {
            let status = res.status();
            let mut body = res.into_body();
            let mut read = 0usize;
            while read < MAX_ANSWER {
                match body.frame().await {
                    Some(Ok(f)) => read += f.data_ref().map_or(0, |d| d.len()),
                    _ => break,
                }
            }
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("answered {status}"))
            }
        }
        Err(e) => Err(e),
    };
    conn.abort();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_stripe_style() {
        // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec
        let s = sign("whsec", 1_700_000_000, "{\"a\":1}");
        assert!(s.starts_with("t=1700000000,v1="), "{s}");
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(s, sign("other", 1_700_000_000, "{\"a\":1}"));
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let b: Vec<u64> = (1..=14).map(|n| Webhooks::backoff(n).as_secs()).collect();
        assert_eq!(&b[..5], &[1, 2, 4, 8, 16]);
        assert_eq!(*b.last().unwrap(), 3600);
    }
}
