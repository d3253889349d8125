//! AES-128 keys for HLS encryption (RFC 8216 §5.2), applied by the
//! libavformat `hls` muxer from a key-info file (`hls_key_info_file`:
//! key URI, key file path, IV). A fresh random key and IV per video, and a
//! new one every `rotation` segments (`periodic_rekey` makes the muxer
//! re-read the file at each segment start; we rewrite it just before the
//! keyframe that opens a new key period).
//!
//! Keys live in `storage/<id>/keys/`, which `/play` can never serve (its
//! names are flat and typed); they are served at `/keys/{id}/key_NNNNN.key`
//! to holders of a playback or API token.

use crate::playlist::Key;
use crate::storage::{names, Store, VideoId};
use crate::Error;
use std::path::PathBuf;

/// The key-info file the muxer reads (scratch in the keys folder; never
/// served: only [`names::is_key_name`] names are).
const KEY_INFO: &str = "keyinfo";

/// Fills `buf` from the operating system's CSPRNG.
fn random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|e| Error::Internal(format!("no random bytes: {e}")))
}

/// A segment's key: the `EXT-X-KEY` it starts with (if a key starts
/// there), the key, its IV.
pub(crate) type SegmentKey = (Option<Key>, [u8; 16], [u8; 16]);

/// The key state of one encrypted transcode.
pub(crate) struct Keys {
    store: Store,
    id: VideoId,
    generation: u32,
    /// Seconds of video per key (`None`: one key for the whole video).
    period: Option<f64>,
    /// Start time of the next key period.
    next: f64,
    /// Number of the current key.
    index: u32,
    /// The rung whose series this is (`None`: a single rendition).
    slot: Option<usize>,
    /// The current key, its IV and its URI (for segments encrypted here).
    current: ([u8; 16], [u8; 16], String),
    /// Segments per key (0: one key), for [`Keys::for_segment`].
    rotation: u32,
}

impl Keys {
    /// Creates the first key of `generation` for video `id`; returns the
    /// key state and the key-info path to give the muxer.
    pub(crate) fn start(
        store: &Store,
        id: VideoId,
        generation: u32,
        slot: Option<usize>,
        rotation_segments: u32,
        segment_seconds: u32,
    ) -> Result<(Keys, PathBuf), Error> {
        let period =
            (rotation_segments > 0).then(|| f64::from(rotation_segments * segment_seconds));
        let mut keys = Keys {
            store: store.clone(),
            id,
            generation,
            period,
            next: period.unwrap_or(f64::INFINITY),
            index: 0,
            slot,
            current: ([0; 16], [0; 16], String::new()),
            rotation: rotation_segments,
        };
        keys.write_key()?;
        let info = store.path(id, &keys.info_rel());
        Ok((keys, info))
    }

    /// Writes key `index` and points the key-info file at it (atomically:
    /// the muxer may read it at any segment start).
    fn write_key(&mut self) -> Result<(), Error> {
        let (mut key, mut iv) = ([0u8; 16], [0u8; 16]);
        random(&mut key)?;
        random(&mut iv)?;
        // Each rung has its own series (its muxer re-reads its own key-info
        // file at its own segment starts): `key3_00001.key` for rung 3.
        let name = names::key_name(self.generation, self.slot, self.index);
        let rel = format!("{}/{name}", names::KEYS_DIR);
        // Served from the store, read by the muxer from this node.
        self.store.write_both(self.id, &rel, &key)?;
        let path = self.store.path(self.id, &rel);
        let path_str = path
            .to_str()
            .ok_or_else(|| Error::Internal("storage path is not UTF-8".into()))?;
        let uri = format!("/keys/{}/{name}", self.id);
        let info = format!("{uri}\n{path_str}\n{}\n", hex::encode(iv));
        self.current = (key, iv, uri);
        self.store
            .write_local(self.id, &self.info_rel(), info.as_bytes())?;
        Ok(())
    }

    /// The key-info file of this series, relative to the video.
    fn info_rel(&self) -> String {
        match self.slot {
            Some(r) => format!("{}/{KEY_INFO}{r}", names::KEYS_DIR),
            None => format!("{}/{KEY_INFO}", names::KEYS_DIR),
        }
    }

    /// For segments encrypted here (fMP4, which FFmpeg's muxer cannot
    /// encrypt): the key of segment `n` (a new one every `rotation`
    /// segments) and the `EXT-X-KEY` that starts it, when one does.
    pub(crate) fn for_segment(&mut self, n: usize) -> Result<SegmentKey, Error> {
        let index = match self.rotation {
            0 => 0,
            r => u32::try_from(n / r as usize).unwrap_or(u32::MAX),
        };
        let starts = n == 0 || index != self.index;
        if index != self.index {
            self.index = index;
            self.write_key()?;
        }
        let (key, iv, uri) = &self.current;
        let tag = starts.then(|| Key {
            method: "AES-128".into(),
            uri: Some(uri.clone()),
            iv: Some(format!("0x{}", hex::encode(iv))),
        });
        Ok((tag, *key, *iv))
    }

    /// Called before each keyframe packet showing at `secs` is written:
    /// starts a new key when a key period begins there.
    pub(crate) fn before_keyframe(&mut self, secs: f64) -> Result<(), Error> {
        let Some(period) = self.period else {
            return Ok(());
        };
        // A tolerance of a millisecond: boundaries are on the keyframe grid.
        if secs + 0.001 >= self.next {
            while self.next <= secs + 0.001 {
                self.next += period;
            }
            self.index += 1;
            self.write_key()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_starts_a_new_key_at_each_period() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = VideoId::random();
        store.create(id).unwrap();
        let (mut k, info) = Keys::start(&store, id, 0, None, 2, 6).unwrap();
        let first = std::fs::read_to_string(&info).unwrap();
        assert!(first.starts_with(&format!("/keys/{id}/key_00000.key\n")));
        k.before_keyframe(6.0).unwrap();
        assert_eq!(std::fs::read_to_string(&info).unwrap(), first);
        k.before_keyframe(12.0).unwrap();
        let second = std::fs::read_to_string(&info).unwrap();
        assert!(
            second.starts_with(&format!("/keys/{id}/key_00001.key\n")),
            "{second}"
        );
        assert_eq!(store.read(id, "keys/key_00001.key").unwrap().len(), 16);
        let (_, info) = Keys::start(&store, id, 3, Some(1), 0, 6).unwrap();
        let gen3 = std::fs::read_to_string(&info).unwrap();
        assert!(
            gen3.starts_with(&format!("/keys/{id}/g3_key1_00000.key\n")),
            "{gen3}"
        );
    }
}
