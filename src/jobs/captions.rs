//! Caption tracks of a video, in one place: added or replaced
//! ([`put`]), removed ([`delete`]), and refitted to a finished video's real
//! segments ([`refit_uploaded`]). Each holds the video's door from
//! choosing a version to publishing it, so no other change of the video
//! (a deletion, another caption change, the job's end) comes between;
//! the HTTP handler only parses and answers.
//!
//! A track is written as a new version of its files (`cc-<lang>/vN…`),
//! then the record and the master playlist name it, then the old version
//! goes. Its output is bounded before any work (one cue's text is written
//! into every segment it overlaps) and counted in the storage quota
//! before it is written.

use crate::captions::Cue;
use crate::catalog::{CaptionSource, CaptionTrack, Change, Held, Lifecycle, Record, Status};
use crate::playlist::{MasterPlaylist, MediaPlaylist};
use crate::storage::{names, Store, VideoId};
use crate::Error;

/// The most one caption track may become (its segmented WebVTT), whatever
/// its body: a 2 MiB file whose one cue spans hours would otherwise be
/// copied into thousands of segments.
pub(crate) const MAX_TRACK_OUTPUT: u64 = 64 << 20;

/// A caption track to add or replace.
#[derive(Debug)]
pub(crate) struct NewTrack {
    pub lang: String,
    pub name: String,
    pub cues: Vec<Cue>,
}

/// What the settings give the captions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    /// `--segment-seconds`: the grid of a video not finished yet.
    pub segment_seconds: u32,
    /// `--max-duration-secs`: no video is longer, so cues past it are cut.
    pub longest: f64,
}

/// Adds or replaces video `id`'s track of `t.lang`; returns the record and
/// whether a track was replaced.
pub(crate) fn put(
    videos: &Lifecycle,
    id: VideoId,
    t: NewTrack,
    grid: Grid,
) -> Result<(Record, bool), Error> {
    let mut held = videos.hold(id)?;
    let rec = held.record().clone();
    // Not before the upload is recognised: there is no timeline yet.
    if rec.status == Status::Receiving && rec.source.is_none() {
        return Err(Error::NotReady);
    }
    Change::Captions {
        tracks: Vec::new(),
        storage_bytes: 0,
    }
    .allowed(rec.status)?;
    let dir = names::caption_dir(&t.lang, 1);
    let old = rec.captions.iter().find(|c| c.dir == dir).cloned();
    let track = CaptionTrack {
        lang: t.lang,
        name: t.name,
        source: CaptionSource::Uploaded,
        default: false,
        forced: false,
        version: next_version(&rec, old.as_ref()),
        dir,
    };
    let store = videos.store();
    let last = t.cues.iter().map(|c| c.end).fold(0.0, f64::max);
    let (windows, mpegts) = timeline(store, &rec, grid.segment_seconds, last.min(grid.longest));
    let written = publish_counted(videos, id, &track, &t.cues, &windows, mpegts)?;
    crate::failpoint!("captions.after_files");
    let mut tracks = rec.captions.clone();
    tracks.retain(|c| c.dir != track.dir);
    tracks.push(track);
    let removed = old.as_ref().map_or(0, |o| version_bytes(store, id, o));
    let stored = (rec.storage_bytes + written).saturating_sub(removed);
    let rec = change(&mut held, tracks, stored)?;
    crate::failpoint!("captions.after_record");
    if let Some(old) = &old {
        remove_version(videos, id, old);
    }
    Ok((rec, old.is_some()))
}

/// Removes video `id`'s uploaded (or only) track of `lang`.
pub(crate) fn delete(videos: &Lifecycle, id: VideoId, lang: &str) -> Result<(), Error> {
    let mut held = videos.hold(id)?;
    let rec = held.record().clone();
    let dir = names::caption_dir(lang, 1);
    let old = rec.captions.iter().find(|c| c.dir == dir).cloned();
    let old = old.ok_or(Error::NotFound)?;
    let mut tracks = rec.captions.clone();
    tracks.retain(|c| c.dir != old.dir);
    let removed = version_bytes(videos.store(), id, &old);
    change(&mut held, tracks, rec.storage_bytes.saturating_sub(removed))?;
    crate::failpoint!("captions.after_delete_record");
    remove_version(videos, id, &old);
    Ok(())
}

/// The version a new or replaced uploaded track takes. While the job may
/// still write its own tracks (version `generation + 1`, in folders no
/// uploaded track held when it looked), an uploaded one skips past it, so
/// the two never share a file name.
fn next_version(rec: &Record, old: Option<&CaptionTrack>) -> u32 {
    let after = old.map_or(0, |c| c.version);
    match rec.status.is_active() {
        true => after.max(rec.generation + 1) + 1,
        false => after + 1,
    }
}

/// Publishes a track version, its bytes bounded and counted in the quota
/// before they are written.
fn publish_counted(
    videos: &Lifecycle,
    id: VideoId,
    track: &CaptionTrack,
    cues: &[Cue],
    windows: &[(f64, f64)],
    mpegts: u64,
) -> Result<u64, Error> {
    let need = crate::captions::output_size(cues, windows, mpegts);
    if need > MAX_TRACK_OUTPUT {
        return Err(Error::CaptionsTooLarge {
            bytes: need,
            limit: MAX_TRACK_OUTPUT,
        });
    }
    let quota = videos.quota();
    quota.store(id, need).map_err(|_| Error::QuotaExceeded {
        limit: quota.limit().unwrap_or(0),
    })?;
    let written =
        crate::hls::captions::publish_track(videos.store(), id, track, cues, windows, mpegts);
    let kept = *written.as_ref().unwrap_or(&0);
    quota.drop_stored(id, need.saturating_sub(kept));
    if written.is_err() {
        remove_files(videos.store(), id, track);
    }
    written
}

