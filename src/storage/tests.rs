//! The store on a folder: a video round trip, and generations swept.

use super::*;

#[test]
fn a_video_folder_round_trips() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let id = VideoId::random();
    store.create(id).unwrap();
    assert!(store.create(id).is_err());
    store.write(id, "720p/video.m3u8", b"#EXTM3U\n").unwrap();
    store.write(id, names::META_FILE, b"{}").unwrap();
    store.write(id, names::SOURCE_FILE, b"abc").unwrap();
    std::fs::create_dir(root.path().join("not-an-id")).unwrap();
    assert_eq!(store.list().unwrap(), vec![id]);
    assert_eq!(store.read(id, "720p/video.m3u8").unwrap(), b"#EXTM3U\n");
    assert_eq!(store.size(id), 8 + 2 + 3);
    store.remove_outputs(id, true, &[]);
    assert!(!store.exists(id, "720p/video.m3u8"));
    assert!(store.exists(id, names::SOURCE_FILE));
    store.remove_video(id).unwrap();
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn older_generations_are_swept() {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let id = VideoId::random();
    store.create(id).unwrap();
    let all = [
        "720p/seg_00000.ts",
        "720p/g1_seg_00000.ts",
        "720p/video.m3u8",
        "700p/seg_00000.ts",
        "keys/key0_00000.key",
        "keys/g1_key0_00000.key",
        "poster.jpg",
    ];
    for rel in all {
        store.write(id, rel, b"x").unwrap();
    }
    store.remove_stale(id, 1, &["720p"]);
    let mut left = Vec::new();
    for rel in all {
        if store.exists(id, rel) {
            left.push(rel);
        }
    }
    assert_eq!(
        left,
        [
            "720p/g1_seg_00000.ts",
            "720p/video.m3u8",
            "keys/g1_key0_00000.key",
            "poster.jpg"
        ]
    );
}
