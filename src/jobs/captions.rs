//! Caption tracks on disk, shared by the captions API and the job's end:
//! where a video's segments fall, a track's caption list and master
//! changed together, a version's files removed, and uploaded tracks
//! refitted to a finished video's real segments.

use crate::catalog::{CaptionSource, CaptionTrack, Catalog, Record, Status};
use crate::playlist::{MasterPlaylist, MediaPlaylist};
use crate::storage::{names, Store, VideoId};
use crate::Error;

/// Where the video's segments fall (its top rendition's playlist when it
/// is finished, else a grid of `--segment-seconds` over its probed length)
/// and the MPEG-TS time of its start. `until`: how far the cues to cut
/// reach; before the video is finished a probed length may be short (a
/// container whose header says less than its frames hold), so one more
/// window takes the cues past it rather than losing them: the refit at
/// `ready` cuts them at the real segments and clips them to the real
/// length.
pub(crate) fn timeline(
    store: &Store,
    rec: &Record,
    segment_seconds: u32,
    until: f64,
) -> (Vec<(f64, f64)>, u64) {
    let top = rec.renditions.first().map(|r| r.playlist.clone());
    let media = top
        .as_ref()
        .and_then(|p| store.read(rec.id, p).ok())
        .map(|b| MediaPlaylist::parse(&String::from_utf8_lossy(&b)));
    let dir = top
        .as_deref()
        .and_then(|p| p.rsplit_once('/'))
        .map_or(String::new(), |(d, _)| format!("{d}/"));
    let mpegts = media
        .as_ref()
        .and_then(|m| m.segments.first())
        .map_or(0, |s| {
            crate::media::mpegts_origin(store, rec.id, &format!("{dir}{}", s.uri))
        });
    match media {
        Some(m) if m.ended && !m.segments.is_empty() => (
            crate::media::segment_windows(m.segments.iter().map(|s| s.duration)),
            mpegts,
        ),
        _ => {
            let d = rec
                .output
                .as_ref()
                .map(|o| o.duration)
                .or(rec.source.as_ref().and_then(|s| s.duration))
                .unwrap_or(until);
            let mut grid = crate::captions::segment_grid(d, f64::from(segment_seconds));
            let end = grid.last().map_or(0.0, |(t, d)| t + d);
            if until > end + 1e-3 {
                grid.push((end, until - end));
            }
            (grid, mpegts)
        }
    }
}

/// Changes a video's caption list, then its master playlist, under the
/// master lock (so the job's own master writes cannot lose the change).
pub(crate) fn change(
    catalog: &crate::catalog::Catalog,
    id: VideoId,
    f: impl Fn(&mut Vec<CaptionTrack>),
) -> Result<(), Error> {
    let store = catalog.store();
    let _lock = store.master_lock(id);
    let rec = catalog
        .update(id, true, |r| f(&mut r.captions))?
        .ok_or(Error::NotFound)?;
    let flat = rec.is_flat();
    match (flat, rec.status) {
        // The job makes the master at its end.
        (true, s) if s != Status::Ready => {}
        (true, _) => {
            // Written and named under the lock, so a change made meanwhile
            // is never overwritten by this one's older record.
            if let Some(p) = crate::media::republish_locked(store, &rec)? {
                catalog.update(id, true, |r| {
                    if let Some(first) = r.renditions.first_mut() {
                        first.playlist = p.clone();
                    }
                })?;
            }
        }
        (false, _) => {
            // The master the job wrote, with the caption group replaced.
            if let Ok(text) = store.read(id, names::PLAYLIST) {
                let mut m = MasterPlaylist::parse(&String::from_utf8_lossy(&text));
                if !m.variants.is_empty() {
                    crate::media::add_captions(&mut m, &rec.captions);
                    store.write(id, names::PLAYLIST, m.to_string().as_bytes())?;
                }
            }
        }
    }
    Ok(())
}

/// Removes a caption track version's files.
pub(crate) fn remove_version(store: &Store, id: VideoId, c: &CaptionTrack) {
    for (n, _) in store.list_files(id, &c.dir).unwrap_or_default() {
        if names::is_caption_file(&n, c.version) {
            let _ = store.remove(id, &format!("{}/{n}", c.dir));
        }
    }
    // Gone with its last version (a folder; a bucket has none).
    let _ = std::fs::remove_dir(store.path(id, &c.dir));
}

/// Refits the uploaded caption tracks of a video that just became ready:
/// tracks cut while it was processing (on a grid over its probed length)
/// are cut again at its real segments and clipped to its real length, as
/// a new version; the master names the new versions, then the old ones go.
pub(crate) fn refit_uploaded(catalog: &Catalog, id: VideoId, segment_seconds: u32) {
    let store = catalog.store();
    let _captions = store.captions_lock(id);
    let Some(rec) = catalog.get(id) else {
        return;
    };
    let uploaded: Vec<CaptionTrack> = rec
        .captions
        .iter()
        .filter(|c| c.source == CaptionSource::Uploaded)
        .cloned()
        .collect();
    if uploaded.is_empty() {
        return;
    }
    let (windows, mpegts) = timeline(store, &rec, segment_seconds, 0.0);
    for old in uploaded {
        let cues = cues_of(store, id, &old);
        let track = CaptionTrack {
            version: old.version + 1,
            ..old.clone()
        };
        let written = crate::media::publish_track(store, id, &track, &cues, &windows, mpegts);
        let changed = written.and_then(|_| {
            change(catalog, id, |caps| {
                if let Some(c) = caps.iter_mut().find(|c| c.dir == track.dir) {
                    c.version = track.version;
                }
            })
        });
        match changed {
            Ok(()) => remove_version(store, id, &old),
            Err(e) => {
                tracing::warn!(id = %id, track = %old.dir, error = %e, "caption track not refitted")
            }
        }
    }
}

/// The cues of a published track version (each once).
fn cues_of(store: &Store, id: VideoId, c: &CaptionTrack) -> Vec<crate::captions::Cue> {
    let Ok(text) = store.read(id, &c.playlist()) else {
        return Vec::new();
    };
    let playlist = MediaPlaylist::parse(&String::from_utf8_lossy(&text));
    let mut cues: Vec<crate::captions::Cue> = Vec::new();
    // A cue that spans segments is in each of them: kept once (a set, so
    // a track of 100,000 cues is not compared with itself).
    let mut seen = std::collections::HashSet::new();
    for s in &playlist.segments {
        let Ok(vtt) = store.read(id, &format!("{}/{}", c.dir, s.uri)) else {
            continue;
        };
        for cue in crate::captions::parse(&vtt).unwrap_or_default() {
            if seen.insert((cue.start.to_bits(), cue.end.to_bits(), cue.text.clone())) {
                cues.push(cue);
            }
        }
    }
    cues
}
