//! Publishing a rung as the muxer produces it. The `hls` muxer writes its
//! segments and its own playlist ([`names::MUXER_PLAYLIST`], scratch). After
//! every packet the job asks the [`Publisher`] whether that playlist has
//! changed; when it lists new segments, they and the public playlist that
//! lists them go to the job's publishing queue ([`super::queue`]), which
//! makes each segment durable (fsync, or an upload with an object store)
//! **before** it writes the playlist, atomically and durably. So a player,
//! a crash or a power cut never sees a playlist pointing at a segment that
//! is not there, and the encoder does not wait for the store.
//!
//! The public playlist is `EVENT` while the job runs and `VOD` with
//! `#EXT-X-ENDLIST` after [`Publisher::finish`]; its target duration never
//! drops below the nominal segment length.

mod low;

use super::lowlat::Low;
use super::queue::Queue;
use crate::playlist::{MediaPlaylist, PlaylistType};
use crate::storage::{names, Store, VideoId};
use crate::Error;
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

/// A sliding window lists at least this many segments.
const MIN_LIVE_SEGMENTS: usize = 3;
/// Segments kept after they left the window.
const GRACE_SEGMENTS: usize = 3;

/// One rung's publisher.
pub(crate) struct Publisher {
    store: Store,
    id: VideoId,
    /// The rung's folder relative to the video's (`720p`, or `""`).
    rung: String,
    /// The muxer's scratch playlist, and its (length, mtime) when last read.
    muxer_playlist: PathBuf,
    seen: Option<(u64, SystemTime)>,
    /// What players see now.
    public: MediaPlaylist,
    /// Bytes of each public segment (the init segment counted in the first).
    sizes: Vec<u64>,
    /// `--segment-seconds`: the lowest target duration.
    nominal: u64,
    /// A live kept nowhere: players see its last this many seconds, and
    /// the segments before (after a grace of a few) are removed.
    window: Option<u32>,
    /// Segments removed so far (the first this many of `public`).
    removed: usize,
    /// The job's publishing queue.
    queue: Queue,
    /// A low-latency rung's parts (see [`super::lowlat`]): the muxer's
    /// files are parts, and this groups them into segments.
    low: Option<Low>,
    /// Parts taken (the muxer's next file number), and the next's name.
    taken: u64,
    hint: String,
    /// Segments encrypted here, with this key series (fMP4: FFmpeg's
    /// muxer encrypts MPEG-TS only).
    crypt: Option<super::keys::Keys>,
    /// The key of the segment being made (a low-latency rung asks for it
    /// at each part): its index and key.
    open_key: Option<(usize, super::keys::SegmentKey)>,
    /// Where a live's publisher came back (seconds from the rung's start),
    /// before the segment that starts there is published.
    restarts: Vec<f64>,
    /// Seconds of the parts taken (a low-latency rung).
    parts_secs: f64,
}

/// A segment starting this close to a restart (seconds) starts it.
const RESTART_SLACK: f64 = 0.005;

impl Publisher {
    /// For the rung in `store`'s folder `rung` of video `id`. Removes a
    /// muxer playlist an earlier (crashed) run left, so nothing stale is
    /// ever published.
    pub(crate) fn new(
        store: &Store,
        id: VideoId,
        rung: &str,
        (nominal, window, low): (u32, Option<u32>, Option<f64>),
        queue: Queue,
    ) -> Publisher {
        let muxer_playlist = store.path(id, &rel(rung, names::MUXER_PLAYLIST));
        let _ = std::fs::remove_file(&muxer_playlist);
        Publisher {
            store: store.clone(),
            id,
            rung: rung.to_owned(),
            muxer_playlist,
            seen: None,
            public: MediaPlaylist::new(PlaylistType::Event, u64::from(nominal)),
            sizes: Vec::new(),
            nominal: u64::from(nominal),
            window,
            removed: 0,
            queue,
            low: low.map(|target| Low::new(id, rung, target)),
            taken: 0,
            hint: String::new(),
            crypt: None,
            open_key: None,
            restarts: Vec::new(),
            parts_secs: 0.0,
        }
    }

    /// A live's publisher came back at `at` seconds: the segment that
    /// starts there says `EXT-X-DISCONTINUITY` (see `media::restart`).
    pub(crate) fn discontinuity_at(&mut self, at: f64) {
        self.restarts.push(at);
    }

