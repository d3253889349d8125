//! Node freshness: with a store other nodes share, what a request reads of
//! the catalog is brought up to date first, and what only the node holding
//! a video's work may change is refused elsewhere. The HTTP layer says what
//! a request reads ([`Reading`], from its route) and asks here; the rules
//! (how old a record may be, who holds what) live in the catalog.

use super::Catalog;
use crate::error::Error;
use crate::storage::VideoId;

/// What a request is about to read of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The library's listing (videos other nodes added or removed too).
    All,
    /// One video's record.
    Video(VideoId),
    /// One video's record, to change what only the node holding its work
    /// may: a resumable upload's bytes (its spool is there), a video's
    /// captions while its job runs there (that job rewrites the master and
    /// sweeps unknown folders from its own copy of the record).
    HeldWork(VideoId),
}

impl Reading {
    fn video(self) -> Option<VideoId> {
        match self {
            Reading::All => None,
            Reading::Video(id) | Reading::HeldWork(id) => Some(id),
        }
    }
}

impl Catalog {
    /// True when [`Catalog::freshen`] has a record to read from the store
    /// (memory only: the serving path asks before it hops to a blocking
    /// thread, which most requests then need not do). Never with a store
    /// of this node's own.
    pub fn needs_reading(&self, reading: Reading) -> bool {
        self.node().is_some() && reading.video().is_none_or(|id| self.is_stale(id))
    }

    /// Brings what `reading` reads up to date with the store (blocking).
    /// A video this node does not hold while the store cannot say whether
    /// it exists: [`Error::StoreUnavailable`] (try again), not a 404 (it
    /// is gone). Other failures keep what memory holds (logged).
    pub fn freshen(&self, reading: Reading) -> Result<(), Error> {
        match reading.video() {
            None => {
                self.refresh_all();
                Ok(())
            }
            Some(id) => match self.refresh(id).map_err(Error::from) {
                Err(Error::StoreUnavailable) if self.peek(id, |_| ()).is_none() => {
                    Err(Error::StoreUnavailable)
                }
                _ => Ok(()),
            },
        }
    }

    /// [`Error::OtherNode`] (503 with `Retry-After`) when `reading` changes
    /// what another node's work holds (see [`Reading::HeldWork`]).
    pub fn check_holder(&self, reading: Reading) -> Result<(), Error> {
        let Reading::HeldWork(id) = reading else {
            return Ok(());
        };
        match self.peek(id, |r| self.held_elsewhere(r)) {
            Some(true) => Err(Error::OtherNode),
            _ => Ok(()),
        }
    }
}
