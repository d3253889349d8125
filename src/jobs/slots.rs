//! Transcode slots (`--jobs`): a counting semaphore for job threads, with
//! a holder that can give its slot back while it waits for upload bytes
//! and take one again when they arrive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long one wait on the condvar lasts before re-checking the cancel
/// flag. Wakeups come from notifications; this only bounds a missed one.
const WAIT_SLICE: Duration = Duration::from_millis(250);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The free slots.
#[derive(Debug)]
pub(crate) struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    pub(crate) fn new(n: usize) -> Arc<Slots> {
        Arc::new(Slots {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        })
    }

    /// Blocks until a slot is free; `false` if `stop()` said to give up
    /// first (cancelled, or the upload was aborted).
    fn take(&self, stop: &dyn Fn() -> bool) -> bool {
        let mut free = lock(&self.free);
        loop {
            if stop() {
                return false;
            }
            if *free > 0 {
                *free -= 1;
                return true;
            }
            free = match self.freed.wait_timeout(free, WAIT_SLICE) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    fn give(&self) {
        *lock(&self.free) += 1;
        self.freed.notify_one();
    }

    /// Wakes every waiter (a cancel happened: they re-check their flag).
    pub(crate) fn wake_all(&self) {
        self.freed.notify_all();
    }
}

/// One job's claim on a slot: held while it transcodes, given back while
/// it waits for its upload, returned on drop.
#[derive(Debug)]
pub(crate) struct SlotHolder {
    slots: Arc<Slots>,
    held: AtomicBool,
}

impl SlotHolder {
    pub(crate) fn new(slots: &Arc<Slots>) -> Arc<SlotHolder> {
        Arc::new(SlotHolder {
            slots: slots.clone(),
            held: AtomicBool::new(false),
        })
    }

    /// Takes a slot (blocking); `false` if `stop()` turned true first.
    pub(crate) fn acquire(&self, stop: &dyn Fn() -> bool) -> bool {
        if self.held.load(Ordering::Acquire) {
            return true;
        }
        let got = self.slots.take(stop);
        if got {
            self.held.store(true, Ordering::Release);
        }
        got
    }

    /// Gives the slot back, if held.
    pub(crate) fn release(&self) {
        if self.held.swap(false, Ordering::AcqRel) {
            self.slots.give();
        }
    }

    pub(crate) fn is_held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }
}

impl Drop for SlotHolder {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_slot_serves_another_job() {
        let slots = Slots::new(1);
        let a = SlotHolder::new(&slots);
        let b = SlotHolder::new(&slots);
        assert!(a.acquire(&|| false));
        // b would wait forever: its stop condition ends the wait.
        assert!(!b.acquire(&|| true));
        a.release();
        assert!(b.acquire(&|| false));
        assert!(b.is_held() && !a.is_held());
        drop(b);
        assert!(a.acquire(&|| false));
    }
}
