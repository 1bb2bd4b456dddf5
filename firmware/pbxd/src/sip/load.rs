//! Is the SIP task keeping up? A sans-IO meter over the UDP receive loop: when most
//! wake-ups find a full batch waiting (the socket has a backlog), requests are arriving
//! faster than they are handled, and new calls should be turned away with 503 before
//! retransmissions pile on (a B2BUA that only slows down collapses: its callers resend).

use std::time::{Duration, Instant};

/// Measurement window.
const WINDOW: Duration = Duration::from_secs(1);
/// Fewest wake-ups in a window for a verdict (a handful of packets says nothing).
const MIN_WAKEUPS: u32 = 10;
/// Share of full batches that turns shedding on, and the share below which it ends.
const ON: f64 = 0.5;
const OFF: f64 = 0.1;

/// Hysteresis over the share of receive wake-ups that drained a full batch.
#[derive(Debug)]
pub(crate) struct LoadMeter {
    window_start: Instant,
    wakeups: u32,
    full: u32,
    overloaded: bool,
}

impl LoadMeter {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            wakeups: 0,
            full: 0,
            overloaded: false,
        }
    }

    /// One receive wake-up; `full` if it stopped at the batch limit with more waiting.
    /// Returns the new state when it changes.
    pub(crate) fn record(&mut self, now: Instant, full: bool) -> Option<bool> {
        self.wakeups += 1;
        self.full += u32::from(full);
        if now.saturating_duration_since(self.window_start) < WINDOW {
            return None;
        }
        let share = f64::from(self.full) / f64::from(self.wakeups.max(1));
        let enough = self.wakeups >= MIN_WAKEUPS;
        let next = if self.overloaded {
            share >= OFF && enough
        } else {
            enough && share >= ON
        };
        self.window_start = now;
        self.wakeups = 0;
        self.full = 0;
        (next != self.overloaded).then(|| {
            self.overloaded = next;
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // the test's epoch
    fn t0() -> Instant {
        Instant::now()
    }

    /// Feeds `n` wake-ups spread over one window, `full_every`-th of them full.
    fn window(
        m: &mut LoadMeter,
        start: Instant,
        n: u32,
        full: impl Fn(u32) -> bool,
    ) -> Option<bool> {
        let mut last = None;
        for i in 0..n {
            let at = start + WINDOW * i / n.max(1);
            if let Some(s) = m.record(at, full(i)) {
                last = Some(s);
            }
        }
        m.record(start + WINDOW, false).or(last)
    }

    #[test]
    fn backlog_turns_shedding_on_and_a_quiet_window_turns_it_off() {
        let t = t0();
        let mut m = LoadMeter::new(t);
        // Light load: full batches now and then.
        assert_eq!(window(&mut m, t, 100, |i| i % 20 == 0), None);
        // Saturated: most wake-ups find a backlog.
        assert_eq!(window(&mut m, t + WINDOW, 100, |i| i % 4 != 0), Some(true));
        // Still somewhat busy (30%): stays on (hysteresis).
        assert_eq!(window(&mut m, t + WINDOW * 2, 100, |i| i % 10 < 3), None);
        // Calm again.
        assert_eq!(window(&mut m, t + WINDOW * 3, 100, |_| false), Some(false));
    }

    #[test]
    fn a_few_packets_decide_nothing() {
        let t = t0();
        let mut m = LoadMeter::new(t);
        assert_eq!(window(&mut m, t, 5, |_| true), None);
    }
}
