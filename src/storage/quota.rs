//! The storage quota (`--max-storage-bytes`) as a ledger that holds under
//! concurrency. Each video has bytes *stored* (on disk, as counted when
//! written) and bytes *reserved* (promised: an upload's declared length,
//! a job's estimated outputs). A reservation or a write is refused when
//! stored + reserved of every video, plus it, would cross the limit; so
//! concurrent uploads cannot all pass a check made before any of them wrote.

use super::VideoId;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// What one video holds and has been promised.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    stored: u64,
    reserved: u64,
}

/// The ledger (a limit of 0: no quota, and every call succeeds).
#[derive(Debug)]
pub struct Quota {
    limit: u64,
    state: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    videos: HashMap<VideoId, Usage>,
    /// Σ stored + reserved, kept with every change.
    total: u64,
}

/// The quota would be crossed.
#[derive(Debug, PartialEq, Eq)]
pub struct OverQuota;

impl Quota {
    pub fn new(limit: u64) -> Quota {
        Quota {
            limit,
            state: Mutex::new(Ledger::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The limit, when there is one.
    pub fn limit(&self) -> Option<u64> {
        (self.limit > 0).then_some(self.limit)
    }

    /// Bytes stored and reserved, all videos together.
    pub fn total(&self) -> u64 {
        self.lock().total
    }

    /// Bytes stored, all videos together (reservations apart).
    pub fn stored(&self) -> u64 {
        self.lock().videos.values().map(|u| u.stored).sum()
    }

    /// True if `bytes` more would fit now (a cheap early refusal; only
    /// [`Quota::reserve`] and [`Quota::store`] hold a place).
    pub fn fits(&self, bytes: u64) -> bool {
        self.limit == 0 || self.lock().total.saturating_add(bytes) <= self.limit
    }

    /// Reserves `bytes` more for `id`.
    pub fn reserve(&self, id: VideoId, bytes: u64) -> Result<(), OverQuota> {
        let mut l = self.lock();
        if self.limit > 0 && l.total.saturating_add(bytes) > self.limit {
            return Err(OverQuota);
        }
        l.total = l.total.saturating_add(bytes);
        l.videos.entry(id).or_default().reserved += bytes;
        Ok(())
    }

    /// Counts `bytes` written for `id`, taken from its reservation first;
    /// refused when what exceeds the reservation does not fit.
    pub fn store(&self, id: VideoId, bytes: u64) -> Result<(), OverQuota> {
        let mut l = self.lock();
        let u = l.videos.get(&id).copied().unwrap_or_default();
        let extra = bytes.saturating_sub(u.reserved);
        if self.limit > 0 && extra > 0 && l.total.saturating_add(extra) > self.limit {
            return Err(OverQuota);
        }
        l.total = l.total.saturating_add(extra);
        let u = l.videos.entry(id).or_default();
        u.reserved -= bytes - extra;
        u.stored += bytes;
        Ok(())
    }

    /// Takes back `bytes` counted by [`Quota::store`] that were not kept
    /// after all (a chunk that failed its checksum): they are reserved
    /// again, as before they came.
    pub fn unstore(&self, id: VideoId, bytes: u64) {
        let mut l = self.lock();
        if let Some(u) = l.videos.get_mut(&id) {
            let back = bytes.min(u.stored);
            u.stored -= back;
            u.reserved += back;
        }
    }

    /// Counts `bytes` `id` already holds (at start), quota or not.
    pub fn count(&self, id: VideoId, bytes: u64) {
        let mut l = self.lock();
        l.total = l.total.saturating_add(bytes);
        l.videos.entry(id).or_default().stored += bytes;
    }

    /// Takes `bytes` off what `id` stores (files removed, or counted before
    /// a write that came out smaller).
    pub fn drop_stored(&self, id: VideoId, bytes: u64) {
        let mut l = self.lock();
        let Some(u) = l.videos.get_mut(&id) else {
            return;
        };
        let gone = bytes.min(u.stored);
        u.stored -= gone;
        l.total = l.total.saturating_sub(gone);
    }

    /// Drops what is left of `id`'s reservation (its upload is complete).
    pub fn release(&self, id: VideoId) {
        let mut l = self.lock();
        let left = l
            .videos
            .get_mut(&id)
            .map_or(0, |u| std::mem::take(&mut u.reserved));
        l.total = l.total.saturating_sub(left);
    }

    /// Sets what `id` holds (measured on disk) and drops its reservation.
    pub fn settle(&self, id: VideoId, stored: u64) {
        let mut l = self.lock();
        let old = l
            .videos
            .insert(
                id,
                Usage {
                    stored,
                    reserved: 0,
                },
            )
            .unwrap_or_default();
        l.total = l
            .total
            .saturating_sub(old.stored + old.reserved)
            .saturating_add(stored);
    }

    /// Takes what a scan of a shared bucket `measured` for every video this
    /// node holds no reservation for (other nodes' videos come, grow and
    /// go); reservations of this node's uploads and jobs stay.
    pub fn sync(&self, measured: &HashMap<VideoId, u64>) {
        let mut l = self.lock();
        l.videos
            .retain(|id, u| u.reserved > 0 || measured.contains_key(id));
        for (id, bytes) in measured {
            let u = l.videos.entry(*id).or_default();
            if u.reserved == 0 {
                u.stored = *bytes;
            }
        }
        l.total = l.videos.values().map(|u| u.stored + u.reserved).sum();
    }

    /// Forgets `id` (deleted, or refused).
    pub fn forget(&self, id: VideoId) {
        let mut l = self.lock();
        if let Some(old) = l.videos.remove(&id) {
            l.total = l.total.saturating_sub(old.stored + old.reserved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_reservations_cannot_overcommit() {
        let q = Quota::new(300);
        let ids: Vec<VideoId> = (0..8).map(|_| VideoId::random()).collect();
        let accepted = ids.iter().filter(|id| q.reserve(**id, 100).is_ok()).count();
        assert_eq!(accepted, 3);
        assert_eq!(q.total(), 300);
        // Writes inside a reservation always fit; past it they must fit.
        q.store(ids[0], 100).unwrap();
        assert_eq!(q.store(ids[0], 1), Err(OverQuota));
        q.settle(ids[0], 40);
        assert_eq!(q.total(), 240);
        assert!(q.fits(60) && !q.fits(61));
        q.forget(ids[1]);
        q.forget(ids[1]);
        assert_eq!(q.total(), 140);
        let none = Quota::new(0);
        assert!(none.reserve(ids[7], u64::MAX).is_ok() && none.fits(u64::MAX));
    }
}
