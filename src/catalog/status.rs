//! Where a video is in its life (`Status`), as records say it.

use serde::{Deserialize, Serialize};

/// Where a video is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The upload is still arriving (segments may already exist).
    Receiving,
    /// Fully received, waiting for a job slot.
    Queued,
    /// Fully received, being transcoded.
    Processing,
    /// Done: the playlist is VOD with ENDLIST.
    Ready,
    /// Gave up; `error` says why.
    Failed,
    /// A live broadcast: awaiting its publisher, or arriving (segments
    /// published as it goes); `processing` once the publisher stops.
    Live,
    /// Being deleted: its job or upload is stopping; the folder goes next.
    Deleting,
}

impl Status {
    /// Its name as the API says it (`ready`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Receiving => "receiving",
            Status::Queued => "queued",
            Status::Processing => "processing",
            Status::Ready => "ready",
            Status::Failed => "failed",
            Status::Deleting => "deleting",
            Status::Live => "live",
        }
    }

    /// True while a job may still change the outputs.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Status::Receiving | Status::Queued | Status::Processing | Status::Live
        )
    }
}
