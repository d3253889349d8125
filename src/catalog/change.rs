//! The changes a video's record may go through, and in which states each
//! is allowed: the table of the lifecycle (see [`super::lifecycle`]). A
//! change is data, so the table is one `match` and the model test can
//! name every one of them.

use super::record::{Event, Record, Status};
use super::{CaptionTrack, Rendition, SourceInfo};
use crate::Error;

/// What a finished job made (everything `ready` needs but the status).
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub renditions: Vec<Rendition>,
    pub output: super::OutputInfo,
    pub copied: bool,
    pub copy_note: Option<String>,
    pub generation: u32,
    /// The job's embedded caption tracks (uploaded ones stay as they are).
    pub captions: Vec<CaptionTrack>,
    pub audio_tracks: Vec<super::AudioTrack>,
    pub storyboard: bool,
    pub download: bool,
    pub notes: Vec<String>,
    /// The source's colour as its frames said it (HDR metadata in SEI).
    pub colour: Option<super::ColourInfo>,
    /// What the video will hold once ready (its spool apart, unless kept).
    pub storage_bytes: u64,
}

/// One change of a video's record.
#[derive(Debug, Clone)]
pub enum Change {
    /// The probe read the source.
    Probed(Box<SourceInfo>),
    /// The job got its slot: `processing` once every byte is in.
    Started { upload_complete: bool },
    /// The job's progress, in memory only ([`Change::Persist`] writes it).
    Progress {
        renditions: Vec<Rendition>,
        progress: f64,
    },
    /// The record as memory has it, written (a job's progress, noted in
    /// memory on the job's thread, is written by another: `jobs::persist`).
    Persist,
    /// Bytes of a multipart upload received so far.
    Received { bytes: u64, persist: bool },
    /// A resumable upload's bytes are durable up to `offset`.
    Offset(u64),
    /// A resumable upload that deferred its length says it.
    Length(u64),
    /// An import's remote answered (its status and length).
    Imported { status: u16, length: Option<u64> },
    /// A resumable upload's job starts again: the next generation of names.
    Restarted,
    /// Every byte is in: `queued` (or `processing` when the job runs).
    /// A multipart upload is announced (`video.created`) here, with the
    /// title its form gave after the file, if any.
    Complete {
        bytes: u64,
        running: bool,
        title: Option<String>,
    },
    /// The job's copy fast path gave up: it starts over as `generation`.
    Generation(u32),
    /// Transcoded again from the complete upload, as `generation`.
    Requeued { generation: u32 },
    /// A resumable upload kept after a restart, at the offset its client
    /// was told; its partial outputs are gone.
    Resumed { offset: u64 },
    /// What the finished job made, before it is said to be ready.
    Outputs(Box<Outputs>),
    /// The caption tracks (uploaded or removed ones), and the bytes the
    /// video now holds.
    Captions {
        tracks: Vec<CaptionTrack>,
        storage_bytes: u64,
    },
    /// A single rendition's playlist moved aside for a master.
    FirstPlaylist(String),
    /// Done: the playlist is VOD.
    Ready,
    /// Gave up.
    Failed { code: String, message: String },
    /// The bytes the video holds, measured.
    Stored(u64),
    /// A new title.
    Title(String),
    /// A node of a shared store renews its claim (written for the lease).
    Renewed,
    /// A node (`node`) claims a lost node's video, if that node's claim
    /// is still the one it saw lapse (`lost`: node and lease): transcoded
    /// again as `requeue`'s generation when its upload is kept, else
    /// failed. Another node's newer claim leaves the record as it is.
    Claimed {
        node: Option<String>,
        lost: (Option<String>, u64),
        requeue: Option<u32>,
    },
    /// A live's new stream key (`POST /lives/{id}/reset-key`).
    LiveKey(String),
    /// A live's broadcast began at (unix ms); announced the first time.
    LiveStarted(u64),
    /// A live kept nowhere ended (its deletion follows).
    LiveEnded,
    /// The tombstone: every other change is refused from now on.
    Deleting,
}

