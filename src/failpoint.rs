//! Failpoints: named places between two durable steps of a flow, where the
//! crash-point test kills the process as `kill -9` would (no destructor,
//! no flush). Compiled only with the `failpoints` feature (the test
//! build); without it [`failpoint!`](crate::failpoint) is nothing.
//!
//! `HLSD_FAILPOINT=<name>` kills the process the first time `<name>` is
//! reached, `<name>@<n>` the n-th time. Before dying it prints
//! `hlsd: failpoint <name> reached` on standard error, so the test knows
//! the flow got there. The test finds every failpoint by reading the
//! `failpoint!("…")` calls in `src/`: a new one is covered without editing
//! it (its flow is the part of its name before the first dot).

/// Marks a failpoint (see the module docs).
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoint::hit($name);
    };
}

/// Kills the process if `name` is the failpoint asked for and this is the
/// time.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let target = TARGET.get_or_init(|| {
        let v = std::env::var("HLSD_FAILPOINT").ok()?;
        Some(match v.split_once('@') {
            Some((n, k)) => (n.to_owned(), k.parse().unwrap_or(1)),
            None => (v, 1),
        })
    });
    let Some((want, nth)) = target else {
        return;
    };
    if want == name && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "hlsd: failpoint {name} reached");
        crate::ffi::kill_self();
    }
}
