//! An S3-compatible bucket as [`Objects`](super::objects::Objects):
//! object_store's S3 client (SigV4, retries with backoff, conditional PUT,
//! presigning, paginated listing, bulk delete, multipart) on hlsd's own
//! HTTP stack ([`http`]).
//!
//! The client's futures run on a small runtime of its own, so the blocking
//! [`Objects`](super::objects::Objects) calls can be made from any job
//! thread or `spawn_blocking` task without tying up the server's workers.

mod http;

use super::objects::{Fut, Objects};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::signer::Signer;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Where a bucket is and how to reach it (its `Debug` leaves the secrets
/// out).
#[derive(Clone, Default)]
pub struct S3Settings {
    /// The bucket's name.
    pub bucket: String,
    /// Keys are stored under `prefix/` (empty: the bucket's top).
    pub prefix: String,
    /// The server (`http://host:port`); AWS's regional endpoint if empty.
    pub endpoint: Option<String>,
    /// The region signed into requests.
    pub region: String,
    /// Bucket in the path (`host/bucket/key`) rather than in the host name.
    pub path_style: bool,
    /// Credentials (from `AWS_ACCESS_KEY_ID` and friends).
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl S3Settings {
    /// The credentials from the standard `AWS_*` variables.
    pub fn with_env_credentials(mut self) -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        self.access_key_id = var("AWS_ACCESS_KEY_ID").unwrap_or_default();
        self.secret_access_key = var("AWS_SECRET_ACCESS_KEY").unwrap_or_default();
        self.session_token = var("AWS_SESSION_TOKEN");
        self
    }
}

/// A bucket (under a prefix) holding a store's objects.
pub struct S3Objects {
    s3: Arc<AmazonS3>,
    prefix: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for S3Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Objects({}, prefix {:?})", self.s3, self.prefix)
    }
}

impl Drop for S3Objects {
    fn drop(&mut self) {
        // Dropped from async code too: never wait for its threads there.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl S3Objects {
    /// A client of the bucket `s` names (no request is made yet).
    pub fn open(s: &S3Settings) -> io::Result<S3Objects> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&s.bucket)
            .with_region(&s.region)
            .with_access_key_id(&s.access_key_id)
            .with_secret_access_key(&s.secret_access_key)
            .with_virtual_hosted_style_request(!s.path_style)
            .with_retry(object_store::RetryConfig {
                backoff: object_store::BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(10),
                    base: 2.0,
                },
                max_retries: 6,
                retry_timeout: Duration::from_secs(60),
            })
            .with_http_connector(http::Connector);
        if let Some(e) = &s.endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http:"));
        }
        if let Some(t) = &s.session_token {
            b = b.with_token(t);
        }
        let s3 = b.build().map_err(io::Error::other)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3-io")
            .enable_all()
            .build()?;
        Ok(S3Objects {
            s3: Arc::new(s3),
            prefix: s.prefix.trim_matches('/').to_owned(),
            runtime: Some(runtime),
        })
    }

    fn key(&self, key: &str) -> Key {
        let key = key.trim_matches('/');
        match self.prefix.is_empty() {
            true => Key::from(key),
            false => Key::from(format!("{}/{key}", self.prefix)),
        }
    }

    /// Runs `fut` on the client's runtime; the caller awaits its answer
    /// without holding a thread (the serving path's reads).
    fn spawned<T: Send + 'static>(
        &self,
        fut: impl Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> Fut<T> {
        let task = self.runtime.as_ref().map(|rt| rt.spawn(fut));
        Box::pin(async move {
            let stopped = || io::Error::other("the object store client stopped");
            let answer = task.ok_or_else(stopped)?.await.map_err(|_| stopped())?;
            answer.map_err(to_io)
        })
    }

    /// Runs `fut` on the client's runtime and waits for it.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> io::Result<T> {
        let stopped = || io::Error::other("the object store client stopped");
        let rt = self.runtime.as_ref().ok_or_else(stopped)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| stopped())?.map_err(to_io)
    }

    fn put_with(&self, key: &str, bytes: &[u8], mode: PutMode) -> io::Result<()> {
        let (s3, key) = (self.s3.clone(), self.key(key));
        let payload = PutPayload::from(bytes.to_vec());
        let opts = PutOptions::from(mode);
        self.run(async move { s3.put_opts(&key, payload, opts).await })
            .map(|_| ())
    }
}

/// object_store's errors as the I/O errors callers match on.
fn to_io(e: object_store::Error) -> io::Error {
    let kind = match &e {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        object_store::Error::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
        object_store::Error::Precondition { .. } => io::ErrorKind::AlreadyExists,
        _ => return io::Error::other(crate::error::StoreDown(e.to_string())),
    };
    io::Error::new(kind, e)
}

