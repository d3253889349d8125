//! A job's progress written off its thread. The job notes its progress in
//! memory (4×/s) and asks, every 2 s, for its record to be written; this
//! thread writes it ([`Change::Persist`]: the record as memory has it, so a
//! late write never puts progress back). A store that stalls (a bucket that
//! stops answering) then holds this thread, not the encoder: the job goes
//! on into its publishing queue. Asks beyond [`WAITING`] are dropped (the
//! next one writes the same record, newer).

use crate::catalog::{Change, Lifecycle};
use crate::storage::VideoId;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

/// Asks waiting for the writer.
const WAITING: usize = 64;

/// The writer thread's door.
#[derive(Debug)]
pub(super) struct Persister {
    tx: SyncSender<VideoId>,
}

impl Persister {
    /// Starts the writer of `videos`' records (it ends with the `Persister`).
    pub(super) fn start(videos: Arc<Lifecycle>) -> Persister {
        let (tx, rx) = sync_channel::<VideoId>(WAITING);
        let spawned = std::thread::Builder::new()
            .name("hlsd-progress".into())
            .spawn(move || {
                for id in rx {
                    // Refused once the video moved on (ready, failed,
                    // deleted): nothing left to write.
                    let _ = videos.apply(id, Change::Persist);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no progress writer: progress stays in memory");
        }
        Persister { tx }
    }

    /// Asks for video `id`'s record to be written (never waits).
    pub(super) fn ask(&self, id: VideoId) {
        let _ = self.tx.try_send(id);
    }
}
