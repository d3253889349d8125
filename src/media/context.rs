//! What a transcode is given ([`JobContext`]) and what it tells its owner
//! ([`JobEvents`], [`RungProgress`]) and returns ([`Produced`]).

use super::Settings;
use crate::catalog::{AudioTrack, CaptionTrack, OutputInfo, Rendition};
use crate::storage::{Store, VideoId};
use crate::Error;
use std::sync::atomic::AtomicBool;

/// Where and how one transcode writes.
pub(crate) struct JobContext<'a> {
    pub store: &'a Store,
    pub id: VideoId,
    pub settings: &'a Settings,
    /// The generation of file names written.
    pub generation: u32,
    /// Polled by the packet loop (and libav's interrupt callback).
    pub cancel: &'a AtomicBool,
}

impl JobContext<'_> {
    /// True when the disk holding the video has less than `min` bytes free.
    pub(crate) fn disk_full(&self, min: u64) -> bool {
        crate::ffi::free_bytes(&self.store.dir(self.id)).is_some_and(|b| b < min)
    }
}

/// What a job tells its owner while it runs.
pub(crate) trait JobEvents {
    /// Each rung's progress, as it grows.
    fn progress(&mut self, rungs: &[RungProgress]);
    /// The job's outputs are estimated at `bytes` (from the ladder's bit
    /// rates and the probed duration), before anything is written; an
    /// error (quota) stops the job.
    fn planned(&mut self, _bytes: u64) -> Result<(), Error> {
        Ok(())
    }
    /// `bytes` more were published; an error (quota) stops the job.
    fn published(&mut self, _bytes: u64) -> Result<(), Error> {
        Ok(())
    }
    /// The job starts over as `generation` because `why`; called before a
    /// file of that generation is written (the owner records it).
    fn new_generation(&mut self, _generation: u32, _why: &str) -> Result<(), Error> {
        Ok(())
    }
    /// Caption tracks uploaded for the video (the master lists them too).
    fn uploaded_captions(&self) -> Vec<CaptionTrack> {
        Vec::new()
    }
    /// Video frames dropped so far (packets the decoder refused: concealed).
    fn dropped(&mut self, _frames: u64) {}
}

/// One rung's progress, as the job reports it.
#[derive(Debug, Clone)]
pub struct RungProgress {
    /// Its media playlist, relative to the video's folder.
    pub playlist: String,
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub copied: bool,
    /// Seconds of media written so far.
    pub seconds: f64,
}

/// What a finished transcode made.
#[derive(Debug, Clone)]
pub struct Produced {
    pub info: OutputInfo,
    /// Every rung, top first.
    pub renditions: Vec<Rendition>,
    /// The top rung is the source's packets, copied.
    pub copied: bool,
    /// Why the source was not copied, when it was not.
    pub copy_note: Option<String>,
    /// The generation of file names the outputs use.
    pub generation: u32,
    /// Caption tracks made from the source's subtitles.
    pub captions: Vec<CaptionTrack>,
    /// Audio renditions (several audio tracks).
    pub audio_tracks: Vec<AudioTrack>,
    /// The storyboard was made.
    pub storyboard: bool,
    /// `download.mp4` was made.
    pub download: bool,
    /// What was left out of the source.
    pub notes: Vec<String>,
    /// The source's colour as its first frame said it too (HDR metadata
    /// some containers carry only in the stream's SEI).
    pub colour: Option<crate::catalog::ColourInfo>,
}