impl Change {
    /// A short name (logs, refusals, failpoints).
    pub fn name(&self) -> &'static str {
        match self {
            Change::Probed(_) => "probed",
            Change::Started { .. } => "started",
            Change::Progress { .. } => "progress",
            Change::Persist => "persist",
            Change::Received { .. } => "received",
            Change::Offset(_) => "offset",
            Change::Length(_) => "length",
            Change::Imported { .. } => "imported",
            Change::Restarted => "restarted",
            Change::Complete { .. } => "complete",
            Change::Generation(_) => "generation",
            Change::Requeued { .. } => "requeued",
            Change::Resumed { .. } => "resumed",
            Change::Outputs(_) => "outputs",
            Change::Captions { .. } => "captions",
            Change::FirstPlaylist(_) => "first_playlist",
            Change::Ready => "ready",
            Change::Failed { .. } => "failed",
            Change::Stored(_) => "stored",
            Change::Title(_) => "title",
            Change::Renewed => "renewed",
            Change::Claimed { .. } => "claimed",
            Change::LiveKey(_) => "live_key",
            Change::LiveStarted(_) => "live_started",
            Change::LiveEnded => "live_ended",
            Change::Deleting => "deleting",
        }
    }

    /// True when the change must be on disk before anyone is told of it
    /// (all but progress noted in memory).
    pub fn durable(&self) -> bool {
        !matches!(
            self,
            Change::Progress { .. } | Change::Received { persist: false, .. }
        )
    }

    /// Whether the change is allowed in `status` (the lifecycle's table).
    pub fn allowed(&self, status: Status) -> Result<(), Error> {
        use Status::*;
        let ok = match (status, self) {
            // The tombstone: nothing changes a video being deleted.
            (Deleting, _) => return Err(Error::NotFound),
            (_, Change::Deleting | Change::Title(_) | Change::Stored(_)) => true,
            (Failed, Change::Captions { .. }) => {
                return Err(Error::Conflict(
                    "the video failed; it takes no captions".into(),
                ))
            }
            (_, Change::Captions { .. } | Change::FirstPlaylist(_)) => true,
            (
                Receiving,
                Change::Offset(_)
                | Change::Length(_)
                | Change::Restarted
                | Change::Resumed { .. }
                | Change::Imported { .. },
            ) => true,
            // The job may have moved on (or ended, or failed) while a
            // multipart upload's last bytes were still arriving.
            (_, Change::Complete { .. } | Change::Received { .. }) => true,
            (Live, Change::LiveKey(_) | Change::LiveStarted(_) | Change::LiveEnded) => true,
            (
                Receiving | Queued | Processing | Live,
                Change::Probed(_)
                | Change::Started { .. }
                | Change::Progress { .. }
                | Change::Persist
                | Change::Generation(_)
                | Change::Requeued { .. }
                | Change::Outputs(_)
                | Change::Ready
                | Change::Failed { .. }
                | Change::Renewed
                | Change::Claimed { .. },
            ) => true,
            // A finished video's lease lapses; a late renewal is harmless.
            (Ready | Failed, Change::Renewed) => true,
            // A failure noted in memory while the store was down, written.
            (Failed, Change::Failed { .. }) => true,
            _ => false,
        };
        match ok {
            true => Ok(()),
            false => Err(Error::Conflict(format!(
                "a {} video cannot take this change ({})",
                status.name(),
                self.name()
            ))),
        }
    }

    /// Applies the change to `r` (allowed, checked before); returns the
    /// events it implies.
    pub fn apply(&self, r: &mut Record) -> Vec<Event> {
        match self.apply_one(r) {
            // A video ready before its upload's end was recorded (its job
            // beat the last write) is announced now.
            Some(Event::Ready) if std::mem::take(&mut r.unannounced) => {
                vec![Event::Created, Event::Ready]
            }
            Some(e) => vec![e],
            None => match self {
                Change::Complete {
                    bytes,
                    running,
                    title,
                } => complete(r, *bytes, *running, title),
                _ => Vec::new(),
            },
        }
    }

    fn apply_one(&self, r: &mut Record) -> Option<Event> {
        match self {
            Change::Ready => {
                r.status = Status::Ready;
                r.progress = 1.0;
                r.error = None;
                Some(Event::Ready)
            }
            Change::Failed { code, message } => {
                failed(r, code, message);
                (!r.unannounced).then_some(Event::Failed)
            }
            Change::Claimed {
                node,
                lost,
                requeue: g,
            } => match (&r.node, r.lease_until_ms) == (&lost.0, lost.1) {
                true => claimed(r, node, *g),
                false => None,
            },
            Change::Deleting => {
                r.status = Status::Deleting;
                (!r.unannounced).then_some(Event::Deleted)
            }
            Change::LiveStarted(ms) => {
                let live = r.live.as_mut().filter(|l| l.started_ms.is_none())?;
                live.started_ms = Some(*ms);
                Some(Event::LiveStarted)
            }
            Change::LiveEnded => Some(Event::LiveEnded),
            // Several events: see `apply`.
            Change::Complete { .. } => None,
            _ => {
                self.apply_quiet(r);
                None
            }
        }
    }

    /// The changes that imply no event.
    fn apply_quiet(&self, r: &mut Record) {
        match self {
            Change::Probed(info) => r.source = Some((**info).clone()),
            Change::Started {
                upload_complete: true,
            } => r.status = Status::Processing,
            Change::Progress {
                renditions,
                progress,
                ..
            } => {
                r.renditions.clone_from(renditions);
                r.progress = *progress;
            }
            Change::Received { bytes, .. } => r.bytes_received = *bytes,
            Change::Offset(offset) => {
                r.bytes_received = *offset;
                if let Some(u) = r.upload.as_mut() {
                    u.offset = *offset;
                }
            }
            Change::Length(len) => {
                if let Some(u) = r.upload.as_mut() {
                    u.length = Some(*len);
                }
            }
            Change::Imported { status, length } => {
                if let Some(i) = r.import.as_mut() {
                    (i.remote_status, i.length) = (Some(*status), *length);
                }
            }
            Change::Restarted => {
                r.generation += 1;
                clear_outputs(r);
            }
            Change::Generation(g) => r.generation = *g,
            Change::Requeued { generation } => requeue(r, *generation),
            Change::Resumed { offset } => {
                clear_outputs(r);
                r.bytes_received = *offset;
            }
            Change::Outputs(o) => outputs(r, o),
            Change::Captions {
                tracks,
                storage_bytes,
            } => {
                r.captions.clone_from(tracks);
                r.storage_bytes = *storage_bytes;
            }
            Change::FirstPlaylist(p) => {
                if let Some(first) = r.renditions.first_mut() {
                    first.playlist.clone_from(p);
                }
            }
            Change::Stored(bytes) => r.storage_bytes = *bytes,
            Change::Title(t) => r.title.clone_from(t),
            Change::LiveKey(k) => {
                if let Some(l) = r.live.as_mut() {
                    l.stream_key.clone_from(k);
                }
            }
            _ => {}
        }
    }
}

