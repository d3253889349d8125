//! SVT-AV1 encoders open and close one at a time in the process.
//!
//! SVT-AV1 (1.4 here, and releases since) keeps the machine's processor
//! topology in one process-global pointer (`lp_group`, EbEncHandle.c): an
//! encoder's opening allocates it if it is null and writes it, and every
//! encoder's closing frees it and sets it null, whatever other encoders
//! are alive, with no lock. Two AV1 encoders opening or closing at once
//! (two rungs of a job, two jobs, two servers in one test process) can
//! write through a freed or null pointer: the whole server dies of a
//! SIGSEGV (seen once: the test binary, while several HDR tests ran AV1
//! groups side by side). The pointer is only used while an encoder opens,
//! so opening and closing under one lock is enough: [`open`] and
//! [`Encoder`]'s drop take it.

use ffmpeg_next::{encoder, frame, Packet};
use std::sync::{Condvar, Mutex};

static BUSY: Mutex<bool> = Mutex::new(false);
static FREE: Condvar = Condvar::new();

/// The turn to open or close an SVT-AV1 encoder (a `Send` guard, so an
/// encoder can move to its rung's thread).
struct Turn;

impl Turn {
    fn take() -> Turn {
        let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
        while *busy {
            busy = FREE.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy = true;
        Turn
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        *BUSY.lock().unwrap_or_else(|p| p.into_inner()) = false;
        FREE.notify_one();
    }
}

/// A rung's video encoder; an SVT-AV1 one is closed in its turn.
pub(crate) struct Encoder {
    // Fields drop in order: the encoder first, then the turn `drop` took.
    inner: encoder::Video,
    svt: bool,
    /// A frame was sent (SVT-AV1 1.4 waits for ever closing, or ending, a
    /// stream that had none: see [`Encoder::end_unused`]).
    fed: bool,
    closing: Option<Turn>,
}

impl Encoder {
    /// An encoder opened by any other library than SVT-AV1.
    pub(crate) fn other(inner: encoder::Video) -> Encoder {
        Encoder {
            inner,
            svt: false,
            fed: false,
            closing: None,
        }
    }

    /// Sends a frame to the encoder (this, not the library's own, so that
    /// the encoder knows it was fed).
    pub(crate) fn send_frame(&mut self, f: &frame::Video) -> Result<(), ffmpeg_next::Error> {
        self.fed = true;
        self.inner.send_frame(f)
    }

    /// Ends an encoder that was sent no frame, so that it can be closed:
    /// it gets one blank frame (its packets thrown away) and its end.
    pub(crate) fn end_unused(&mut self) {
        if std::mem::replace(&mut self.fed, true) {
            return;
        }
        let enc = &mut self.inner;
        let mut blank = frame::Video::new(enc.format(), enc.width(), enc.height());
        blank.set_pts(Some(0));
        let mut p = Packet::empty();
        if enc.send_frame(&blank).is_ok() && enc.send_eof().is_ok() {
            while enc.receive_packet(&mut p).is_ok() {}
        }
    }
}

/// Opens an encoder with `open` (SVT-AV1's when `svt`), in its turn.
pub(crate) fn open<E>(
    svt: bool,
    open: impl FnOnce() -> Result<encoder::Video, E>,
) -> Result<Encoder, E> {
    let turn = svt.then(Turn::take);
    let inner = open()?;
    drop(turn);
    Ok(Encoder {
        inner,
        svt,
        fed: false,
        closing: None,
    })
}

impl std::ops::Deref for Encoder {
    type Target = encoder::Video;
    fn deref(&self) -> &encoder::Video {
        &self.inner
    }
}

impl std::ops::DerefMut for Encoder {
    fn deref_mut(&mut self) -> &mut encoder::Video {
        &mut self.inner
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        if self.svt {
            // An encoder dropped before its first frame (a job that failed
            // or was stopped early) would hang its close, in its turn.
            self.end_unused();
            self.closing = Some(Turn::take());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svt_encoder() -> Encoder {
        let codec = ffmpeg_next::encoder::find_by_name("libsvtav1").unwrap();
        let ctx = ffmpeg_next::codec::context::Context::new_with_codec(codec);
        let mut enc = ctx.encoder().video().unwrap();
        enc.set_width(128);
        enc.set_height(128);
        enc.set_format(ffmpeg_next::format::Pixel::YUV420P);
        enc.set_time_base(ffmpeg_next::Rational(1, 30));
        let mut opts = ffmpeg_next::Dictionary::new();
        opts.set("preset", "12");
        opts.set("svtav1-params", "lp=1");
        open(true, || enc.open_with(opts)).unwrap()
    }

    /// Encoders opened and closed side by side, some never fed (a job
    /// that stopped early): each closes (SVT-AV1 alone would wait for
    /// ever on those), and none at the same time as another opens.
    #[test]
    fn svt_encoders_open_and_close_side_by_side_fed_or_not() {
        ffmpeg_next::init().unwrap();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    for j in 0..3 {
                        let mut e = svt_encoder();
                        if (i + j) % 2 == 0 {
                            e.end_unused();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn turns_are_taken_one_at_a_time() {
        let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let inside = inside.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let _t = Turn::take();
                        let n = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert_eq!(n, 0, "two turns at once");
                        inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
