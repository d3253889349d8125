//! The stored bytes an image is made from: the segments of one rendition
//! that cover a time (with the fMP4 init section before each, decrypted
//! when the video is encrypted), read through the store (a folder or a
//! bucket alike).

use crate::playlist::MediaPlaylist;
use crate::storage::{Store, VideoId};
use crate::Error;

/// One segment's bytes, and where it sits in the video.
pub(crate) struct Piece {
    pub start: f64,
    pub bytes: Vec<u8>,
}

/// The AES-128 key in force, and the segment's IV when the playlist says.
#[derive(Clone)]
struct KeyRef {
    uri: String,
    iv: Option<String>,
}

/// The segments of the media playlist at `playlist` that overlap
/// `[from, to]` (one instant when equal; the last segment for an instant
/// after the end of a finished video). `NotReady` while they are not out.
pub(crate) fn pieces(
    store: &Store,
    id: VideoId,
    playlist: &str,
    (from, to): (f64, f64),
) -> Result<Vec<Piece>, Error> {
    let text = String::from_utf8(store.read(id, playlist)?)
        .map_err(|_| Error::Media("a playlist that is not text".into()))?;
    let p = MediaPlaylist::parse(&text);
    let dir = playlist
        .rsplit_once('/')
        .map_or(String::new(), |(d, _)| format!("{d}/"));
    let (mut at, mut key, mut chosen) = (0.0, None::<KeyRef>, Vec::new());
    for (i, s) in p.segments.iter().enumerate() {
        if let Some(k) = &s.key {
            key = (k.method == "AES-128").then(|| KeyRef {
                uri: k.uri.clone().unwrap_or_default(),
                iv: k.iv.clone(),
            });
        }
        let end = at + s.duration;
        let last = i + 1 == p.segments.len();
        let beyond = p.ended && last && from >= end;
        if (end > from && at <= to) || beyond {
            let seq = p.media_sequence + i as u64;
            chosen.push((at, s.uri.clone(), key.clone(), seq));
        }
        at = end;
    }
    if chosen.is_empty() {
        return Err(Error::NotReady);
    }
    chosen
        .into_iter()
        .map(|(start, uri, key, seq)| {
            let bytes = segment(store, id, &dir, (&uri, p.map.as_deref()), key, seq)?;
            Ok(Piece { start, bytes })
        })
        .collect()
}

/// A segment's bytes as a demuxer can read them.
fn segment(
    store: &Store,
    id: VideoId,
    dir: &str,
    (uri, map): (&str, Option<&str>),
    key: Option<KeyRef>,
    seq: u64,
) -> Result<Vec<u8>, Error> {
    let name = |u: &str| u.split('?').next().unwrap_or("").to_owned();
    let mut bytes = store.read(id, &format!("{dir}{}", name(uri)))?;
    if let Some(k) = key {
        let key_name = name(&k.uri).rsplit('/').next().unwrap_or("").to_owned();
        let raw = store.read(
            id,
            &format!("{}/{key_name}", crate::storage::names::KEYS_DIR),
        )?;
        bytes = decrypt(&raw, k.iv.as_deref(), seq, &bytes)?;
    }
    if let Some(m) = map {
        let mut init = store.read(id, &format!("{dir}{}", name(m)))?;
        init.extend_from_slice(&bytes);
        bytes = init;
    }
    Ok(bytes)
}

/// AES-128-CBC with PKCS#7 padding (RFC 8216 §5.2): the IV is the
/// playlist's, or the media sequence number.
fn decrypt(key: &[u8], iv: Option<&str>, seq: u64, data: &[u8]) -> Result<Vec<u8>, Error> {
    let bad = || Error::Media("an encrypted segment that cannot be decrypted".into());
    let key: [u8; 16] = key.try_into().map_err(|_| bad())?;
    let mut ivb = [0u8; 16];
    match iv.and_then(|v| v.strip_prefix("0x").or_else(|| v.strip_prefix("0X"))) {
        Some(hex_iv) => {
            let v = hex::decode(hex_iv).map_err(|_| bad())?;
            ivb = v.try_into().map_err(|_| bad())?;
        }
        None => ivb[8..].copy_from_slice(&seq.to_be_bytes()),
    }
    let mut out = crate::ffi::aes128_cbc_decrypt(&key, &ivb, data).ok_or_else(bad)?;
    let pad = usize::from(*out.last().ok_or_else(bad)?);
    if pad == 0 || pad > 16 || pad > out.len() {
        return Err(bad());
    }
    out.truncate(out.len() - pad);
    Ok(out)
}
