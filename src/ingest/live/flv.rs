//! FLV framing of an RTMP publish: RTMP carries FLV tag bodies, so the
//! broadcast's spool is an FLV file (header, then one tag per audio or
//! video message) that libavformat's `flv` demuxer reads like an upload.

use bytes::{BufMut, BytesMut};

/// An FLV tag's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    Audio = 8,
    Video = 9,
}

/// The file header (version 1, the streams it says it has) and the first
/// `PreviousTagSize` (0).
pub(crate) fn header(out: &mut BytesMut, audio: bool, video: bool) {
    out.put_slice(b"FLV\x01");
    out.put_u8(u8::from(audio) << 2 | u8::from(video));
    out.put_u32(9);
    out.put_u32(0);
}

/// One tag: type, body size (24 bits), timestamp (24 bits plus an
/// extension byte), stream id 0, body, then the tag's own size.
pub(crate) fn tag(out: &mut BytesMut, kind: Tag, ms: u32, body: &[u8]) {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX) & 0x00ff_ffff;
    out.put_u8(kind as u8);
    put_u24(out, len);
    put_u24(out, ms & 0x00ff_ffff);
    out.put_u8((ms >> 24) as u8);
    put_u24(out, 0);
    out.put_slice(&body[..len as usize]);
    out.put_u32(11 + len);
}

/// Whether a tag with `body` is a configuration (an AVC sequence header,
/// AAC's AudioSpecificConfig), not a frame.
pub(crate) fn config(kind: Tag, body: &[u8]) -> bool {
    let first = body.first().copied().unwrap_or(0);
    body.get(1) == Some(&0)
        && match kind {
            Tag::Video => first & 0x0f == 7,
            Tag::Audio => first >> 4 == 10,
        }
}

/// Whether a tag with `body` is a place a demuxer can start reading from:
/// a video keyframe (not a configuration), or, in a broadcast without
/// video, an audio frame (not AAC's configuration).
pub(crate) fn starts(kind: Tag, body: &[u8], video: bool) -> bool {
    let (Some(&b0), b1) = (body.first(), body.get(1)) else {
        return false;
    };
    match kind {
        // Enhanced RTMP (a FourCC after an extended header): its packet
        // type in the low bits, coded frames 1 and 3.
        Tag::Video if b0 & 0x80 != 0 => (b0 >> 4) & 7 == 1 && matches!(b0 & 0x0f, 1 | 3),
        Tag::Video => b0 >> 4 == 1 && (b0 & 0x0f != 7 || b1 == Some(&1)),
        Tag::Audio => !video && (b0 >> 4 != 10 || b1 == Some(&1)),
    }
}

fn put_u24(out: &mut BytesMut, v: u32) {
    out.put_slice(&v.to_be_bytes()[1..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_framed_as_the_flv_spec_says() {
        let mut b = BytesMut::new();
        header(&mut b, true, true);
        assert_eq!(&b[..], b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
        let mut t = BytesMut::new();
        tag(&mut t, Tag::Video, 0x0123_4567, &[0x17, 1, 2]);
        assert_eq!(
            &t[..],
            &[9, 0, 0, 3, 0x23, 0x45, 0x67, 0x01, 0, 0, 0, 0x17, 1, 2, 0, 0, 0, 14]
        );
        assert!(starts(Tag::Video, &[0x17, 1, 0], true));
        assert!(!starts(Tag::Video, &[0x17, 0, 0], true), "a configuration");
        assert!(!starts(Tag::Video, &[0x27, 1, 0], true), "an inter frame");
        assert!(
            starts(Tag::Video, &[0x91, b'h', b'v'], true),
            "enhanced RTMP"
        );
        assert!(!starts(Tag::Video, &[0x90, b'h', b'v'], true));
        assert!(!starts(Tag::Audio, &[0xaf, 1], true), "audio, with video");
        assert!(starts(Tag::Audio, &[0xaf, 1], false));
        assert!(!starts(Tag::Audio, &[0xaf, 0], false));
        assert!(config(Tag::Video, &[0x17, 0, 0]) && config(Tag::Audio, &[0xaf, 0]));
        assert!(!config(Tag::Video, &[0x17, 1, 0]) && !config(Tag::Audio, &[0xaf, 1]));
        let mut a = BytesMut::new();
        header(&mut a, false, true);
        assert_eq!(a[4], 1);
    }
}