impl Objects for S3Objects {
    fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        let (s3, key) = (self.s3.clone(), self.key(key));
        self.run(async move { s3.get(&key).await?.bytes().await })
            .map(|b| b.to_vec())
    }

    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.put_with(key, bytes, PutMode::Overwrite)
    }

    fn put_new(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.put_with(key, bytes, PutMode::Create)
    }

    fn get_tagged(&self, key: &str) -> io::Result<(Vec<u8>, Option<String>)> {
        let (s3, key) = (self.s3.clone(), self.key(key));
        self.run(async move {
            let got = s3.get(&key).await?;
            let tag = got.meta.e_tag.clone();
            Ok((got.bytes().await?.to_vec(), tag))
        })
    }

    fn put_if(&self, key: &str, bytes: &[u8], tag: Option<&str>) -> io::Result<Option<String>> {
        let (s3, key) = (self.s3.clone(), self.key(key));
        let mode = match tag {
            None => PutMode::Create,
            Some(t) => PutMode::Update(object_store::UpdateVersion {
                e_tag: Some(t.to_owned()),
                version: None,
            }),
        };
        let payload = PutPayload::from(bytes.to_vec());
        self.run(async move { s3.put_opts(&key, payload, PutOptions::from(mode)).await })
            .map(|r| r.e_tag)
    }

    fn upload(&self, key: &str, from: &Path) -> io::Result<u64> {
        let (s3, key) = (self.s3.clone(), self.key(key));
        let s3: Arc<dyn ObjectStore> = s3;
        let from = from.to_path_buf();
        self.run(async move {
            // One PUT when small, a multipart upload streamed from the file
            // when not: memory stays at one part whatever the file's size.
            let mut file = tokio::fs::File::open(&from).await.map_err(generic)?;
            let mut w = object_store::buffered::BufWriter::new(s3, key);
            let n = tokio::io::copy(&mut file, &mut w).await.map_err(generic)?;
            tokio::io::AsyncWriteExt::shutdown(&mut w)
                .await
                .map_err(generic)?;
            Ok(n)
        })
    }

    fn size_of(&self, key: &str) -> io::Result<Option<u64>> {
        Ok(self.stat(key)?.map(|(n, _)| n))
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        let (s3, key) = (self.s3.clone(), self.key(prefix));
        // The bucket's top (no prefix at all) lists everything.
        let top = key.as_ref().is_empty();
        let base = if top {
            String::new()
        } else {
            format!("{key}/")
        };
        let metas = self.run(async move {
            let under = (!top).then_some(&key);
            s3.list(under).try_collect::<Vec<_>>().await
        })?;
        let mut out: Vec<(String, u64)> = metas
            .into_iter()
            .filter_map(|m| {
                let name = m.location.as_ref().strip_prefix(&base)?.to_owned();
                Some((name, m.size))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn children(&self, prefix: &str) -> io::Result<Vec<String>> {
        let s3 = self.s3.clone();
        let key = (!self.key(prefix).as_ref().is_empty()).then(|| self.key(prefix));
        let listed = self.run(async move { s3.list_with_delimiter(key.as_ref()).await })?;
        let mut out: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        out.sort();
        Ok(out)
    }

    fn stat(&self, key: &str) -> io::Result<Option<(u64, std::time::SystemTime)>> {
        let (s3, key) = (self.s3.clone(), self.key(key));
        match self.run(async move { s3.head(&key).await }) {
            Ok(meta) => Ok(Some((meta.size, meta.last_modified.into()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn stat_async(&self, key: &str) -> Option<Fut<Option<(u64, std::time::SystemTime)>>> {
        let (s3, key) = (self.s3.clone(), self.key(key));
        let head = self.spawned(async move { s3.head(&key).await });
        Some(Box::pin(async move {
            match head.await {
                Ok(meta) => Ok(Some((meta.size, meta.last_modified.into()))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        }))
    }

    fn get_async(&self, key: &str) -> Option<Fut<Vec<u8>>> {
        let (s3, key) = (self.s3.clone(), self.key(key));
        let got = self.spawned(async move { s3.get(&key).await?.bytes().await });
        Some(Box::pin(async move { got.await.map(|b| b.to_vec()) }))
    }

    fn get_range_async(&self, key: &str, start: u64, len: u64) -> Option<Fut<Vec<u8>>> {
        let (s3, key) = (self.s3.clone(), self.key(key));
        let got = self.spawned(async move { s3.get_range(&key, start..start + len).await });
        Some(Box::pin(async move { got.await.map(|b| b.to_vec()) }))
    }

    fn get_range(&self, key: &str, start: u64, len: u64) -> io::Result<Vec<u8>> {
        let (s3, key) = (self.s3.clone(), self.key(key));
        self.run(async move { s3.get_range(&key, start..start + len).await })
            .map(|b| b.to_vec())
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        let (s3, key) = (self.s3.clone(), self.key(key));
        match self.run(async move { s3.delete(&key).await }) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn delete_all(&self, prefix: &str) -> io::Result<usize> {
        let (s3, key) = (self.s3.clone(), self.key(prefix));
        if key.as_ref().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "delete_all of everything",
            ));
        }
        self.run(async move {
            let found = s3.list(Some(&key)).map_ok(|m| m.location).boxed();
            let gone = s3.delete_stream(found).try_collect::<Vec<_>>().await?;
            Ok(gone.len())
        })
    }

    fn shared(&self) -> bool {
        true
    }

    /// S3 caps the expiry at seven days.
    fn presign_get(&self, key: &str, expires: Duration) -> Option<io::Result<String>> {
        let (s3, key) = (self.s3.clone(), self.key(key));
        let expires = expires.min(Duration::from_secs(7 * 24 * 3600));
        let url = self.run(async move { s3.signed_url(::http::Method::GET, &key, expires).await });
        Some(url.map(|u| u.to_string()))
    }

    /// Whether the server refuses a second `If-None-Match: *` PUT of one
    /// key (AWS, R2, MinIO, s3s do; Garage ignores the header), which
    /// exclusive claims between nodes need.
    fn conditional_writes(&self, probe: &str) -> io::Result<bool> {
        // A probe a crash left behind would fail the first write.
        self.delete(probe)?;
        self.put_new(probe, b"1")?;
        let second = self.put_new(probe, b"2");
        let _ = self.delete(probe);
        match second {
            Ok(()) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// A local I/O error inside an object store call.
fn generic(e: io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: Box::new(e),
    }
}
