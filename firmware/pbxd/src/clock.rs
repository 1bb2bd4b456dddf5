//! The daemon's only clock reads. Cores get time as arguments; shells call these.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Monotonic time from tokio's clock, so tests on a paused clock drive the cores.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Wall-clock time in Unix seconds (digest nonces, stored expiry times, audit).
#[allow(clippy::disallowed_methods)] // the one place the wall clock is read
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Wall-clock time in Unix milliseconds (call records).
#[allow(clippy::disallowed_methods)] // the one place the wall clock is read
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