    /// True (once) when a segment or part starting at `start` seconds
    /// starts after a restart.
    fn restarts_at(&mut self, start: f64) -> bool {
        let Some(i) = self
            .restarts
            .iter()
            .position(|r| start >= r - RESTART_SLACK)
        else {
            return false;
        };
        self.restarts.remove(i);
        true
    }

    /// True when this rung encrypts its own segments.
    pub(crate) fn encrypts(&self) -> bool {
        self.crypt.is_some()
    }

    /// Encrypts each segment (AES-128, whole segments) with `keys` before
    /// it is published, and says so in the playlist (`EXT-X-KEY` after
    /// `EXT-X-MAP`: the init section stays clear).
    pub(crate) fn encrypt_with(&mut self, keys: super::keys::Keys) {
        self.crypt = Some(keys);
    }

    /// Where the muxer must write its playlist.
    pub(crate) fn muxer_playlist(&self) -> &std::path::Path {
        &self.muxer_playlist
    }

    /// True once at least one segment is public.
    pub(crate) fn has_segment(&self) -> bool {
        !self.public.segments.is_empty()
    }

    /// The playlist as published.
    pub(crate) fn published(&self) -> &MediaPlaylist {
        &self.public
    }

    /// Measured (peak, average) bit rates of the public segments, bit/s:
    /// the master playlist's `BANDWIDTH` and `AVERAGE-BANDWIDTH`.
    pub(crate) fn bitrates(&self) -> (u64, u64) {
        let (mut peak, mut bits, mut secs) = (0f64, 0f64, 0f64);
        for (s, size) in self.public.segments.iter().zip(&self.sizes) {
            if s.duration > 0.001 {
                let b = *size as f64 * 8.0;
                peak = peak.max(b / s.duration);
                bits += b;
                secs += s.duration;
            }
        }
        let avg = if secs > 0.0 { bits / secs } else { 0.0 };
        (peak.ceil() as u64, avg.ceil() as u64)
    }

    /// The public path of a file of this rung, relative to the video.
    pub(crate) fn rel(&self, name: &str) -> String {
        rel(&self.rung, name)
    }

