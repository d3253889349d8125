//! The object-store backend against a real S3 server (s3s-fs: signatures
//! checked, presigned URLs checked, conditional PUTs, multipart uploads):
//! the same contract the file backend keeps, and what only a bucket does.

use crate::common::s3::S3Server;
use crate::common::{request, wait_until};
use hlsd::storage::objects::{FileObjects, Objects};
use hlsd::storage::s3::{S3Objects, S3Settings};
use std::time::Duration;

fn settings(s3: &S3Server, prefix: &str) -> S3Settings {
    S3Settings {
        bucket: s3.bucket.clone(),
        prefix: prefix.to_owned(),
        endpoint: Some(s3.endpoint()),
        region: s3.region.clone(),
        path_style: true,
        access_key_id: s3.access_key.clone(),
        secret_access_key: s3.secret_key.clone(),
        session_token: None,
    }
}

/// A GET of a full URL on the S3 server (path and query), unsigned.
fn get_url(s3: &S3Server, url: &str) -> crate::common::Response {
    let path = url.split_once(&s3.addr.to_string()).unwrap().1;
    request(s3.addr, "GET", path, &[], &[])
}

/// The contract both backends keep. `exclusive`: the store
/// refuses conditional writes that lost (Garage does not).
fn contract(o: &dyn Objects, scratch: &std::path::Path, exclusive: bool) {
    let miss = o.get("v1/none");
    assert_eq!(
        miss.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::NotFound)
    );
    o.put("v1/meta.json", b"{}").unwrap();
    o.put("v1/meta.json", b"{\"a\":1}").unwrap();
    assert_eq!(o.get("v1/meta.json").unwrap(), b"{\"a\":1}");
    if exclusive {
        let again = o.put_new("v1/meta.json", b"{}");
        assert_eq!(
            again.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::AlreadyExists)
        );
    }
    o.put_new("v2/meta.json", b"new").unwrap();
    let (got, tag) = o.get_tagged("v2/meta.json").unwrap();
    assert_eq!(got, b"new");
    let tag2 = o.put_if("v2/meta.json", b"newer", tag.as_deref()).unwrap();
    if tag.is_some() && exclusive {
        // A writer holding the old version loses; one holding the new wins.
        let stale = o.put_if("v2/meta.json", b"lost", tag.as_deref());
        assert_eq!(
            stale.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::AlreadyExists)
        );
        let absent = o.put_if("v2/meta.json", b"lost", None);
        assert_eq!(
            absent.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::AlreadyExists)
        );
        o.put_if("v2/meta.json", b"newer", tag2.as_deref()).unwrap();
    }
    o.put("v2/meta.json", b"new").unwrap();
    assert_eq!(o.get("v2/meta.json").unwrap(), b"new");
    let file = scratch.join("seg.ts");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(o.upload("v1/720p/seg_00000.ts", &file).unwrap(), 200_000);
    assert_eq!(o.get("v1/720p/seg_00000.ts").unwrap(), bytes);
    assert_eq!(o.size_of("v1/720p/seg_00000.ts").unwrap(), Some(200_000));
    assert_eq!(o.size_of("v1/720p/none.ts").unwrap(), None);
    assert_eq!(o.stat("v1/720p/seg_00000.ts").unwrap().unwrap().0, 200_000);
    let part = o.get_range("v1/720p/seg_00000.ts", 1000, 300).unwrap();
    assert_eq!(part, bytes[1000..1300]);
    assert_eq!(o.children("").unwrap(), ["v1", "v2"]);
    assert_eq!(o.children("v1").unwrap(), ["720p"]);
    assert_eq!(
        o.list("v1").unwrap(),
        [
            ("720p/seg_00000.ts".to_owned(), 200_000),
            ("meta.json".to_owned(), 7)
        ]
    );
    o.delete("v1/meta.json").unwrap();
    o.delete("v1/meta.json").unwrap();
    assert_eq!(o.size_of("v1/meta.json").unwrap(), None);
    assert_eq!(o.delete_all("v1").unwrap(), 1);
    assert!(o.list("v1").unwrap().is_empty());
    assert_eq!(o.list("v2").unwrap().len(), 1);
}

