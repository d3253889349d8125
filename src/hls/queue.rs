//! A job's publications, in order, on a thread of their own: the packet
//! loop hands each finished segment (and the playlist that lists it) over
//! and goes on encoding, while the store makes them durable: an fsync on a
//! folder, an upload to a bucket. One thread per job, never one per
//! request, and never a tokio worker.
//!
//! Order: one queue per job, worked through first in, first out, so a
//! segment is durable before the playlist that lists it, and a playlist's
//! versions land in the order they were made. What must come after
//! everything queued (the master, which names the playlists; the finished
//! video) waits for [`Publishing::flush`] first.
//!
//! Back-pressure: at most [`QUEUED`] publications wait. When the store is
//! slower than the encoder, the packet loop waits on the full queue, so
//! what a slow bucket costs is bounded: that many segments of scratch disk
//! and a few hundred bytes of playlist text each, whatever the video's
//! length.

use crate::storage::{Store, VideoId};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// Publications waiting per job, at most (a segment of each of a few
/// rungs, twice over).
pub(crate) const QUEUED: usize = 8;

/// Publications waiting in every job's queue (a gauge for `/metrics`).
static WAITING: AtomicU64 = AtomicU64::new(0);
/// Times a packet loop found its queue full and waited (a counter).
static FULL: AtomicU64 = AtomicU64::new(0);

/// (waiting now, times a queue was full) over every job.
pub fn stats() -> (u64, u64) {
    (
        WAITING.load(Ordering::Relaxed),
        FULL.load(Ordering::Relaxed),
    )
}

/// Run once a publication's playlist is written (a low-latency rung's edge
/// moves: requests waiting for it go on).
pub(crate) type Then = Box<dyn FnOnce() + Send>;

/// One publication: files the muxer closed, then the text of a playlist
/// that lists them, then files no playlist lists any more (a sliding
/// window's oldest segments), removed (or only a wake-up, to flush).
enum Order {
    Publish {
        files: Vec<String>,
        playlist: String,
        text: String,
        gone: Vec<String>,
        then: Option<Then>,
    },
    Flush(SyncSender<()>),
}

/// The job's queue and its thread; dropping it abandons what still waits
/// (a failed or cancelled job: its outputs are removed next) and returns
/// once the thread has stopped, so nothing is written after the job ends.
pub(crate) struct Publishing {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A publisher's way into its job's queue.
#[derive(Clone)]
pub(crate) struct Queue {
    shared: Arc<Shared>,
}

struct Shared {
    tx: Mutex<Option<SyncSender<Order>>>,
    /// The first failure, for the next caller; `broken` stays set.
    failure: Mutex<Option<io::Error>>,
    broken: AtomicBool,
    abandon: AtomicBool,
}

impl Publishing {
    /// Starts the publishing thread of video `id`'s job.
    pub(crate) fn start(store: &Store, id: VideoId) -> io::Result<Publishing> {
        let (tx, rx) = sync_channel(QUEUED);
        let shared = Arc::new(Shared {
            tx: Mutex::new(Some(tx)),
            failure: Mutex::new(None),
            broken: AtomicBool::new(false),
            abandon: AtomicBool::new(false),
        });
        let (s, store) = (shared.clone(), store.clone());
        let thread = std::thread::Builder::new()
            .name("publish".into())
            .spawn(move || work(&s, &store, id, &rx))?;
        Ok(Publishing {
            shared,
            thread: Some(thread),
        })
    }

    /// The way in, for a rung's publisher.
    pub(crate) fn queue(&self) -> Queue {
        Queue {
            shared: self.shared.clone(),
        }
    }

    /// Waits until everything queued is durable; its first failure if one
    /// failed.
    pub(crate) fn flush(&self) -> io::Result<()> {
        self.queue().flush()
    }
}

impl Drop for Publishing {
    fn drop(&mut self) {
        self.shared.abandon.store(true, Ordering::SeqCst);
        drop(lock(&self.shared.tx).take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Queue {
    /// Queues `files` (relative to the video) and then `text` as
    /// `playlist`; waits while the queue is full. A failure of an earlier
    /// publication is returned here (the job stops).
    pub(crate) fn publish(
        &self,
        files: Vec<String>,
        playlist: String,
        text: String,
    ) -> io::Result<()> {
        self.publish_sliding(files, playlist, text, Vec::new())
    }

    /// [`Queue::publish`], then removes `gone` (once the playlist that no
    /// longer lists them is durable).
    pub(crate) fn publish_sliding(
        &self,
        files: Vec<String>,
        playlist: String,
        text: String,
        gone: Vec<String>,
    ) -> io::Result<()> {
        self.publish_then(files, (playlist, text), gone, None)
    }

    /// [`Queue::publish_sliding`], then runs `then`.
    pub(crate) fn publish_then(
        &self,
        files: Vec<String>,
        (playlist, text): (String, String),
        gone: Vec<String>,
        then: Option<Then>,
    ) -> io::Result<()> {
        self.send(Order::Publish {
            files,
            playlist,
            text,
            gone,
            then,
        })
    }

    /// Waits until everything queued so far is durable.
    pub(crate) fn flush(&self) -> io::Result<()> {
        let (tx, rx) = sync_channel(1);
        self.send(Order::Flush(tx))?;
        // The sender is dropped unanswered when the job's publishing stops.
        rx.recv().map_err(|_| stopped())?;
        self.failed()
    }

    fn send(&self, order: Order) -> io::Result<()> {
        self.failed()?;
        let guard = lock(&self.shared.tx);
        let tx = guard.as_ref().ok_or_else(stopped)?;
        WAITING.fetch_add(1, Ordering::Relaxed);
        let sent = match tx.try_send(order) {
            Err(std::sync::mpsc::TrySendError::Full(order)) => {
                FULL.fetch_add(1, Ordering::Relaxed);
                tx.send(order).map_err(|_| ())
            }
            other => other.map_err(|_| ()),
        };
        if sent.is_err() {
            WAITING.fetch_sub(1, Ordering::Relaxed);
            return Err(stopped());
        }
        Ok(())
    }

    fn failed(&self) -> io::Result<()> {
        if !self.shared.broken.load(Ordering::SeqCst) {
            return Ok(());
        }
        Err(lock(&self.shared.failure)
            .take()
            .unwrap_or_else(|| io::Error::other("an earlier publication failed")))
    }
}

/// The publishing thread: every order in turn, until the queue closes.
fn work(shared: &Shared, store: &Store, id: VideoId, rx: &Receiver<Order>) {
    while let Ok(order) = rx.recv() {
        WAITING.fetch_sub(1, Ordering::Relaxed);
        let skip = shared.broken.load(Ordering::SeqCst) || shared.abandon.load(Ordering::SeqCst);
        match order {
            Order::Flush(done) => {
                let _ = done.send(());
            }
            Order::Publish { .. } if skip => {}
            Order::Publish {
                files,
                playlist,
                text,
                gone,
                then,
            } => {
                let done = files
                    .iter()
                    .try_for_each(|f| store.publish_file(id, f).map(|_| ()))
                    .and_then(|()| {
                        crate::failpoint!("publish.after_segments");
                        store.write(id, &playlist, text.as_bytes())
                    });
                crate::failpoint!("publish.after_playlist");
                if let Err(e) = done {
                    *lock(&shared.failure) = Some(e);
                    shared.broken.store(true, Ordering::SeqCst);
                    continue;
                }
                if let Some(then) = then {
                    then();
                }
                for f in gone {
                    let _ = store.remove(id, &f);
                }
            }
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("the job's publishing stopped")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
