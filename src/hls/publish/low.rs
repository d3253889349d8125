//! A low-latency rung's publishing (see [`crate::hls::lowlat`]): the
//! muxer's files are parts, grouped into segments written whole; with
//! encryption each part and each segment is encrypted here, on its own.

use super::{names, Publisher};
use crate::hls::keys::SegmentKey;
use crate::hls::lowlat::{Closed, Low, Part, View};
use crate::playlist::{MediaPlaylist, PlaylistType, Segment};
use crate::Error;

impl Publisher {
    /// [`Publisher::publish`] for a low-latency rung: the muxer's new
    /// files are parts; the segments they close are written whole; the
    /// playlist lists parts and a preload hint while the broadcast goes
    /// on, and is a plain `VOD` one at the end. The edge moves once the
    /// playlist is written.
    pub(super) fn publish_low(&mut self, muxed: MediaPlaylist, done: bool) -> Result<u64, Error> {
        let mut files = Vec::new();
        let mut bytes = 0;
        if let (None, Some(map)) = (&self.public.map, &muxed.map) {
            let rel = self.rel(map);
            bytes += self.local_size(&rel)?;
            files.push(rel);
            self.public.map = muxed.map.clone();
        }
        let before = self.taken;
        for (i, s) in muxed.segments.iter().enumerate() {
            let n = muxed.media_sequence + i as u64;
            if n >= self.taken {
                self.taken = n + 1;
                bytes += self.take_part(s, &mut files)?;
            }
        }
        let closed = if done { self.low_mut()?.close() } else { None };
        if let Some(c) = closed {
            let key = self.key_for(self.public.segments.len())?;
            bytes += self.write_segment(c, &mut files, key)?;
        }
        if self.taken == before && files.is_empty() && !done {
            return Ok(bytes);
        }
        self.public.independent_segments = true;
        self.public.fit_target(self.nominal);
        let (text, mut gone, then) = self.low_playlist(done)?;
        bytes += if done { text.len() as u64 } else { 0 };
        let parts = self.low_mut()?.expired(done);
        gone.extend(parts.iter().map(|p| self.rel(p)));
        let playlist = self.rel(names::PLAYLIST);
        self.queue
            .publish_then(files, (playlist, text), gone, Some(then))?;
        Ok(bytes)
    }

    /// Takes the muxer's file `s` as the next part; the bytes of the
    /// segment it closes, if it does.
    fn take_part(&mut self, s: &Segment, files: &mut Vec<String>) -> Result<u64, Error> {
        let data = bytes::Bytes::from(std::fs::read(self.store.path(self.id, &self.rel(&s.uri)))?);
        let independent = match s.uri.ends_with(".m4s") {
            true => crate::hls::fmp4::starts_with_sync(&data),
            false => crate::hls::ts::starts_with_key(&data),
        };
        if self.store.traits().remote {
            // Other nodes serve the part from the bucket.
            files.push(self.rel(&s.uri));
        }
        let (hint, _) = names::after_part(&s.uri, 0)
            .ok_or_else(|| Error::Media(format!("a part named {:?}", s.uri)))?;
        self.hint = hint;
        let start = self.parts_secs;
        self.parts_secs += s.duration;
        let part = Part {
            name: s.uri.clone(),
            duration: s.duration,
            independent,
            restart: independent && self.restarts_at(start),
        };
        let timing = (self.nominal as f64, self.nominal);
        // Encrypted, each part alone and each segment whole, under the key
        // of the segment the part belongs to (the one it may close first).
        let closes = self.low_mut()?.closes(&part, timing);
        let old = self.public.segments.len();
        let closing_key = if closes { self.key_for(old)? } else { None };
        let key = self.key_for(old + usize::from(closes))?;
        let served = match &key {
            Some((_, k, iv)) => self.seal_part(&s.uri, &data, (k, iv))?,
            None => data.clone(),
        };
        match self.low_mut()?.take(part, (data, served), timing) {
            Some(c) => self.write_segment(c, files, closing_key),
            None => Ok(0),
        }
    }

    /// The key of segment `n` when this rung encrypts: asked of the key
    /// series once per segment (it may start a new key there).
    pub(super) fn key_for(&mut self, n: usize) -> Result<Option<SegmentKey>, Error> {
        let Some(keys) = self.crypt.as_mut() else {
            return Ok(None);
        };
        if let Some((at, k)) = &self.open_key {
            if *at == n {
                return Ok(Some(k.clone()));
            }
        }
        let k = keys.for_segment(n)?;
        self.open_key = Some((n, k.clone()));
        Ok(Some(k))
    }

    /// Part `name` (plain `data`) encrypted alone, in memory and on disk.
    fn seal_part(
        &self,
        name: &str,
        data: &[u8],
        (key, iv): (&[u8; 16], &[u8; 16]),
    ) -> Result<bytes::Bytes, Error> {
        Ok(bytes::Bytes::from(self.put(
            &self.rel(name),
            data,
            Some((key, iv)),
        )?))
    }

    /// Writes segment `c` (its parts end to end) beside them; it is
    /// published with the playlist that first lists it.
    fn write_segment(
        &mut self,
        c: Closed,
        files: &mut Vec<String>,
        key: Option<SegmentKey>,
    ) -> Result<u64, Error> {
        let n = self.public.segments.len() as u64;
        let (_, name) = names::after_part(&self.hint, n)
            .ok_or_else(|| Error::Internal("a segment without parts".into()))?;
        let rel = self.rel(&name);
        let mut segment = Segment::new(c.duration, name);
        segment.discontinuity = c.restart;
        let written = match key {
            Some((tag, k, iv)) => {
                segment.key = tag;
                self.put(&rel, &c.bytes.concat(), Some((&k, &iv)))?
            }
            None => self.put(&rel, &c.bytes.concat(), None)?,
        };
        let size = written.len() as u64;
        self.public.segments.push(segment);
        self.sizes.push(size);
        files.push(rel);
        Ok(size)
    }

    /// The playlist text, the segments a window drops, and what moves the
    /// edge once it is written.
    fn low_playlist(
        &mut self,
        done: bool,
    ) -> Result<(String, Vec<String>, crate::hls::queue::Then), Error> {
        let first = self.window.map_or(0, |w| self.window_start(w));
        let gone = self.drop_before(first);
        if done && self.window.is_none() {
            self.public.playlist_type = Some(PlaylistType::Vod);
            self.public.ended = true;
        }
        let low = self
            .low
            .as_ref()
            .ok_or_else(|| Error::Internal("not low-latency".into()))?;
        let edge = low.edge();
        let all = &self.public.segments[..];
        let open_key = self
            .open_key
            .as_ref()
            .filter(|(n, _)| *n == all.len())
            .and_then(|(_, k)| k.0.as_ref());
        // A window's first segment restates the key it is under.
        let carried = all[..(first + 1).min(all.len())]
            .iter()
            .rev()
            .find_map(|s| s.key.as_ref());
        let view = View {
            discontinuities: all[..first].iter().filter(|s| s.discontinuity).count() as u64,
            segments: all,
            first,
            event: self.window.is_none(),
            map: self.public.map.as_deref(),
            target: self.public.target_duration,
            hint: &self.hint,
            keys: (carried, open_key),
        };
        let (mut text, mut at) = low.render(&view);
        if done && self.window.is_none() {
            text = self.public.to_string();
        }
        at.ended = done;
        Ok((text, gone, Box::new(move || edge.moved(at))))
    }

    fn low_mut(&mut self) -> Result<&mut Low, Error> {
        self.low
            .as_mut()
            .ok_or_else(|| Error::Internal("not low-latency".into()))
    }
}
