//! What several nodes see: reads and listings racing each other.

use super::*;
use crate::clock::ManualClock;
use crate::storage::objects::{FileObjects, Objects};
use std::path::Path;
use std::sync::{Arc, OnceLock};

type Hook = Box<dyn Fn(&str) + Send + Sync>;

/// A bucket (a folder) that runs `hook` with the key when a listing of
/// videos or a read of a record has its answer and before it returns
/// it: what other nodes and requests do while a read is on its way.
struct Racing {
    inner: FileObjects,
    hook: OnceLock<Hook>,
}

impl Racing {
    fn meanwhile(&self, key: &str) {
        if let Some(hook) = self.hook.get() {
            hook(key);
        }
    }
}

impl std::fmt::Debug for Racing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Objects for Racing {
    fn shared(&self) -> bool {
        true
    }
    fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        self.inner.get(key)
    }
    fn get_tagged(&self, key: &str) -> io::Result<(Vec<u8>, Option<String>)> {
        let got = self.inner.get_tagged(key);
        self.meanwhile(key);
        got
    }
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.inner.put(key, bytes)
    }
    fn put_new(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.inner.put_new(key, bytes)
    }
    fn upload(&self, key: &str, from: &Path) -> io::Result<u64> {
        self.inner.upload(key, from)
    }
    fn size_of(&self, key: &str) -> io::Result<Option<u64>> {
        self.inner.size_of(key)
    }
    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        self.inner.list(prefix)
    }
    fn children(&self, prefix: &str) -> io::Result<Vec<String>> {
        let names = self.inner.children(prefix);
        self.meanwhile(prefix);
        names
    }
    fn stat(&self, key: &str) -> io::Result<Option<(u64, std::time::SystemTime)>> {
        self.inner.stat(key)
    }
    fn get_range(&self, key: &str, start: u64, len: u64) -> io::Result<Vec<u8>> {
        self.inner.get_range(key, start, len)
    }
    fn delete(&self, key: &str) -> io::Result<()> {
        self.inner.delete(key)
    }
    fn delete_all(&self, prefix: &str) -> io::Result<usize> {
        self.inner.delete_all(prefix)
    }
}

const NOW: u64 = 1_000_000;

fn id() -> VideoId {
    VideoId::parse("aaaaaaaaaaaaaaaaaaaaa").unwrap()
}

/// Node B on a bucket whose races `hook` plays (it gets B and the key).
fn node_b(
    dir: &Path,
    hook: impl Fn(&Catalog, &str) + Send + Sync + 'static,
) -> (Arc<Catalog>, FileObjects) {
    let bucket = FileObjects::open(&dir.join("bucket")).unwrap();
    let objects = Arc::new(Racing {
        inner: bucket.clone(),
        hook: OnceLock::new(),
    });
    let store = Store::on(&dir.join("b"), objects.clone()).unwrap();
    let node = Some(("node-b".to_owned(), Duration::from_secs(30)));
    let (cat, _) = Catalog::open_as(store, ManualClock::at(NOW), node).unwrap();
    let cat = Arc::new(cat);
    let weak = Arc::downgrade(&cat);
    let _ = objects.hook.set(Box::new(move |key| {
        if let Some(cat) = weak.upgrade() {
            hook(&cat, key);
        }
    }));
    (cat, bucket)
}

/// Node A's new upload, as it writes it to the bucket.
fn put_node_a_upload(bucket: &FileObjects) {
    let mut rec = Record::new(id(), Some("a.mp4".into()), NOW);
    rec.node = Some("node-a".into());
    rec.lease_until_ms = NOW + 30_000;
    let json = serde_json::to_vec(&rec).unwrap();
    bucket
        .put(&format!("{}/{}", id(), names::META_FILE), &json)
        .unwrap();
}

fn held_by_a(cat: &Catalog) -> Option<bool> {
    cat.peek(id(), |r| cat.held_elsewhere(r))
}

#[test]
fn a_record_read_while_a_listing_is_out_is_not_forgotten_by_it() {
    let dir = tempfile::tempdir().unwrap();
    // A creates the upload, and a request to B reads it, after B's
    // scan has listed the bucket and before the listing is back.
    let bucket = FileObjects::open(&dir.path().join("bucket")).unwrap();
    let (cat, bucket) = node_b(dir.path(), move |cat, key| {
        if key.is_empty() && cat.get(id()).is_none() {
            put_node_a_upload(&bucket);
            cat.refresh(id()).unwrap();
        }
    });
    cat.refresh_active();
    assert_eq!(held_by_a(&cat), Some(true), "B forgot A's new upload");
    // The next listing has it too, and a real removal is still seen.
    cat.refresh_active();
    assert!(cat.get(id()).is_some());
    bucket.delete_all(id().as_str()).unwrap();
    lock(&cat.shared.as_ref().unwrap().fetched).clear();
    cat.refresh_active();
    assert!(
        cat.get(id()).is_none(),
        "a video gone from the bucket stays"
    );
}

#[test]
fn a_request_during_a_scans_read_of_a_new_record_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let saw = seen.clone();
    // B's scan lists A's new upload and reads its record; while that
    // read is on its way back, a request to B asks for the video.
    let (cat, bucket) = node_b(dir.path(), move |cat, key| {
        if key.ends_with(names::META_FILE) && lock(&saw).is_empty() {
            lock(&saw).push(None);
            cat.refresh(id()).unwrap();
            lock(&saw).push(held_by_a(cat));
        }
    });
    put_node_a_upload(&bucket);
    cat.refresh_active();
    assert_eq!(*lock(&seen), [None, Some(true)], "the request missed it");
    assert_eq!(held_by_a(&cat), Some(true));
}
