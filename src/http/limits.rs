//! Per-client limits that need memory of past requests: uploads started per
//! client address per minute (a fixed one-minute window, bounded table).
//! Time comes from the injected clock.

use crate::clock::SharedClock;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Length of a rate window.
const WINDOW: Duration = Duration::from_secs(60);
/// Most addresses remembered. When the table is full, expired windows are
/// dropped, then the oldest windows (never everyone's at once), so memory
/// stays bounded and a flood of addresses cannot reset a busy client.
const MAX_CLIENTS: usize = 10_000;

/// Counts events per client address in one-minute windows.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_minute: u32,
    clock: SharedClock,
    /// Window start (monotonic) and count, by address.
    clients: Mutex<HashMap<IpAddr, (Duration, u32)>>,
    /// Most addresses kept.
    capacity: usize,
}

impl RateLimiter {
    pub(crate) fn new(per_minute: u32, clock: SharedClock) -> Self {
        Self::with_capacity(per_minute, clock, MAX_CLIENTS)
    }

    fn with_capacity(per_minute: u32, clock: SharedClock, capacity: usize) -> Self {
        RateLimiter {
            per_minute,
            clock,
            clients: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Counts one event for `ip` (its key: see `client::key`);
    /// `Err(seconds until the window resets)` when over the limit. A limit
    /// of 0 means unlimited.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = self.clock.monotonic();
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity && !map.contains_key(&ip) {
            map.retain(|_, (start, _)| now.saturating_sub(*start) < WINDOW);
            if map.len() >= self.capacity {
                evict_oldest(&mut map, self.capacity / 10 + 1);
            }
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now.saturating_sub(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            let left = WINDOW.saturating_sub(now.saturating_sub(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// Drops the `n` entries whose windows started first.
fn evict_oldest(map: &mut HashMap<IpAddr, (Duration, u32)>, n: usize) {
    let mut starts: Vec<(Duration, IpAddr)> = map.iter().map(|(ip, (s, _))| (*s, *ip)).collect();
    let n = n.min(starts.len());
    starts.select_nth_unstable(n.saturating_sub(1));
    for (_, ip) in &starts[..n] {
        map.remove(ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn windows_reset_with_the_clock_and_the_table_stays_bounded() {
        let clock = ManualClock::at(0);
        let r = RateLimiter::with_capacity(1, clock.clone(), 100);
        let busy: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(r.check(busy).is_ok());
        clock.advance(Duration::from_secs(1));
        // A flood of new addresses evicts the oldest, not everyone.
        for i in 0..500u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0b00_0000 + i));
            assert!(r.check(ip).is_ok());
            assert!(r.clients.lock().unwrap().len() <= 100);
        }
        let late: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(r.check(late).is_ok());
        assert_eq!(r.check(late), Err(60));
        clock.advance(WINDOW);
        assert!(r.check(late).is_ok());
    }

    #[test]
    fn limits_per_address() {
        let r = RateLimiter::new(2, ManualClock::at(0));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(r.check(a).is_ok());
        assert!(r.check(a).is_ok());
        let wait = r.check(a).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(r.check(b).is_ok());
        assert!(RateLimiter::new(0, ManualClock::at(0)).check(a).is_ok());
    }
}
