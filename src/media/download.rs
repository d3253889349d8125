//! The MP4 download: the top rung's segments (with the audio rendition's,
//! when audio is a group of its own) remuxed, not re-encoded, into one
//! faststart MP4 (`moov` before `mdat`, so it plays while it downloads).
//! libav reads the segments as one stream through a reader that chains
//! the files (TS segments concatenate into a valid TS; fMP4 segments
//! after their `init.mp4` into a valid fragmented MP4).

use crate::storage::{names, Store, VideoId};
use crate::Error;
use ffmpeg_next::format::context::StreamIo;
use ffmpeg_next::{codec, format, media, Dictionary, Packet, Rational};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

/// One input: files read as one stream, and which of its media to take.
pub(crate) struct Part {
    pub files: Vec<PathBuf>,
    pub video: bool,
    pub audio: bool,
}

/// Files read back to back as one seekable stream.
struct Chain {
    files: Vec<(PathBuf, u64)>,
    total: u64,
    pos: u64,
    open: Option<(usize, File)>,
}

impl Chain {
    fn new(paths: &[PathBuf]) -> io::Result<Chain> {
        let mut files = Vec::with_capacity(paths.len());
        let mut total = 0;
        for p in paths {
            let len = std::fs::metadata(p)?.len();
            total += len;
            files.push((p.clone(), len));
        }
        Ok(Chain {
            files,
            total,
            pos: 0,
            open: None,
        })
    }

    /// The file holding byte `pos`, and the offset in it.
    fn locate(&self, pos: u64) -> Option<(usize, u64)> {
        let mut start = 0;
        for (i, (_, len)) in self.files.iter().enumerate() {
            if pos < start + len {
                return Some((i, pos - start));
            }
            start += len;
        }
        None
    }
}

impl Read for Chain {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some((i, at)) = self.locate(self.pos) else {
            return Ok(0);
        };
        if self.open.as_ref().is_none_or(|(j, _)| *j != i) {
            self.open = Some((i, File::open(&self.files[i].0)?));
        }
        let Some((_, f)) = self.open.as_mut() else {
            return Ok(0);
        };
        f.seek(SeekFrom::Start(at))?;
        let left = (self.files[i].1 - at).min(buf.len() as u64) as usize;
        let n = f.read(&mut buf[..left])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Chain {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(o) => self.total.checked_add_signed(o),
            SeekFrom::Current(o) => self.pos.checked_add_signed(o),
        };
        self.pos = new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek"))?;
        Ok(self.pos)
    }
}

fn av(what: &'static str) -> impl Fn(ffmpeg_next::Error) -> Error {
    move |e| Error::from_av(e, what)
}

/// An opened input and its output stream for each input stream taken.
struct Input {
    ictx: format::context::Input,
    map: Vec<Option<usize>>,
    /// The next packet, read ahead to interleave inputs by time.
    next: Option<Packet>,
}

/// Remuxes `parts` into `download.mp4` of video `id` (atomically);
/// returns its size.
pub(crate) fn make(store: &Store, id: VideoId, parts: Vec<Part>) -> Result<u64, Error> {
    let tmp = store.path(id, &format!("{}{}", names::DOWNLOAD, names::TMP_SUFFIX));
    let result = remux(&tmp, parts);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let len = std::fs::metadata(&tmp)?.len();
    store.rename_into(id, &tmp, names::DOWNLOAD)?;
    Ok(len)
}

fn remux(tmp: &std::path::Path, parts: Vec<Part>) -> Result<(), Error> {
    let mut octx = format::output_as(tmp, "mp4").map_err(av("mp4 output"))?;
    let mut inputs = Vec::with_capacity(parts.len());
    for part in parts {
        let io =
            StreamIo::from_read_seek(Chain::new(&part.files)?).map_err(av("segment reader"))?;
        let ictx = format::input_from_stream(io, None, None).map_err(av("reading the segments"))?;
        let mut map = Vec::new();
        for ist in ictx.streams() {
            let take = match ist.parameters().medium() {
                media::Type::Video => part.video,
                media::Type::Audio => part.audio,
                _ => false,
            };
            map.push(if take {
                let mut ost = octx
                    .add_stream(ffmpeg_next::encoder::find(codec::Id::None))
                    .map_err(av("mp4 stream"))?;
                ost.set_parameters(ist.parameters());
                crate::ffi::clear_codec_tag(&mut ost);
                Some(ost.index())
            } else {
                None
            });
        }
        inputs.push(Input {
            ictx,
            map,
            next: None,
        });
    }
    let mut opts = Dictionary::new();
    opts.set("movflags", "+faststart");
    octx.write_header_with(opts).map_err(av("mp4 header"))?;
    let out_tbs: Vec<Rational> = octx.streams().map(|s| s.time_base()).collect();
    while let Some(i) = earliest(&mut inputs) {
        let Some(mut p) = inputs[i].next.take() else {
            continue;
        };
        let ist = p.stream();
        let (Some(Some(o)), Some(itb)) = (
            inputs[i].map.get(ist).copied(),
            inputs[i].ictx.stream(ist).map(|s| s.time_base()),
        ) else {
            continue;
        };
        p.rescale_ts(itb, out_tbs[o]);
        p.set_stream(o);
        p.set_position(-1);
        p.write_interleaved(&mut octx)
            .map_err(av("writing the mp4"))?;
    }
    octx.write_trailer().map_err(av("mp4 trailer"))?;
    Ok(())
}

/// Fills every input's read-ahead; the input whose packet comes first
/// (by decoding time), `None` when all are done.
fn earliest(inputs: &mut [Input]) -> Option<usize> {
    for input in inputs.iter_mut() {
        while input.next.is_none() {
            let mut p = Packet::empty();
            match p.read(&mut input.ictx) {
                Ok(()) if input.map.get(p.stream()).is_some_and(Option::is_some) => {
                    input.next = Some(p)
                }
                Ok(()) => {}
                Err(_) => break,
            }
        }
    }
    let secs = |input: &Input| {
        let p = input.next.as_ref()?;
        let tb = input.ictx.stream(p.stream())?.time_base();
        Some(p.dts().or(p.pts()).unwrap_or(0) as f64 * f64::from(tb))
    };
    (0..inputs.len())
        .filter_map(|i| secs(&inputs[i]).map(|t| (i, t)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_reads_and_seeks_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = ["ab", "", "cde"]
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let p = dir.path().join(i.to_string());
                std::fs::write(&p, s).unwrap();
                p
            })
            .collect();
        let mut c = Chain::new(&paths).unwrap();
        let mut all = String::new();
        c.read_to_string(&mut all).unwrap();
        assert_eq!(all, "abcde");
        assert_eq!(c.seek(SeekFrom::End(-2)).unwrap(), 3);
        let mut b = [0u8; 8];
        let n = c.read(&mut b).unwrap();
        assert_eq!(&b[..n], b"de");
        c.seek(SeekFrom::Start(1)).unwrap();
        let mut rest = String::new();
        c.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "bcde");
    }
}
