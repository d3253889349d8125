//! Time, injected. Wall-clock time (token expiry, record timestamps,
//! upload expiry) and monotonic time (rate-limit windows) come from a
//! [`Clock`], so tests can move it instead of waiting. Async timeouts use
//! `tokio::time`, whose clock tests pause and advance the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Unix time in milliseconds.
    fn unix_ms(&self) -> u64;
    /// Monotonic time since an arbitrary origin (never goes back).
    fn monotonic(&self) -> Duration;

    /// Unix time in seconds.
    fn unix(&self) -> u64 {
        self.unix_ms() / 1000
    }
}

/// The shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock {
            origin: Instant::now(),
        })
    }
}

impl Clock for SystemClock {
    fn unix_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// Starts at `unix_ms`.
    pub fn at(unix_ms: u64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            ms: AtomicU64::new(unix_ms),
        })
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn unix_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }

    fn monotonic(&self) -> Duration {
        Duration::from_millis(self.ms.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_when_told() {
        let c = ManualClock::at(5_000);
        assert_eq!(c.unix(), 5);
        c.advance(Duration::from_secs(2));
        assert_eq!(c.unix_ms(), 7_000);
        assert_eq!(c.monotonic(), Duration::from_secs(7));
        let s = SystemClock::shared();
        assert!(s.unix() > 1_700_000_000);
        assert!(s.monotonic() <= s.monotonic());
    }
}
