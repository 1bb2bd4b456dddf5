//! Per-source protection of the SIP edge: brute-force blocking after failed
//! authentications and a request-rate limit against floods.
//!
//! Sans-IO: time comes in as `now`. The shell drops packets from blocked sources
//! before parsing them, so a blocked attacker costs one hash-map lookup per datagram.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Limits of the guard; defaults follow the common appliance setting (5 failures in 600 s).
#[derive(Debug, Clone, PartialEq)]
pub struct GuardConfig {
    /// Failed authentications from one address that trigger a block.
    pub max_failures: u32,
    /// Window in which failures are counted.
    pub failure_window: Duration,
    /// How long a block lasts.
    pub block_time: Duration,
    /// Sustained requests per second allowed from one address (0 disables the limit).
    pub rate_per_sec: u32,
    /// Burst allowance on top of the sustained rate.
    pub rate_burst: u32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            failure_window: Duration::from_secs(600),
            block_time: Duration::from_secs(3600),
            rate_per_sec: 200,
            rate_burst: 400,
        }
    }
}

/// What the guard says about a packet from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Process it.
    Allow,
    /// The source is blocked after failed authentications: drop silently.
    Blocked,
    /// The source exceeds its request rate: drop (a flood; answering would amplify it).
    RateLimited,
}

/// A block that has just been imposed; the shell logs and stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlock {
    /// The blocked address.
    pub ip: IpAddr,
    /// Failures counted in the window.
    pub failures: u32,
    /// Length of the block.
    pub duration: Duration,
}

#[derive(Debug)]
struct Failures {
    /// Start times of failures still inside the window, oldest first.
    times: Vec<Instant>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Upper bound on tracked sources, so that a spoofed-source flood cannot grow memory
/// without limit; when full, idle entries are evicted first.
const MAX_TRACKED: usize = 65_536;

/// Brute-force and flood guard for one listening endpoint.
#[derive(Debug)]
pub struct AuthGuard {
    cfg: GuardConfig,
    blocked: HashMap<IpAddr, Instant>,
    failures: HashMap<IpAddr, Failures>,
    buckets: HashMap<IpAddr, Bucket>,
}

impl AuthGuard {
    /// A guard with no history.
    pub fn new(cfg: GuardConfig) -> Self {
        Self {
            cfg,
            blocked: HashMap::new(),
            failures: HashMap::new(),
            buckets: HashMap::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &GuardConfig {
        &self.cfg
    }

    /// Restores a block loaded from the store (it lasts `remaining` from `now`).
    pub fn restore_block(&mut self, ip: IpAddr, now: Instant, remaining: Duration) {
        self.blocked.insert(ip, now + remaining);
    }

    /// Lifts a block (an installer's decision); returns whether one was active.
    pub fn lift_block(&mut self, ip: IpAddr) -> bool {
        self.failures.remove(&ip);
        self.blocked.remove(&ip).is_some()
    }

    /// Sources blocked at `now`, with the instant each block ends.
    pub fn blocked(&self, now: Instant) -> impl Iterator<Item = (IpAddr, Instant)> + '_ {
        self.blocked
            .iter()
            .filter(move |(_, until)| **until > now)
            .map(|(ip, until)| (*ip, *until))
    }

    /// Decides whether a packet from `ip` is processed at all.
    pub fn check(&mut self, now: Instant, ip: IpAddr) -> Verdict {
        if let Some(until) = self.blocked.get(&ip) {
            if *until > now {
                return Verdict::Blocked;
            }
            self.blocked.remove(&ip);
        }
        if self.cfg.rate_per_sec == 0 {
            return Verdict::Allow;
        }
        if self.buckets.len() >= MAX_TRACKED && !self.buckets.contains_key(&ip) {
            self.evict_idle_buckets(now);
        }
        let burst = f64::from(self.cfg.rate_burst.max(1));
        let rate = f64::from(self.cfg.rate_per_sec);
        let bucket = self.buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Verdict::Allow
        } else {
            Verdict::RateLimited
        }
    }

    /// Records a failed authentication; returns the block when this failure triggers one.
    pub fn record_failure(&mut self, now: Instant, ip: IpAddr) -> Option<NewBlock> {
        if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(&ip) {
            self.evict_old_failures(now);
        }
        let window = self.cfg.failure_window;
        let entry = self
            .failures
            .entry(ip)
            .or_insert(Failures { times: Vec::new() });
        entry
            .times
            .retain(|t| now.saturating_duration_since(*t) < window);
        entry.times.push(now);
        let count = u32::try_from(entry.times.len()).unwrap_or(u32::MAX);
        if count >= self.cfg.max_failures {
            self.failures.remove(&ip);
            self.blocked.insert(ip, now + self.cfg.block_time);
            Some(NewBlock {
                ip,
                failures: count,
                duration: self.cfg.block_time,
            })
        } else {
            None
        }
    }

