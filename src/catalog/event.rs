//! What a change of a video tells the outside.

use serde::{Deserialize, Serialize};

/// What a change of a video tells the outside (a webhook event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Created,
    Ready,
    Failed,
    Deleted,
    /// A live's broadcast began (its first publisher let in).
    LiveStarted,
    /// A live's broadcast ended (kept: `video.ready` follows).
    LiveEnded,
}

impl Event {
    /// The webhook event's type.
    pub fn name(self) -> &'static str {
        match self {
            Event::Created => "video.created",
            Event::Ready => "video.ready",
            Event::Failed => "video.failed",
            Event::Deleted => "video.deleted",
            Event::LiveStarted => "live.started",
            Event::LiveEnded => "live.ended",
        }
    }
}
