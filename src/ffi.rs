//! The only `unsafe` code of the crate (`#![deny(unsafe_code)]` holds
//! everywhere else): the few libav calls ffmpeg-next 9 has no safe wrapper
//! for, and the system calls std has none for (`statvfs`, a self-`kill`
//! for failpoints). Each block has its `// SAFETY:` argument.
#![allow(unsafe_code)]

use ffmpeg_next::ffi;
use ffmpeg_next::format::context::Output;
use std::ffi::CString;
use std::path::Path;

/// Allocates an output context for libavformat's `hls` muxer writing its
/// playlist at `playlist`, without opening (and truncating) that file.
///
/// `format::output_as` would `avio_open` the playlist path at once, leaving
/// an empty playlist on disk until the first segment (LIBAV-NOTES.md). The
/// `hls` muxer is `AVFMT_NOFILE`: it opens its own files in `write_header`.
pub(crate) fn alloc_hls_output(playlist: &Path) -> Result<Output, crate::Error> {
    let url = CString::new(playlist.as_os_str().as_encoded_bytes())
        .map_err(|_| crate::Error::Internal("output path contains NUL".into()))?;
    let fmt = CString::new("hls").map_err(|_| crate::Error::Internal("format name".into()))?;
    let mut ctx: *mut ffi::AVFormatContext = std::ptr::null_mut();
    // SAFETY: `ctx` is a valid out-pointer; `fmt` and `url` are NUL-terminated
    // strings that outlive the call (libav copies the url). On success libav
    // hands us ownership of a fully initialised context.
    let ret = unsafe {
        ffi::avformat_alloc_output_context2(&mut ctx, std::ptr::null(), fmt.as_ptr(), url.as_ptr())
    };
    if ret < 0 || ctx.is_null() {
        return Err(crate::Error::Media(format!(
            "cannot create the hls muxer: {}",
            ffmpeg_next::Error::from(ret)
        )));
    }
    // SAFETY: `ctx` is a freshly allocated output context that nothing else
    // owns; `Output::wrap` takes ownership and frees it (and its `pb`, which
    // stays null for an AVFMT_NOFILE muxer) on drop.
    Ok(unsafe { Output::wrap(ctx) })
}

/// libav's `FF_QP2LAMBDA`: one quantiser step in lambda units.
pub(crate) const QP2LAMBDA: i32 = 118;

/// Sets `AVFrame.quality` (the per-frame qscale fixed-quality encoders
/// read); ffmpeg-next has a getter only.
pub(crate) fn set_frame_quality(f: &mut ffmpeg_next::frame::Video, quality: i32) {
    // SAFETY: `as_mut_ptr` is the frame's own live AVFrame, borrowed mutably;
    // `quality` is a plain int field.
    unsafe { (*f.as_mut_ptr()).quality = quality };
}

/// Bytes available to us on the filesystem holding `path` (`statvfs`), or
/// `None` if it cannot be asked. Not libav, but the crate's other `unsafe`.
pub(crate) fn free_bytes(path: &Path) -> Option<u64> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: `c` is a NUL-terminated path; `st` is a zeroed out-struct that
    // statvfs fills on success and that we read only then.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (r == 0).then_some(st.f_bavail * st.f_frsize)
}

