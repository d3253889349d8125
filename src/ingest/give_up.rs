//! What is left of an upload that will not be (see [`give_up`]).

use super::IngestContext;
use crate::catalog::Change;
use crate::jobs::Start;
use crate::storage::VideoId;
use crate::Error;

/// Removes every trace of a refused upload (record, files, quota),
/// through its tombstone: a crash part-way finishes it at the next start.
pub(super) async fn discard(ctx: &IngestContext<'_>, id: VideoId) {
    let videos = ctx.videos.clone();
    let _ = tokio::task::spawn_blocking(move || {
        videos.tombstone(id)?;
        videos.remove(id)
    })
    .await;
}

/// What is left of an upload that will not be: nothing (a refused
/// upload), an import's record saying why, or a live awaiting its
/// publisher again (only its files go); `e` again.
pub(super) async fn give_up(ctx: &IngestContext<'_>, id: VideoId, how: Start, e: Error) -> Error {
    match how {
        Start::Import => record_failure(ctx, id, &e).await,
        Start::Live => {
            let videos = ctx.videos.clone();
            let gone = move || videos.store().remove_outputs(id, false, &[]);
            let _ = tokio::task::spawn_blocking(gone).await;
        }
        _ => discard(ctx, id).await,
    }
    e
}

/// An import that failed: the record says why (durably, with its event),
/// then its files go; a video deleted meanwhile stays deleted.
async fn record_failure(ctx: &IngestContext<'_>, id: VideoId, e: &Error) {
    let videos = ctx.videos.clone();
    let failed = Change::Failed {
        code: e.code().into(),
        message: e.public_message(),
    };
    let _ = tokio::task::spawn_blocking(move || {
        videos.apply(id, failed)?;
        crate::failpoint!("import.after_failed");
        videos.store().remove_outputs(id, false, &[]);
        Ok::<_, Error>(())
    })
    .await;
}