#[test]
fn a_folder_keeps_the_objects_contract() {
    let root = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    contract(
        &FileObjects::open(root.path()).unwrap(),
        scratch.path(),
        true,
    );
}

#[test]
fn a_bucket_keeps_the_objects_contract() {
    let s3 = S3Server::start();
    let scratch = tempfile::tempdir().unwrap();
    let o = S3Objects::open(&settings(&s3, "lib/a")).unwrap();
    contract(&o, scratch.path(), s3.exclusive);
    // Under the prefix, and nowhere else.
    assert_eq!(s3.keys(), ["lib/a/v2/meta.json"]);
    assert_eq!(o.conditional_writes("_probe/cas").unwrap(), s3.exclusive);
    assert_eq!(s3.keys(), ["lib/a/v2/meta.json"]);
}

#[test]
fn a_large_file_goes_up_in_parts_and_comes_back_whole() {
    let s3 = S3Server::start();
    let scratch = tempfile::tempdir().unwrap();
    let o = S3Objects::open(&settings(&s3, "")).unwrap();
    // Past object_store's 10 MiB single-PUT buffer: a multipart upload.
    let big: Vec<u8> = (0..(23u32 << 20) / 4)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    let file = scratch.path().join("download.mp4");
    std::fs::write(&file, &big).unwrap();
    assert_eq!(o.upload("v/download.mp4", &file).unwrap(), big.len() as u64);
    assert!(o.get("v/download.mp4").unwrap() == big);
    assert_eq!(
        o.list("v").unwrap(),
        [("download.mp4".into(), big.len() as u64)]
    );
    // Without a prefix, the bucket's top lists everything.
    let all = o.list("").unwrap();
    assert_eq!(all, [("v/download.mp4".into(), big.len() as u64)]);
}

#[test]
fn wrong_credentials_are_refused() {
    let s3 = S3Server::start();
    let mut bad = settings(&s3, "");
    bad.secret_access_key = "0".repeat(40);
    let o = S3Objects::open(&bad).unwrap();
    assert!(o.put("v/meta.json", b"{}").is_err());
    assert!(s3.keys().is_empty());
}

#[test]
fn presigned_urls_open_one_object_for_a_while_and_nothing_else() {
    let s3 = S3Server::start();
    let o = S3Objects::open(&settings(&s3, "p")).unwrap();
    o.put("v/720p/seg_00000.ts", b"segment bytes").unwrap();
    let url = o
        .presign_get("v/720p/seg_00000.ts", Duration::from_secs(3600))
        .unwrap()
        .unwrap();
    assert!(url.starts_with(&format!("{}/hlsd/p/v/720p/seg_00000.ts?", s3.endpoint())));
    let r = get_url(&s3, &url);
    assert_eq!((r.status, &r.body[..]), (200, &b"segment bytes"[..]));
    // Unsigned, tampered, or for another key: refused by the server.
    assert_eq!(get_url(&s3, url.split('?').next().unwrap()).status, 403);
    let sig = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut tampered = url.clone().into_bytes();
    tampered[sig] = if tampered[sig] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        get_url(&s3, &String::from_utf8(tampered).unwrap()).status,
        403
    );
    let other = url.replace("seg_00000.ts", "seg_00001.ts");
    assert_eq!(get_url(&s3, &other).status, 403);
    // Expired: refused once its second has passed.
    let short = o
        .presign_get("v/720p/seg_00000.ts", Duration::from_secs(1))
        .unwrap()
        .unwrap();
    // Refused once its second has passed: 403 (AWS, s3s) or 400 (Garage).
    wait_until("the short URL to expire", || {
        matches!(get_url(&s3, &short).status, 400 | 403)
    });
    assert_eq!(get_url(&s3, &url).status, 200);
}
