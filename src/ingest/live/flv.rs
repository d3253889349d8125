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
        let mut a = BytesMut::new();
        header(&mut a, false, true);
        assert_eq!(a[4], 1);
    }
}
