//! Per-client limits that need memory of past requests: uploads started per
//! client address per minute (a fixed one-minute window, bounded table).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Length of a rate window.
const WINDOW: Duration = Duration::from_secs(60);
/// Most addresses remembered; past this, expired windows are dropped, and
/// if that is not enough the table starts afresh (bounded memory beats
/// perfect accounting under a flood of addresses).
const MAX_CLIENTS: usize = 10_000;

/// Counts events per client address in one-minute windows.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_minute: u32,
    /// Window start and count, by address.
    clients: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    pub(crate) fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one event for `ip`; `Err(seconds until the window resets)`
    /// when over the limit. A limit of 0 means unlimited.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CLIENTS {
            map.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if map.len() >= MAX_CLIENTS {
                map.clear();
            }
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            let left = WINDOW.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address() {
        let r = RateLimiter::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(r.check(a).is_ok());
        assert!(r.check(a).is_ok());
        let wait = r.check(a).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(r.check(b).is_ok());
        assert!(RateLimiter::new(0).check(a).is_ok());
    }
}
