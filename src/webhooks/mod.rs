//! Webhooks: `video.created`, `video.ready`, `video.failed` and
//! `video.deleted` POSTed as JSON to every `--webhook-url`, signed
//! Stripe-style (`Hlsd-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">` with `--webhook-secret`).
//!
//! Delivery is at least once: the change an event reports writes it into
//! the video's record in the same atomic write (see
//! `catalog::lifecycle`), which then hands it to the outbox
//! (`<storage>/.webhooks/<event id>.json`, fsynced) — at the next start if
//! the process died in between. It stays there until every target answered 2xx
//! or 24 hours passed; attempts back off exponentially (1 s, 2 s, 4 s, …,
//! at most an hour apart) and go on after a restart. Redirects are not followed, answers are read up to 64 KiB, an attempt
//! takes at most 10 s.
//!
//! A video is created, becomes ready or fails, and is deleted once each:
//! an event's id is the video's id and the event's type, so the same change
//! reported again (a job redone after a crash between the outbox and the
//! record) carries the same id and receivers can drop it.

mod deliver;

use crate::catalog::Record;
use crate::metrics::Metrics;
use crate::storage::fsio;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The outbox folder under the storage root (not a video id).
pub const OUTBOX_DIR: &str = ".webhooks";
/// How long an event is retried.
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What happened to a video (the lifecycle's events).
pub use crate::catalog::Event as Kind;

/// One event in the outbox, with its delivery state per target.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    /// The body as sent (its bytes are what is signed).
    body: String,
    created_ms: u64,
    targets: Vec<Target>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Target {
    url: String,
    done: bool,
    attempts: u32,
    /// Unix ms of the next attempt.
    next_ms: u64,
}

/// The outbox and its delivery loop.
#[derive(Debug)]
pub struct Webhooks {
    urls: Vec<String>,
    secret: String,
    /// `--public-url`, for playback URLs in events.
    public_url: Option<String>,
    /// `--signing-key` and `--playback-token-ttl`: playback URLs in events
    /// are signed as the API's are.
    signing: Option<(String, u64)>,
    dir: PathBuf,
    clock: crate::clock::SharedClock,
    entries: Mutex<BTreeMap<String, Entry>>,
    wake: tokio::sync::Notify,
    metrics: Arc<Metrics>,
}

impl Webhooks {
    /// Opens the outbox under `root` (what a previous run left is
    /// delivered too). `None` when no URL is configured.
    pub fn open(
        config: &crate::config::Config,
        clock: crate::clock::SharedClock,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Option<Arc<Webhooks>>> {
        if config.webhook_urls.is_empty() {
            return Ok(None);
        }
        let dir = config.storage.join(OUTBOX_DIR);
        std::fs::create_dir_all(&dir)?;
        fsio::remove_tmp_files(&dir);
        let mut entries = BTreeMap::new();
        for e in std::fs::read_dir(&dir)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(key) = name.strip_suffix(".json") else {
                continue;
            };
            match std::fs::read(e.path()).map(|b| serde_json::from_slice::<Entry>(&b)) {
                Ok(Ok(entry)) => {
                    entries.insert(key.to_owned(), entry);
                }
                _ => tracing::warn!(file = %name, "unreadable webhook outbox entry; skipped"),
            }
        }
        Ok(Some(Arc::new(Webhooks {
            urls: config.webhook_urls.clone(),
            secret: config.webhook_secret.clone().unwrap_or_default(),
            public_url: config.public_url.clone(),
            signing: config
                .signing_key
                .clone()
                .map(|k| (k, config.playback_token_ttl_secs)),
            dir,
            clock,
            entries: Mutex::new(entries),
            wake: tokio::sync::Notify::new(),
            metrics,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Deliveries still to make.
    pub fn pending(&self) -> u64 {
        self.lock()
            .values()
            .map(|e| e.targets.iter().filter(|t| !t.done).count() as u64)
            .sum()
    }

    /// Puts an event about `rec` in the outbox (durably: blocking I/O).
    /// The same event twice (same id) is kept once.
    pub fn emit(&self, kind: Kind, rec: &Record) -> std::io::Result<()> {
        let key = format!("{}-{}", rec.id, kind.name());
        if self.lock().contains_key(&key) {
            return Ok(());
        }
        let now = self.clock.unix_ms();
        let body = serde_json::json!({
            "id": key,
            "type": kind.name(),
            "created_at": now / 1000,
            "data": self.data(rec),
        });
        let entry = Entry {
            body: body.to_string(),
            created_ms: now,
            targets: self
                .urls
                .iter()
                .map(|u| Target {
                    url: u.clone(),
                    done: false,
                    attempts: 0,
                    next_ms: now,
                })
                .collect(),
        };
        self.save(&key, &entry)?;
        self.lock().insert(key, entry);
        self.wake.notify_one();
        Ok(())
    }

    /// The record as events carry it (no secret, a playback URL when the
    /// public URL is known; signed, with `playback_expires_at`, when playback
    /// needs a token).
    fn data(&self, rec: &Record) -> serde_json::Value {
        let mut v = rec.public_json();
        if let (Some(base), Some(obj)) = (&self.public_url, v.as_object_mut()) {
            let base = base.trim_end_matches('/');
            let mut url = format!("{base}/play/{}/video.m3u8", rec.id);
            if let Some((key, ttl)) = &self.signing {
                let exp = self.clock.unix().saturating_add(*ttl);
                let token = crate::auth::sign(key.as_bytes(), rec.id.as_str(), exp);
                url = format!("{url}?token={token}");
                obj.insert("playback_expires_at".into(), exp.into());
            }
            obj.insert("playback_url".into(), url.into());
        }
        v
    }

    fn save(&self, key: &str, entry: &Entry) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        fsio::write_atomic(&self.dir.join(format!("{key}.json")), &bytes)
    }

    /// The delay before attempt `n + 1` after `n` failures.
    fn backoff(attempts: u32) -> Duration {
        let secs = 1u64 << attempts.saturating_sub(1).min(12);
        Duration::from_secs(secs).min(MAX_BACKOFF)
    }
}

/// The lifecycle hands its events over here once their change is durable.
impl crate::catalog::Outbox for Webhooks {
    fn put(&self, event: Kind, rec: &Record) -> std::io::Result<()> {
        self.emit(event, rec)
    }
}