    /// Publishes segments the muxer closed since the last call; returns
    /// the bytes they hold (0 when nothing changed).
    pub(crate) fn poll(&mut self) -> Result<u64, Error> {
        let Ok(meta) = std::fs::metadata(&self.muxer_playlist) else {
            return Ok(0);
        };
        let stamp = (
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        if self.seen == Some(stamp) {
            return Ok(0);
        }
        self.seen = Some(stamp);
        let text = std::fs::read_to_string(&self.muxer_playlist)?;
        match self.low.is_some() {
            true => self.publish_low(MediaPlaylist::parse(&text), false),
            false => self.publish(MediaPlaylist::parse(&text), false),
        }
    }

    /// After the muxer's trailer: publishes the last segment and the
    /// playlist as `VOD` with `#EXT-X-ENDLIST`; returns the new bytes.
    pub(crate) fn finish(&mut self) -> Result<u64, Error> {
        let text = std::fs::read_to_string(&self.muxer_playlist)?;
        let muxed = MediaPlaylist::parse(&text);
        if !muxed.ended {
            return Err(Error::Media(
                "the muxer left its playlist without ENDLIST".into(),
            ));
        }
        let bytes = match self.low.is_some() {
            true => self.publish_low(muxed, true)?,
            false => self.publish(muxed, true)?,
        };
        let _ = std::fs::remove_file(&self.muxer_playlist);
        Ok(bytes)
    }

    fn publish(&mut self, mut muxed: MediaPlaylist, done: bool) -> Result<u64, Error> {
        let known = self.public.segments.len();
        if muxed.segments.len() < known {
            return Err(Error::Media("the muxer's playlist lost segments".into()));
        }
        if muxed.segments.len() == known && !done {
            return Ok(0);
        }
        let mut files = Vec::new();
        if known == 0 {
            files.extend(muxed.map.as_ref().map(|m| self.rel(m)));
        }
        let mut bytes = files
            .iter()
            .map(|f| self.local_size(f))
            .sum::<io::Result<u64>>()?;
        let mut start = 0.0;
        for (i, s) in muxed.segments.iter_mut().enumerate() {
            let at = start;
            start += s.duration;
            if i < known {
                s.key = self.public.segments[i].key.take();
                s.discontinuity = self.public.segments[i].discontinuity;
                continue;
            }
            s.discontinuity = self.restarts_at(at);
            let rel = self.rel(&s.uri);
            s.key = self.seal(i, &rel)?.or(s.key.take());
            let size = self.local_size(&rel)?;
            self.sizes.push(size);
            bytes += size;
            files.push(rel);
        }
        self.public.segments = muxed.segments;
        self.public.map = muxed.map;
        self.public.independent_segments = true;
        if done {
            self.public.playlist_type = Some(PlaylistType::Vod);
            self.public.ended = true;
        }
        self.public.fit_target(self.nominal);
        let playlist = self.rel(names::PLAYLIST);
        if let Some(window) = self.window {
            let (text, gone) = self.slide(window);
            self.queue.publish_sliding(files, playlist, text, gone)?;
            return Ok(bytes);
        }
        let text = self.public.to_string();
        // The finished playlist counts too (a long one is tens of KB).
        bytes += if done { text.len() as u64 } else { 0 };
        self.queue.publish(files, playlist, text)?;
        Ok(bytes)
    }

    /// The sliding window's playlist (the last `window` seconds, at least
    /// [`MIN_LIVE_SEGMENTS`]; a live playlist: no type, its media
    /// sequence moving on), and the segments to remove.
    fn slide(&mut self, window: u32) -> (String, Vec<String>) {
        let first = self.window_start(window);
        let all = &self.public.segments;
        let mut segments = all[first..].to_vec();
        // The key the first shown segment is under, when an earlier one
        // (slid out) set it.
        if let Some(s) = segments.first_mut().filter(|s| s.key.is_none()) {
            s.key = all[..first].iter().rev().find_map(|s| s.key.clone());
        }
        let slid = all[..first].iter().filter(|s| s.discontinuity).count();
        let shown = MediaPlaylist {
            target_duration: self.public.target_duration,
            media_sequence: first as u64,
            discontinuity_sequence: slid as u64,
            playlist_type: None,
            independent_segments: true,
            iframes_only: false,
            map: self.public.map.clone(),
            segments,
            ended: false,
        };
        (shown.to_string(), self.drop_before(first))
    }

    /// The first segment a window of `window` seconds shows.
    fn window_start(&self, window: u32) -> usize {
        let all = &self.public.segments;
        let mut first = all.len();
        let mut secs = 0.0;
        while first > 0 && (secs < f64::from(window) || all.len() - first < MIN_LIVE_SEGMENTS) {
            first -= 1;
            secs += all[first].duration;
        }
        first
    }

    /// The segments out of a window starting at `first` for
    /// [`GRACE_SEGMENTS`] (a player may still fetch what its previous
    /// reload listed), not yet removed.
    fn drop_before(&mut self, first: usize) -> Vec<String> {
        let upto = first.saturating_sub(GRACE_SEGMENTS);
        let gone = (self.removed..upto.max(self.removed))
            .map(|i| self.rel(&self.public.segments[i].uri))
            .collect();
        self.removed = upto.max(self.removed);
        gone
    }

    /// Encrypts segment `n` (at `rel`) in place when this rung encrypts
    /// its own; the `EXT-X-KEY` it starts with, if a key starts there.
    fn seal(&mut self, n: usize, rel: &str) -> Result<Option<crate::playlist::Key>, Error> {
        let Some(keys) = self.crypt.as_mut() else {
            return Ok(None);
        };
        let (tag, key, iv) = keys.for_segment(n)?;
        let plain = std::fs::read(self.store.path(self.id, rel))?;
        self.put(rel, &plain, Some((&key, &iv)))?;
        Ok(tag)
    }

    /// Writes `data` to this video's `rel` (this node's folder), encrypted
    /// under `key` (AES-128-CBC, the key and IV) when given, replacing the
    /// file whole; returns the bytes written.
    fn put(
        &self,
        rel: &str,
        data: &[u8],
        key: Option<(&[u8; 16], &[u8; 16])>,
    ) -> Result<Vec<u8>, Error> {
        let bytes = match key {
            Some((k, iv)) => crate::ffi::aes128_cbc(k, iv, data)
                .ok_or_else(|| Error::Internal("AES-128 encryption failed".into()))?,
            None => data.to_vec(),
        };
        crate::storage::fsio::replace(&self.store.path(self.id, rel), &bytes)?;
        Ok(bytes)
    }

    /// The size of a file the muxer closed (in this node's folder).
    fn local_size(&self, rel: &str) -> io::Result<u64> {
        Ok(std::fs::metadata(self.store.path(self.id, rel))?.len())
    }
}

fn rel(rung: &str, name: &str) -> String {
    if rung.is_empty() {
        name.to_owned()
    } else {
        format!("{rung}/{name}")
    }
}