/// Frees the disk blocks of `len` bytes of `file` from `offset`
/// (`fallocate` with `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`): the
/// file keeps its size, the range reads as zeros. Whole blocks are freed;
/// a partial block at either end is only zeroed.
pub(crate) fn punch_hole(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    };
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: `file` is an open descriptor for the duration of the call;
    // fallocate reads only its plain integer arguments.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), mode, offset, len) };
    match r {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Sets `AVCodecContext.max_pixels` before the decoder opens, so libavcodec
/// itself refuses frames larger than the cap (a mid-stream resolution
/// change cannot sneak past the probe's check).
pub(crate) fn set_max_pixels(ctx: &mut ffmpeg_next::codec::context::Context, max: u64) {
    // SAFETY: `as_mut_ptr` is the context's own live AVCodecContext, borrowed
    // mutably and not yet opened; `max_pixels` is a plain int64 field.
    unsafe { (*ctx.as_mut_ptr()).max_pixels = i64::try_from(max).unwrap_or(i64::MAX) };
}

/// Sets `AVFilterGraph.nb_threads` (0: one a core) of a graph with no
/// filters yet: libavfilter reads it when the first filter is added (the
/// graph's thread pool) and when each filter is configured (swscale's
/// slice threads).
pub(crate) fn set_graph_threads(graph: &mut ffmpeg_next::filter::Graph, threads: usize) {
    // SAFETY: `as_mut_ptr` is the graph's own live AVFilterGraph, borrowed
    // mutably; `nb_threads` is a plain int field.
    unsafe { (*graph.as_mut_ptr()).nb_threads = i32::try_from(threads).unwrap_or(0) };
}

/// A copy of a codec context's `extradata` (an encoder's global headers:
/// the SPS/PPS for libx264), empty when there is none.
pub(crate) fn extradata(ctx: &ffmpeg_next::codec::Context) -> Vec<u8> {
    // SAFETY: `as_ptr` is the context's own live AVCodecContext; libav keeps
    // `extradata` valid for `extradata_size` bytes (or null) while it lives,
    // and we copy them out before returning.
    unsafe {
        let c = ctx.as_ptr();
        copy_bytes((*c).extradata, (*c).extradata_size)
    }
}

/// A copy of codec parameters' `extradata` (avcC or Annex B for H.264).
pub(crate) fn par_extradata(par: &ffmpeg_next::codec::Parameters) -> Vec<u8> {
    // SAFETY: as above, for a live AVCodecParameters.
    unsafe {
        let p = par.as_ptr();
        copy_bytes((*p).extradata, (*p).extradata_size)
    }
}

/// # Safety
/// `data` must be null or valid for `size` bytes.
unsafe fn copy_bytes(data: *const u8, size: i32) -> Vec<u8> {
    match usize::try_from(size) {
        Ok(n) if n > 0 && !data.is_null() => std::slice::from_raw_parts(data, n).to_vec(),
        _ => Vec::new(),
    }
}

/// Clears a copied stream's `codec_tag`: the source container's tag (e.g.
/// mp4's `avc1`) means nothing to MPEG-TS and makes the muxer refuse it
/// (rust-ffmpeg's remux example does the same).
pub(crate) fn clear_codec_tag(ost: &mut ffmpeg_next::format::stream::StreamMut) {
    // SAFETY: the stream's own live AVCodecParameters, borrowed mutably
    // through `ost`; `codec_tag` is a plain integer field.
    unsafe { (*ost.parameters().as_mut_ptr()).codec_tag = 0 };
}

/// Sets the four-character code a muxer writes for a stream (`hvc1`).
pub(crate) fn set_codec_tag(ost: &mut ffmpeg_next::format::stream::StreamMut, tag: [u8; 4]) {
    // SAFETY: as in `clear_codec_tag`.
    unsafe { (*ost.parameters().as_mut_ptr()).codec_tag = u32::from_le_bytes(tag) };
}

/// The keyframes of a stream's demuxer index (an mp4's `stss`, an mkv's
/// cues): each one's entry number (an mp4 indexes every sample, so its
/// frame number in decoding order) and timestamp (stream time base); and
/// how many entries the index has.
pub(crate) fn index_keyframes(
    st: &ffmpeg_next::format::stream::Stream,
) -> (Vec<(usize, i64)>, usize) {
    // SAFETY: `as_ptr` is a live AVStream of an open input; the index
    // functions only read it, and each entry pointer is used before the
    // next call (nothing here adds entries).
    unsafe {
        let p = st.as_ptr() as *mut ffi::AVStream;
        let n = ffi::avformat_index_get_entries_count(p);
        let mut keys = Vec::new();
        for i in 0..n {
            let e = ffi::avformat_index_get_entry(p, i);
            if !e.is_null() && ((*e).flags() as u32) & (ffi::AVINDEX_KEYFRAME as u32) != 0 {
                keys.push((usize::try_from(i).unwrap_or(0), (*e).timestamp));
            }
        }
        (keys, usize::try_from(n).unwrap_or(0))
    }
}

/// (profile, level, sample aspect, width, height) of video codec
/// parameters: fields ffmpeg-next 9 has no accessor for.
pub(crate) fn video_par_fields(
    par: &ffmpeg_next::codec::Parameters,
) -> (i32, i32, (i32, i32), u32, u32) {
    // SAFETY: `as_ptr` is a live AVCodecParameters; we read plain fields.
    let p = unsafe { &*par.as_ptr() };
    (
        p.profile,
        p.level,
        (p.sample_aspect_ratio.num, p.sample_aspect_ratio.den),
        u32::try_from(p.width).unwrap_or(0),
        u32::try_from(p.height).unwrap_or(0),
    )
}

/// The profile of codec parameters (`FF_PROFILE_*`).
pub(crate) fn par_profile(par: &ffmpeg_next::codec::Parameters) -> i32 {
    // SAFETY: `as_ptr` is a live AVCodecParameters; we read a plain field.
    unsafe { (*par.as_ptr()).profile }
}

/// The bit rate of codec parameters (bit/s; 0 when unknown).
pub(crate) fn par_bit_rate(par: &ffmpeg_next::codec::Parameters) -> i64 {
    // SAFETY: `as_ptr` is a live AVCodecParameters; we read a plain field.
    unsafe { (*par.as_ptr()).bit_rate }.max(0)
}

/// True when the demuxer marked a packet to be dropped after decoding
/// (`AV_PKT_FLAG_DISCARD`: an edit list's hidden pre-roll, an overlapping
/// fragment); ffmpeg-next's flags do not carry it.
pub(crate) fn packet_discarded(p: &ffmpeg_next::Packet) -> bool {
    // SAFETY: `as_ptr` is the packet's own live AVPacket; we read an int.
    use ffmpeg_next::packet::Ref;
    unsafe { (*p.as_ptr()).flags & ffi::AV_PKT_FLAG_DISCARD != 0 }
}

/// Makes a decoder report bitstream errors instead of concealing them
/// (`err_recognition = explode|bitstream|buffer`), before it opens: a
/// source that is copied must decode cleanly.
pub(crate) fn set_strict_decoding(ctx: &mut ffmpeg_next::codec::context::Context) {
    // SAFETY: `as_mut_ptr` is the context's own live AVCodecContext, not
    // yet opened, borrowed mutably; `err_recognition` is a plain int.
    unsafe {
        (*ctx.as_mut_ptr()).err_recognition |=
            ffi::AV_EF_EXPLODE | ffi::AV_EF_BITSTREAM | ffi::AV_EF_BUFFER;
    }
}

/// Frees the rectangles a subtitle decoder allocated in `sub` (ffmpeg-next
/// gives `AVSubtitle` no destructor).
pub(crate) fn free_subtitle(sub: &mut ffmpeg_next::codec::subtitle::Subtitle) {
    // SAFETY: `sub` was filled by avcodec_decode_subtitle2 (or is zeroed),
    // and avsubtitle_free frees its rects and zeroes it, so a second call
    // (or the wrapper's drop) finds nothing left to free.
    unsafe { ffi::avsubtitle_free(sub.as_mut_ptr()) };
}

/// Ends the process at once, as `kill -9` would: no destructor runs,
/// nothing buffered is flushed (failpoints).
#[cfg(feature = "failpoints")]
pub(crate) fn kill_self() -> ! {
    // SAFETY: kill(2) and getpid(2) take and return plain integers and
    // touch no memory of ours.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    std::process::abort()
}

/// AES-128-CBC decryption of `data` (whole blocks) with `key` and `iv`,
/// through libavutil's AES (what the HLS demuxer uses): the segments an
/// encrypted video's images are made from. `None` for a length that is not
/// whole blocks or an allocation failure.
pub(crate) fn aes128_cbc_decrypt(key: &[u8; 16], iv: &[u8; 16], data: &[u8]) -> Option<Vec<u8>> {
    if data.is_empty() || !data.len().is_multiple_of(16) {
        return None;
    }
    let blocks = i32::try_from(data.len() / 16).ok()?;
    let mut out = vec![0u8; data.len()];
    let mut iv = *iv;
    // SAFETY: `av_aes_alloc` returns an owned context (or null, checked);
    // `av_aes_init` reads 16 key bytes; `av_aes_crypt` writes `blocks` × 16
    // bytes to `out` (that long) from `data` (that long) and updates the 16
    // bytes of `iv`; the context is freed with `av_free` once.
    unsafe {
        let ctx = ffi::av_aes_alloc();
        if ctx.is_null() {
            return None;
        }
        let ok = ffi::av_aes_init(ctx, key.as_ptr(), 128, 1) == 0;
        if ok {
            ffi::av_aes_crypt(
                ctx,
                out.as_mut_ptr(),
                data.as_ptr(),
                blocks,
                iv.as_mut_ptr(),
                1,
            );
        }
        ffi::av_free(ctx.cast());
        ok.then_some(out)
    }
}

/// `data` encrypted with AES-128 in CBC mode under `key` and `iv`, PKCS#7
/// padded: what HLS's `METHOD=AES-128` means for a whole segment (RFC
/// 8216 §5.2), with libavutil's AES (the muxer's own). `None` if libavutil
/// cannot allocate the context, or the data exceeds its block count.
pub(crate) fn aes128_cbc(key: &[u8; 16], iv: &[u8; 16], data: &[u8]) -> Option<Vec<u8>> {
    let pad = 16 - data.len() % 16;
    let mut buf = Vec::with_capacity(data.len() + pad);
    buf.extend_from_slice(data);
    buf.resize(data.len() + pad, pad as u8);
    let blocks = libc::c_int::try_from(buf.len() / 16).ok()?;
    let mut iv = *iv;
    // SAFETY: the context is checked, initialised for 128-bit encryption
    // and freed once; `buf` holds `blocks` whole blocks, encrypted in
    // place (libavutil allows dst == src), and `iv` is 16 bytes.
    unsafe {
        let ctx = ffi::av_aes_alloc();
        if ctx.is_null() {
            return None;
        }
        let ok = ffi::av_aes_init(ctx, key.as_ptr(), 128, 0) == 0;
        if ok {
            let p = buf.as_mut_ptr();
            ffi::av_aes_crypt(ctx, p, p, blocks, iv.as_mut_ptr(), 0);
        }
        ffi::av_free(ctx.cast());
        ok.then_some(buf)
    }
}

#[cfg(test)]
mod aes_tests {
    #[test]
    fn aes128_cbc_matches_nist_sp800_38a() {
        let hex = |s: &str| hex::decode(s).unwrap();
        let key: [u8; 16] = hex("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
        let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let out = super::aes128_cbc(&key, &iv, &hex("6bc1bee22e409f96e93d7e117393172a")).unwrap();
        // One block of data, one of PKCS#7 padding.
        assert_eq!(out.len(), 32);
        assert_eq!(out[..16], hex("7649abac8119b246cee98e9b12e9197d")[..]);
        assert_eq!(super::aes128_cbc(&key, &iv, b"").unwrap().len(), 16);
    }
}