/// A failed video's outputs go (its failure removes them): the record
/// names none of them any more.
fn failed(r: &mut Record, code: &str, message: &str) {
    r.fail(code, message);
    clear_outputs(r);
    r.captions.clear();
    r.audio_tracks.clear();
    r.storyboard = false;
    r.download = false;
}

fn clear_outputs(r: &mut Record) {
    r.renditions.clear();
    r.output = None;
    r.progress = 0.0;
}

fn complete(r: &mut Record, bytes: u64, running: bool, title: &Option<String>) -> Vec<Event> {
    r.bytes_received = bytes;
    if let Some(t) = title {
        r.title.clone_from(t);
    }
    let ended = (r.status == Status::Live).then_some(Event::LiveEnded);
    if matches!(r.status, Status::Receiving | Status::Live) {
        r.status = match running {
            true => Status::Processing,
            false => Status::Queued,
        };
    }
    if let Some(e) = ended {
        return vec![e];
    }
    // A multipart upload is announced once it is accepted whole (and its
    // failure then, if its job failed before its last byte came).
    match (std::mem::take(&mut r.unannounced), r.status) {
        (false, _) => vec![],
        (true, Status::Failed) => vec![Event::Created, Event::Failed],
        (true, _) => vec![Event::Created],
    }
}

/// The one rule for transcoding a video again: the next generation of
/// names, its outputs and error cleared.
fn requeue(r: &mut Record, generation: u32) {
    r.status = Status::Queued;
    r.generation = generation;
    r.error = None;
    clear_outputs(r);
}

fn outputs(r: &mut Record, o: &Outputs) {
    r.renditions.clone_from(&o.renditions);
    r.output = Some(o.output.clone());
    r.copied = o.copied;
    r.copy_note.clone_from(&o.copy_note);
    r.generation = o.generation;
    // Uploaded captions stay; embedded ones are this job's. An uploaded
    // track sent while the job finished takes the folder of an embedded
    // one of its language (a PUT replaces that language's track).
    r.captions
        .retain(|c| c.source == super::CaptionSource::Uploaded);
    let taken: Vec<String> = r.captions.iter().map(|c| c.dir.clone()).collect();
    let embedded = o.captions.iter().filter(|c| !taken.contains(&c.dir));
    r.captions.extend(embedded.cloned());
    r.audio_tracks.clone_from(&o.audio_tracks);
    r.storyboard = o.storyboard;
    r.download = o.download;
    r.notes.clone_from(&o.notes);
    r.storage_bytes = o.storage_bytes;
    if let (Some(c), Some(source)) = (&o.colour, r.source.as_mut()) {
        source.video.colour = Some(c.clone());
    }
}

fn claimed(r: &mut Record, node: &Option<String>, generation: Option<u32>) -> Option<Event> {
    r.node.clone_from(node);
    match generation {
        Some(g) => {
            requeue(r, g);
            None
        }
        None => {
            let why = "the node handling this video stopped before it was finished";
            failed(r, "node_lost", why);
            (!r.unannounced).then_some(Event::Failed)
        }
    }
}

#[cfg(test)]
#[path = "change_tests.rs"]
mod tests;