    /// A successful authentication clears the failure history of the source.
    pub fn record_success(&mut self, ip: IpAddr) {
        self.failures.remove(&ip);
    }

    /// Drops state that no longer matters (expired blocks, stale failures, idle buckets).
    pub fn purge(&mut self, now: Instant) {
        self.blocked.retain(|_, until| *until > now);
        self.evict_old_failures(now);
        self.evict_idle_buckets(now);
    }

    fn evict_old_failures(&mut self, now: Instant) {
        let window = self.cfg.failure_window;
        self.failures.retain(|_, f| {
            f.times
                .last()
                .is_some_and(|t| now.saturating_duration_since(*t) < window)
        });
    }

    fn evict_idle_buckets(&mut self, now: Instant) {
        // A bucket idle long enough to have refilled carries no information.
        let refill = Duration::from_secs(u64::from(
            self.cfg.rate_burst / self.cfg.rate_per_sec.max(1) + 1,
        ));
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.last) < refill);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
    fn start() -> Instant {
        Instant::now()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn five_failures_in_window_block_the_source_for_block_time() {
        let mut g = AuthGuard::new(GuardConfig::default());
        let t0 = start();
        let a = ip("192.0.2.7");
        for i in 0..4 {
            assert_eq!(g.record_failure(t0 + Duration::from_secs(i * 60), a), None);
        }
        let block = g.record_failure(t0 + Duration::from_secs(300), a);
        assert_eq!(
            block,
            Some(NewBlock {
                ip: a,
                failures: 5,
                duration: Duration::from_secs(3600)
            })
        );
        let t = t0 + Duration::from_secs(301);
        assert_eq!(g.check(t, a), Verdict::Blocked);
        assert_eq!(g.check(t, ip("192.0.2.8")), Verdict::Allow);
        let after = t0 + Duration::from_secs(300 + 3600);
        assert_eq!(g.check(after, a), Verdict::Allow);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let mut g = AuthGuard::new(GuardConfig::default());
        let t0 = start();
        let a = ip("2001:db8::1");
        for i in 0..10u64 {
            // one failure every 150 s: never 5 within 600 s
            assert_eq!(g.record_failure(t0 + Duration::from_secs(i * 150), a), None);
        }
        assert_eq!(g.check(t0 + Duration::from_secs(1600), a), Verdict::Allow);
    }

    #[test]
    fn success_resets_the_count() {
        let mut g = AuthGuard::new(GuardConfig::default());
        let t0 = start();
        let a = ip("192.0.2.9");
        for _ in 0..4 {
            assert_eq!(g.record_failure(t0, a), None);
        }
        g.record_success(a);
        for _ in 0..4 {
            assert_eq!(g.record_failure(t0, a), None);
        }
    }

    #[test]
    fn lifted_block_allows_again() {
        let mut g = AuthGuard::new(GuardConfig::default());
        let t0 = start();
        let a = ip("192.0.2.10");
        g.restore_block(a, t0, Duration::from_secs(100));
        assert_eq!(g.check(t0, a), Verdict::Blocked);
        assert_eq!(g.blocked(t0).count(), 1);
        assert!(g.lift_block(a));
        assert_eq!(g.check(t0, a), Verdict::Allow);
    }

    #[test]
    fn rate_limit_allows_burst_then_sustained_rate() {
        let cfg = GuardConfig {
            rate_per_sec: 10,
            rate_burst: 20,
            ..GuardConfig::default()
        };
        let mut g = AuthGuard::new(cfg);
        let t0 = start();
        let a = ip("192.0.2.11");
        let allowed = (0..100)
            .filter(|_| g.check(t0, a) == Verdict::Allow)
            .count();
        assert_eq!(allowed, 20);
        // one second later, ten more tokens
        let t1 = t0 + Duration::from_secs(1);
        let allowed = (0..100)
            .filter(|_| g.check(t1, a) == Verdict::Allow)
            .count();
        assert_eq!(allowed, 10);
        assert_eq!(g.check(t1, ip("192.0.2.12")), Verdict::Allow);
    }

    #[test]
    fn zero_rate_disables_the_limit() {
        let mut g = AuthGuard::new(GuardConfig {
            rate_per_sec: 0,
            ..GuardConfig::default()
        });
        let t0 = start();
        assert!((0..10_000).all(|_| g.check(t0, ip("192.0.2.13")) == Verdict::Allow));
    }
}
