//! Rebuilding a record that cannot be read, from what is on disk.

use super::Report;
use crate::catalog::{Lifecycle, OutputInfo, Rendition, Status, Unreadable};
use crate::jobs::Jobs;
use crate::playlist::{MasterPlaylist, MediaPlaylist};
use crate::storage::{names, Store, VideoId};
use std::sync::Arc;

/// Where an unreadable record is kept (never served, never parsed again).
const DAMAGED_RECORD: &str = "meta.json.damaged";

/// Recovers a folder whose record could not be read (see the module docs
/// of `recovery`).
pub(super) fn recover_unreadable(
    videos: &Lifecycle,
    u: &Unreadable,
    jobs: &Arc<Jobs>,
    report: &mut Report,
) -> Result<(), crate::Error> {
    let catalog = videos.catalog();
    let (store, id) = (catalog.store(), u.id);
    if !holds_value(store, id) {
        store.remove_video(id)?;
        report.strays_removed += 1;
        return Ok(());
    }
    set_damaged_record_aside(store, id)?;
    let mut rec = catalog.new_record(id, None);
    if let Ok(t) = std::fs::metadata(store.dir(id)).and_then(|m| m.modified()) {
        let ms = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        (rec.created_ms, rec.created_at) = (ms, ms / 1000);
    }
    rec.generation = store.highest_generation(id);
    if let Some((renditions, output)) = finished_outputs(store, id) {
        rec.status = Status::Ready;
        rec.progress = 1.0;
        rec.renditions = renditions;
        rec.output = Some(output);
        rec.storage_bytes = store.size(id);
        videos.restore(rec)?;
        tracing::warn!(id = %id, reason = %u.reason, "record rebuilt from the playlists: ready");
        report.rebuilt += 1;
    } else if let Some(len) = complete_spool(store, id) {
        rec.status = Status::Queued;
        rec.bytes_received = len;
        videos.restore(rec.clone())?;
        tracing::warn!(id = %id, reason = %u.reason, "record rebuilt from the complete upload: re-queued");
        super::requeue(videos, jobs, &rec)?;
        report.rebuilt += 1;
        report.requeued += 1;
    } else {
        rec.fail(
            "damaged_record",
            "this video's record could not be read and could not be rebuilt; its files are kept",
        );
        rec.storage_bytes = store.size(id);
        videos.restore(rec)?;
        tracing::error!(id = %id, reason = %u.reason, "damaged record: video kept as failed");
        report.damaged += 1;
    }
    Ok(())
}

/// True when the folder holds anything but a (broken) record.
fn holds_value(store: &Store, id: VideoId) -> bool {
    std::fs::read_dir(store.dir(id)).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name() != names::META_FILE && e.file_name() != DAMAGED_RECORD)
    })
}

fn set_damaged_record_aside(store: &Store, id: VideoId) -> std::io::Result<()> {
    let from = store.path(id, names::META_FILE);
    if from.exists() {
        std::fs::rename(&from, store.path(id, DAMAGED_RECORD))?;
        crate::storage::fsio::sync_dir(&store.dir(id))?;
    }
    Ok(())
}

/// The spool's length when it is complete (its completion mark agrees).
fn complete_spool(store: &Store, id: VideoId) -> Option<u64> {
    let len = std::fs::metadata(store.path(id, names::SOURCE_FILE))
        .ok()?
        .len();
    let mark = std::fs::read(store.path(id, names::SOURCE_DONE)).ok()?;
    let marked: u64 = std::str::from_utf8(&mark).ok()?.trim().parse().ok()?;
    (marked == len).then_some(len)
}

/// Renditions and output of a video whose every playlist has
/// `#EXT-X-ENDLIST`; `None` otherwise.
pub(super) fn finished_outputs(store: &Store, id: VideoId) -> Option<(Vec<Rendition>, OutputInfo)> {
    let top = String::from_utf8(store.read(id, names::PLAYLIST).ok()?).ok()?;
    let master = MasterPlaylist::parse(&top);
    if master.variants.is_empty() {
        let media = MediaPlaylist::parse(&top);
        (media.ended && !media.segments.is_empty()).then_some(())?;
        let r = Rendition {
            playlist: names::PLAYLIST.to_owned(),
            progress: 1.0,
            ..Rendition::default()
        };
        return Some((vec![r], output_of(&media, (0, 0), "")));
    }
    let mut renditions = Vec::new();
    let mut top_media = None;
    for v in &master.variants {
        let (rung, file) = v.uri.split_once('/')?;
        (names::is_rung_name(rung) && file == names::PLAYLIST).then_some(())?;
        let text = String::from_utf8(store.read(id, &v.uri).ok()?).ok()?;
        let media = MediaPlaylist::parse(&text);
        (media.ended && !media.segments.is_empty()).then_some(())?;
        let (width, height) = v.resolution.unwrap_or((0, 0));
        let iframe = master
            .iframe_variants
            .iter()
            .find(|f| f.uri.starts_with(&format!("{rung}/")))
            .map(|f| f.uri.clone());
        renditions.push(Rendition {
            playlist: v.uri.clone(),
            width,
            height,
            name: rung.to_owned(),
            bandwidth: v.bandwidth,
            average_bandwidth: v.average_bandwidth.unwrap_or(0),
            codecs: v.codecs.clone(),
            codec: crate::catalog::codec_of(&v.codecs).to_owned(),
            frame_rate: v.frame_rate.unwrap_or(0.0),
            copied: false,
            progress: 1.0,
            iframe_playlist: iframe,
            video_range: v.video_range.clone(),
        });
        top_media.get_or_insert((media, (width, height), v.codecs.clone()));
    }
    let (media, size, codecs) = top_media?;
    Some((renditions, output_of(&media, size, &codecs)))
}

fn output_of(media: &MediaPlaylist, (width, height): (u32, u32), codecs: &str) -> OutputInfo {
    OutputInfo {
        width,
        height,
        video_codec: "h264".into(),
        audio_codec: (codecs.is_empty() || codecs.contains("mp4a")).then(|| "aac".to_owned()),
        segments: media.segments.len(),
        frames: 0,
        duration: media.duration(),
        segment_seconds: u32::try_from(media.target_duration).unwrap_or(0),
        processing_seconds: 0.0,
        // Not known from the playlists.
        chunks: 0,
    }
}
