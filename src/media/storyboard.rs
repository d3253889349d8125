//! Storyboards: thumbnails of the video every few seconds, tiled into
//! JPEG sprite sheets, and `storyboard.vtt`, a WebVTT thumbnail track
//! whose cues name a sheet and a tile (`storyboard_0.jpg#xywh=160,0,160,90`:
//! the format video.js, Vidstack and JW Player read for seek-bar
//! previews). Tiles come from the frames the job already filters for its
//! top rung (no second decode); a sheet is encoded as soon as it is full,
//! so at most one sheet is held in memory.

use crate::storage::{names, Store, VideoId};
use crate::Error;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::frame;
use ffmpeg_next::software::scaling;
use std::fmt::Write;

/// Tile width, pixels.
pub(crate) const TILE_WIDTH: u32 = 160;
/// Tiles per sheet row, and rows per sheet.
const COLS: u32 = 10;
const ROWS: u32 = 10;
/// Fewest and most seconds between two tiles.
const MIN_INTERVAL: f64 = 2.0;
const MAX_INTERVAL: f64 = 10.0;
/// Most tiles (5 sheets): longer videos get a wider interval.
const MAX_TILES: u32 = 500;
/// Tiles for a video of unknown length are every this many seconds.
const UNKNOWN_INTERVAL: f64 = 10.0;

/// Collects tiles while frames go by.
pub(crate) struct Storyboard {
    interval: f64,
    /// The next tile's time, seconds.
    next: f64,
    tiles: u32,
    tile: Option<(u32, u32)>,
    sheet: Option<frame::Video>,
    /// Encoded sheets, in order.
    sheets: Vec<Vec<u8>>,
    /// A chunk's storyboard (`media::chunks`): its tiles are scaled here
    /// and placed by the job's.
    loose: Option<Vec<frame::Video>>,
}

impl Storyboard {
    /// For a video of `duration` seconds (if known).
    pub(crate) fn new(duration: Option<f64>) -> Self {
        let interval = match duration {
            Some(d) if d > 0.0 => (d / 100.0)
                .clamp(MIN_INTERVAL, MAX_INTERVAL)
                .max(d / f64::from(MAX_TILES)),
            _ => UNKNOWN_INTERVAL,
        };
        Storyboard {
            interval,
            next: 0.0,
            tiles: 0,
            tile: None,
            sheet: None,
            sheets: Vec::new(),
            loose: None,
        }
    }

    /// Makes it a chunk's, whose frames start just after `after` seconds:
    /// its tiles are kept loose for the job's storyboard to place.
    pub(crate) fn detach(&mut self, after: f64) {
        self.loose = Some(Vec::new());
        self.next = ((after / self.interval).floor() + 1.0) * self.interval;
    }

