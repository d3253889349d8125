//! The serving path's reads: what a request for a video's file asks of the
//! store, as futures. A bucket's answer is awaited without holding a thread
//! (the client's own runtime does the I/O); a folder's runs on the blocking
//! pool, as `tokio::fs` would. So a slow bucket costs a request its time,
//! never a blocking thread.

use super::{key, Store, VideoId};
use std::io;
use std::time::SystemTime;

impl Store {
    /// [`Store::stat`], for the serving path.
    pub async fn stat_async(
        &self,
        id: VideoId,
        rel: &str,
    ) -> io::Result<Option<(u64, SystemTime)>> {
        if let Some(f) = self.objects.stat_async(&key(id, rel)) {
            return f.await;
        }
        let (store, rel) = (self.clone(), rel.to_owned());
        blocking(move || store.stat(id, &rel)).await
    }

    /// [`Store::read`], for the serving path.
    pub async fn read_async(&self, id: VideoId, rel: &str) -> io::Result<Vec<u8>> {
        if let Some(f) = self.objects.get_async(&key(id, rel)) {
            return f.await;
        }
        let (store, rel) = (self.clone(), rel.to_owned());
        blocking(move || store.read(id, &rel)).await
    }

    /// [`Store::read_range`], for the serving path.
    pub async fn read_range_async(
        &self,
        id: VideoId,
        rel: &str,
        start: u64,
        len: u64,
    ) -> io::Result<Vec<u8>> {
        if let Some(f) = self.objects.get_range_async(&key(id, rel), start, len) {
            return f.await;
        }
        let (store, rel) = (self.clone(), rel.to_owned());
        blocking(move || store.read_range(id, &rel, start, len)).await
    }

    /// [`Store::exists`], for the serving path.
    pub async fn exists_async(&self, id: VideoId, rel: &str) -> bool {
        self.stat_async(id, rel).await.is_ok_and(|s| s.is_some())
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}
