//! [`VideoId`]: a video's id, parsed once at the edge (an HTTP path, a
//! folder name) and trusted everywhere inside.

use std::fmt;

/// Length of a video id (nanoid's default).
pub const ID_LEN: usize = 21;

/// nanoid's default alphabet: `A-Za-z0-9_-`.
pub(crate) fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A well-formed video id: exactly [`ID_LEN`] characters of nanoid's
/// alphabet, so it is always a safe single path component. `Copy`: it is
/// 21 bytes and passed everywhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VideoId([u8; ID_LEN]);

impl VideoId {
    /// Parses an untrusted string; `None` unless it is a canonical id.
    pub fn parse(s: &str) -> Option<VideoId> {
        let b = s.as_bytes();
        if b.len() != ID_LEN || !b.iter().copied().all(is_id_char) {
            return None;
        }
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(b);
        Some(VideoId(id))
    }

    /// A fresh random id (nanoid, 126 bits).
    pub fn random() -> VideoId {
        loop {
            // nanoid's default alphabet and length always parse; the loop
            // only guards against a future change of its defaults.
            if let Some(id) = VideoId::parse(&nanoid::nanoid!()) {
                return id;
            }
        }
    }

    /// The id as text (always ASCII).
    pub fn as_str(&self) -> &str {
        // Every byte is in `is_id_char`, so this is valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The first 8 characters, for thread names and short logs.
    pub fn short(&self) -> &str {
        &self.as_str()[..8]
    }
}

impl fmt::Display for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VideoId({})", self.as_str())
    }
}

impl AsRef<str> for VideoId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<std::path::Path> for VideoId {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(self.as_str())
    }
}

impl serde::Serialize for VideoId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for VideoId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        VideoId::parse(&s).ok_or_else(|| serde::de::Error::custom("not a video id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_exactly_nanoids() {
        let id = VideoId::parse("V1StGXR8_Z5jdHi6B-myT").unwrap();
        assert_eq!(id.as_str(), "V1StGXR8_Z5jdHi6B-myT");
        assert_eq!(id.short(), "V1StGXR8");
        for bad in [
            "V1StGXR8_Z5jdHi6B-my",
            "V1StGXR8_Z5jdHi6B-myT1",
            "V1StGXR8/Z5jdHi6B-myT",
            "..StGXR8_Z5jdHi6B-myT",
            "V1StGXR8%Z5jdHi6B-myT",
            "V1StGXR8_Z5jdHi6B-my\u{e9}",
            "",
        ] {
            assert!(VideoId::parse(bad).is_none(), "{bad}");
        }
        let r = VideoId::random();
        assert_eq!(VideoId::parse(r.as_str()), Some(r));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"V1StGXR8_Z5jdHi6B-myT\"");
        assert_eq!(serde_json::from_str::<VideoId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<VideoId>("\"../x\"").is_err());
    }
}