    /// The tiles taken since the last call (a chunk's).
    pub(crate) fn take_loose(&mut self) -> Vec<frame::Video> {
        self.loose.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// True when a frame shown at `secs` would become a tile.
    pub(crate) fn wants(&self, secs: f64) -> bool {
        self.tiles < MAX_TILES && secs >= self.next
    }

    /// Offers a frame shown at `secs`; takes it when a tile is due.
    pub(crate) fn offer(&mut self, f: &frame::Video, secs: f64) -> Result<(), Error> {
        if !self.wants(secs) {
            return Ok(());
        }
        let (tw, th) = *self
            .tile
            .get_or_insert_with(|| tile_size(f.width(), f.height()));
        // A scaler per tile (one every few seconds at most): none is kept,
        // so a chunk's storyboard can move to the chunk's thread.
        let mut scaler = scaling::Context::get(
            f.format(),
            f.width(),
            f.height(),
            Pixel::YUVJ420P,
            tw,
            th,
            scaling::Flags::BILINEAR,
        )
        .map_err(|e| Error::from_av(e, "storyboard scaler"))?;
        let mut small = frame::Video::empty();
        if scaler.run(f, &mut small).is_err() {
            // A frame of another size (a mid-stream change): skip it.
            return Ok(());
        }
        // Every tick this frame covers (a still or a jump) keeps its tile.
        while self.next <= secs {
            self.next += self.interval;
        }
        match self.loose.as_mut() {
            Some(loose) => {
                loose.push(small);
                Ok(())
            }
            None => self.place(&small),
        }
    }

    /// Places a tile (scaled here, or by a chunk's storyboard) after the
    /// last one.
    pub(crate) fn place(&mut self, small: &frame::Video) -> Result<(), Error> {
        if self.tiles >= MAX_TILES {
            return Ok(());
        }
        let (tw, th) = *self.tile.get_or_insert((small.width(), small.height()));
        if (small.width(), small.height()) != (tw, th) {
            return Ok(());
        }
        let slot = self.tiles % (COLS * ROWS);
        if slot == 0 {
            self.sheet = Some(frame::Video::new(Pixel::YUVJ420P, tw * COLS, th * ROWS));
        }
        if let Some(sheet) = self.sheet.as_mut() {
            blit(small, sheet, (slot % COLS) * tw, (slot / COLS) * th);
        }
        self.tiles += 1;
        if self.tiles.is_multiple_of(COLS * ROWS) {
            self.close_sheet()?;
        }
        Ok(())
    }

    /// Encodes the sheet being filled, cut to the tiles it holds.
    fn close_sheet(&mut self) -> Result<(), Error> {
        let (Some(sheet), Some((tw, th))) = (self.sheet.take(), self.tile) else {
            return Ok(());
        };
        let used = match self.tiles % (COLS * ROWS) {
            0 => COLS * ROWS,
            n => n,
        };
        let (w, h) = (tw * used.min(COLS), th * used.div_ceil(COLS));
        let mut cut = frame::Video::new(Pixel::YUVJ420P, w, h);
        crop(&sheet, &mut cut);
        self.sheets.push(super::poster::jpeg(&cut, w, h)?);
        Ok(())
    }

    /// Publishes the sheets and `storyboard.vtt` for a video of
    /// `duration` seconds; returns the bytes written (0: no tile).
    pub(crate) fn write(mut self, store: &Store, id: VideoId, duration: f64) -> Result<u64, Error> {
        self.close_sheet()?;
        let Some((tw, th)) = self.tile else {
            return Ok(0);
        };
        let mut bytes = 0u64;
        for (i, sheet) in self.sheets.iter().enumerate() {
            store.write(id, &names::storyboard_sheet(i), sheet)?;
            bytes += sheet.len() as u64;
        }
        let vtt = cues(self.tiles, self.interval, duration, (tw, th));
        store.write(id, names::STORYBOARD, vtt.as_bytes())?;
        Ok(bytes + vtt.len() as u64)
    }
}

/// An upper bound of the storyboard's bytes for a video of `duration`:
/// 4 KiB a tile (a 160 px JPEG tile is 2–3 KiB) and its cue.
pub(crate) fn estimate_bytes(duration: Option<f64>) -> u64 {
    let sb = Storyboard::new(duration);
    let tiles = duration.map_or(u64::from(MAX_TILES), |d| {
        (d / sb.interval).ceil() as u64 + 1
    });
    tiles.min(u64::from(MAX_TILES)) * 4200
}

/// The tile size for frames of `w`×`h`: [`TILE_WIDTH`] wide, even height.
fn tile_size(w: u32, h: u32) -> (u32, u32) {
    let th = (f64::from(TILE_WIDTH) * f64::from(h) / f64::from(w.max(1)) / 2.0).round() as u32 * 2;
    (TILE_WIDTH, th.clamp(2, 4 * TILE_WIDTH))
}

/// Copies `src` into `dst` with its top-left corner at (`x`, `y`).
fn blit(src: &frame::Video, dst: &mut frame::Video, x: u32, y: u32) {
    for plane in 0..3 {
        let (px, py) = if plane == 0 { (x, y) } else { (x / 2, y / 2) };
        let (w, h) = if plane == 0 {
            (src.width(), src.height())
        } else {
            (src.width() / 2, src.height() / 2)
        };
        let (ss, ds) = (src.stride(plane), dst.stride(plane));
        let s = src.data(plane).to_vec();
        let d = dst.data_mut(plane);
        for row in 0..h as usize {
            let from = row * ss;
            let to = (py as usize + row) * ds + px as usize;
            if let (Some(a), Some(b)) = (
                s.get(from..from + w as usize),
                d.get_mut(to..to + w as usize),
            ) {
                b.copy_from_slice(a);
            }
        }
    }
}

/// Copies the top-left corner of `src` into `dst` (its size).
fn crop(src: &frame::Video, dst: &mut frame::Video) {
    for plane in 0..3 {
        let (w, h) = if plane == 0 {
            (dst.width() as usize, dst.height() as usize)
        } else {
            (dst.width() as usize / 2, dst.height() as usize / 2)
        };
        let (ss, ds) = (src.stride(plane), dst.stride(plane));
        let s = src.data(plane).to_vec();
        let d = dst.data_mut(plane);
        for row in 0..h {
            if let (Some(a), Some(b)) = (
                s.get(row * ss..row * ss + w),
                d.get_mut(row * ds..row * ds + w),
            ) {
                b.copy_from_slice(a);
            }
        }
    }
}

/// `storyboard.vtt`: one cue per tile, back to back from 0 to `duration`.
fn cues(tiles: u32, interval: f64, duration: f64, (tw, th): (u32, u32)) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for i in 0..tiles {
        let start = f64::from(i) * interval;
        if start >= duration && i > 0 {
            break;
        }
        let last = i + 1 == tiles || f64::from(i + 1) * interval >= duration;
        let end = if last {
            duration.max(start + 0.001)
        } else {
            start + interval
        };
        let slot = i % (COLS * ROWS);
        let _ = write!(
            out,
            "{} --> {}\n{}#xywh={},{},{tw},{th}\n\n",
            crate::captions::timestamp(start),
            crate::captions::timestamp(end),
            names::storyboard_sheet((i / (COLS * ROWS)) as usize),
            (slot % COLS) * tw,
            (slot / COLS) * th,
        );
        if last {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_grow_with_length_and_tiles_stay_few() {
        assert_eq!(Storyboard::new(Some(60.0)).interval, 2.0);
        assert_eq!(Storyboard::new(Some(600.0)).interval, 6.0);
        assert_eq!(Storyboard::new(Some(3600.0)).interval, 10.0);
        assert_eq!(Storyboard::new(Some(12.0 * 3600.0)).interval, 86.4);
        assert_eq!(tile_size(1920, 1080), (160, 90));
        assert_eq!(tile_size(1080, 1920), (160, 284));
    }

    #[test]
    fn cues_cover_the_duration_back_to_back() {
        let vtt = cues(4, 2.0, 7.5, (160, 90));
        let times: Vec<&str> = vtt.lines().filter(|l| l.contains("-->")).collect();
        assert_eq!(
            times,
            [
                "00:00:00.000 --> 00:00:02.000",
                "00:00:02.000 --> 00:00:04.000",
                "00:00:04.000 --> 00:00:06.000",
                "00:00:06.000 --> 00:00:07.500"
            ]
        );
        assert!(vtt.contains("storyboard_0.jpg#xywh=320,0,160,90"), "{vtt}");
    }
}
