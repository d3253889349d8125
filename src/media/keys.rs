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

use crate::Error;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Folder of a video's keys, inside its storage folder.
pub(crate) const KEYS_DIR: &str = "keys";
/// The key-info file the muxer reads.
const KEY_INFO: &str = "keyinfo";

/// Fills `buf` from the kernel's CSPRNG.
fn random(buf: &mut [u8]) -> Result<(), Error> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key state of one encrypted transcode.
pub(crate) struct Keys {
    dir: PathBuf,
    id: String,
    /// Seconds of video per key (`None`: one key for the whole video).
    period: Option<f64>,
    /// Start time of the next key period.
    next: f64,
    /// Number of the current key.
    index: u32,
    /// The rung whose series this is (`None`: a single rendition).
    slot: Option<usize>,
}

impl Keys {
    /// Creates the first key for video `id` under `video_dir`; returns the
    /// key state and the key-info path to give the muxer.
    pub(crate) fn start(
        video_dir: &Path,
        id: &str,
        slot: Option<usize>,
        rotation_segments: u32,
        segment_seconds: u32,
    ) -> Result<(Keys, PathBuf), Error> {
        let dir = video_dir.join(KEYS_DIR);
        std::fs::create_dir_all(&dir)?;
        let period =
            (rotation_segments > 0).then(|| f64::from(rotation_segments * segment_seconds));
        let mut keys = Keys {
            dir,
            id: id.to_owned(),
            period,
            next: period.unwrap_or(f64::INFINITY),
            index: 0,
            slot,
        };
        keys.write_key()?;
        let info = keys.info_path();
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
        let name = match self.slot {
            Some(r) => format!("key{r}_{:05}.key", self.index),
            None => format!("key_{:05}.key", self.index),
        };
        let path = self.dir.join(&name);
        crate::catalog::write_atomic(&path, &key)?;
        let path_str = path
            .to_str()
            .ok_or_else(|| Error::Internal("storage path is not UTF-8".into()))?;
        let info = format!("/keys/{}/{name}\n{path_str}\n{}\n", self.id, hex(&iv));
        crate::catalog::write_atomic(&self.info_path(), info.as_bytes())?;
        Ok(())
    }

    /// The key-info file of this series.
    fn info_path(&self) -> PathBuf {
        match self.slot {
            Some(r) => self.dir.join(format!("{KEY_INFO}{r}")),
            None => self.dir.join(KEY_INFO),
        }
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

/// True for a key file name we serve (`key_NNNNN.key`, or `keyR_NNNNN.key`
/// for rung R of a ladder).
pub fn is_key_name(name: &str) -> bool {
    let b = name.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    match b.len() {
        13 => name.starts_with("key_") && name.ends_with(".key") && digits(&b[4..9]),
        14 => {
            name.starts_with("key")
                && name.ends_with(".key")
                && digits(&b[3..4])
                && b[4] == b'_'
                && digits(&b[5..10])
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_exact() {
        assert!(is_key_name("key_00000.key"));
        assert!(is_key_name("key_12345.key"));
        assert!(is_key_name("key3_00001.key"));
        assert!(!is_key_name("keyx_00001.key"));
        assert!(!is_key_name("key3-00001.key"));
        for bad in [
            "key_0000.key",
            "key_000000.key",
            "key_0000a.key",
            "../keyinfo",
            "keyinfo",
            "key_00000.keyx",
        ] {
            assert!(!is_key_name(bad), "{bad}");
        }
    }

    #[test]
    fn rotation_starts_a_new_key_at_each_period() {
        let dir = tempfile::tempdir().unwrap();
        let (mut k, info) = Keys::start(dir.path(), "ID", None, 2, 6).unwrap();
        let first = std::fs::read_to_string(&info).unwrap();
        assert!(first.starts_with("/keys/ID/key_00000.key\n"));
        k.before_keyframe(6.0).unwrap();
        assert_eq!(std::fs::read_to_string(&info).unwrap(), first);
        k.before_keyframe(12.0).unwrap();
        let second = std::fs::read_to_string(&info).unwrap();
        assert!(second.starts_with("/keys/ID/key_00001.key\n"), "{second}");
        assert_eq!(
            std::fs::read(dir.path().join("keys/key_00001.key"))
                .unwrap()
                .len(),
            16
        );
    }
}