/// The bytes a track version's files hold.
fn version_bytes(store: &Store, id: VideoId, c: &CaptionTrack) -> u64 {
    let files = store.list_files(id, &c.dir).unwrap_or_default();
    files
        .iter()
        .filter(|(n, _)| names::is_caption_file(n, c.version))
        .map(|(_, len)| len)
        .sum()
}

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
            crate::hls::captions::mpegts_origin(store, rec.id, &format!("{dir}{}", s.uri))
        });
    match media {
        Some(m) if m.ended && !m.segments.is_empty() => (
            crate::hls::captions::windows(m.segments.iter().map(|s| s.duration)),
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

/// Sets a video's caption tracks, then its master playlist, under its door
/// and the master lock (so the job's own master writes cannot lose the
/// change).
pub(crate) fn change(
    held: &mut Held<'_>,
    tracks: Vec<CaptionTrack>,
    storage_bytes: u64,
) -> Result<Record, Error> {
    let (id, store) = (held.id(), held.store().clone());
    let _lock = store.master_lock(id);
    let rec = held.apply(Change::Captions {
        tracks,
        storage_bytes,
    })?;
    crate::failpoint!("captions.before_master");
    match (rec.is_flat(), rec.status) {
        // The job makes the master at its end.
        (true, s) if s != Status::Ready => Ok(rec),
        (true, _) => match crate::hls::master::republish_locked(&store, &rec)? {
            Some(p) => held.apply(Change::FirstPlaylist(p)),
            None => Ok(rec),
        },
        (false, _) => {
            // The master the job wrote, with the caption group replaced.
            if let Ok(text) = store.read(id, names::PLAYLIST) {
                let mut m = MasterPlaylist::parse(&String::from_utf8_lossy(&text));
                if !m.variants.is_empty() {
                    crate::hls::master::add_captions(&mut m, &rec.captions);
                    store.write(id, names::PLAYLIST, m.to_string().as_bytes())?;
                }
            }
            Ok(rec)
        }
    }
}

/// Removes a caption track version's files and their count in the quota.
pub(crate) fn remove_version(videos: &Lifecycle, id: VideoId, c: &CaptionTrack) {
    let gone = remove_files(videos.store(), id, c);
    videos.quota().drop_stored(id, gone);
}

/// Removes a caption track version's files; returns their bytes.
fn remove_files(store: &Store, id: VideoId, c: &CaptionTrack) -> u64 {
    let mut gone = 0;
    for (n, len) in store.list_files(id, &c.dir).unwrap_or_default() {
        let name = format!("{}/{n}", c.dir);
        if names::is_caption_file(&n, c.version) && store.remove(id, &name).is_ok() {
            gone += len;
        }
    }
    // Gone with its last version (a folder; a bucket has none).
    let _ = std::fs::remove_dir(store.path(id, &c.dir));
    gone
}

/// Refits the uploaded caption tracks of a video that just became ready:
/// tracks cut while it was processing (on a grid over its probed length)
/// are cut again at its real segments and clipped to its real length, as
/// a new version; the master names the new versions, then the old ones go.
pub(crate) fn refit_uploaded(videos: &Lifecycle, id: VideoId, segment_seconds: u32) {
    let Ok(mut held) = videos.hold(id) else {
        return;
    };
    let rec = held.record().clone();
    let uploaded: Vec<CaptionTrack> = rec
        .captions
        .iter()
        .filter(|c| c.source == CaptionSource::Uploaded)
        .cloned()
        .collect();
    if uploaded.is_empty() {
        return;
    }
    let store = videos.store();
    let (windows, mpegts) = timeline(store, &rec, segment_seconds, 0.0);
    let mut tracks = rec.captions.clone();
    let mut stored = rec.storage_bytes;
    let mut replaced = Vec::new();
    for old in uploaded {
        let cues = cues_of(store, id, &old);
        let track = CaptionTrack {
            version: old.version + 1,
            ..old.clone()
        };
        match publish_counted(videos, id, &track, &cues, &windows, mpegts) {
            Ok(n) => {
                stored = (stored + n).saturating_sub(version_bytes(store, id, &old));
                if let Some(c) = tracks.iter_mut().find(|c| c.dir == track.dir) {
                    c.version = track.version;
                }
                replaced.push(old);
            }
            Err(e) => {
                tracing::warn!(id = %id, track = %old.dir, error = %e, "caption track not refitted")
            }
        }
    }
    crate::failpoint!("refit.after_files");
    match change(&mut held, tracks, stored) {
        Ok(_) => replaced.iter().for_each(|o| remove_version(videos, id, o)),
        Err(e) => tracing::warn!(id = %id, error = %e, "caption tracks not refitted"),
    }
}

/// The cues of a published track version (each once).
fn cues_of(store: &Store, id: VideoId, c: &CaptionTrack) -> Vec<Cue> {
    let Ok(text) = store.read(id, &c.playlist()) else {
        return Vec::new();
    };
    let playlist = MediaPlaylist::parse(&String::from_utf8_lossy(&text));
    let mut cues: Vec<Cue> = Vec::new();
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
