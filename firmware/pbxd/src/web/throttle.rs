//! Login throttling (sans-IO): failures counted per key in a sliding window; a key with
//! `max_failures` in the window is refused until the oldest of them leaves it.
//! Keys are "ip:ADDR" (IPv6 by /64, which one host usually owns) and "user:NAME".

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The sliding window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed logins per account in [`WINDOW`] before it is refused.
pub const MAX_ACCOUNT_FAILURES: usize = 5;
/// Failed logins per source address in [`WINDOW`]; higher than per account because an
/// office shares one address behind NAT.
pub const MAX_SOURCE_FAILURES: usize = 10;
/// Keys tracked at most. When full (after dropping stale keys) new keys are not
/// tracked; the per-source limit still bounds each source, and memory stays bounded.
pub const MAX_KEYS: usize = 4096;

/// One failure table.
#[derive(Debug)]
pub struct Throttle {
    max_failures: usize,
    failures: HashMap<String, VecDeque<Instant>>,
}

impl Throttle {
    /// A table refusing a key after `max_failures` failures in [`WINDOW`].
    pub fn new(max_failures: usize) -> Self {
        Self {
            max_failures: max_failures.max(1),
            failures: HashMap::new(),
        }
    }

    /// `Err(retry_after)` while `key` is refused.
    pub fn check(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        let Some(list) = self.failures.get_mut(key) else {
            return Ok(());
        };
        prune(list, now);
        if list.len() < self.max_failures {
            if list.is_empty() {
                self.failures.remove(key);
            }
            return Ok(());
        }
        let oldest = list.front().copied().unwrap_or(now);
        Err((oldest + WINDOW)
            .saturating_duration_since(now)
            .max(Duration::from_secs(1)))
    }

    /// Counts a failure for `key`.
    pub fn record_failure(&mut self, key: &str, now: Instant) {
        if !self.failures.contains_key(key) && self.failures.len() >= MAX_KEYS {
            self.failures.retain(|_, l| {
                prune(l, now);
                !l.is_empty()
            });
            if self.failures.len() >= MAX_KEYS {
                return;
            }
        }
        let list = self.failures.entry(key.to_owned()).or_default();
        prune(list, now);
        list.push_back(now);
        // Only the newest `max_failures` matter for the decision.
        while list.len() > self.max_failures {
            list.pop_front();
        }
    }

    /// Forgets `key` (a successful login to the account).
    pub fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

fn prune(list: &mut VecDeque<Instant>, now: Instant) {
    while list
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
    {
        list.pop_front();
    }
}

/// The throttle key of a source address.
pub fn source_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The throttle key of an account name: lowercased (names are lowercase) and cut to 64
/// characters (no name is longer), so a huge name cannot bloat the table.
pub fn account_key(username: &str) -> String {
    let name: String = username.chars().take(64).collect();
    format!("user:{}", name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
    fn epoch() -> Instant {
        Instant::now()
    }

    #[test]
    fn refused_after_the_limit_until_the_oldest_failure_leaves_the_window() {
        let t0 = epoch();
        let mut t = Throttle::new(5);
        let s = Duration::from_secs(1);
        for i in 0..5 {
            assert_eq!(t.check("user:anna", t0 + i * s), Ok(()));
            t.record_failure("user:anna", t0 + i * s);
        }
        assert_eq!(t.check("user:anna", t0 + 5 * s), Err(WINDOW - 5 * s));
        assert_eq!(t.check("user:ben", t0 + 5 * s), Ok(()));
        assert!(t.check("user:anna", t0 + WINDOW - s).is_err());
        assert_eq!(t.check("user:anna", t0 + WINDOW), Ok(()));
        t.record_failure("user:anna", t0 + WINDOW);
        t.clear("user:anna");
        assert_eq!(t.check("user:anna", t0 + WINDOW), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = epoch();
        let mut t = Throttle::new(2);
        for i in 0..MAX_KEYS + 10 {
            t.record_failure(&format!("user:{i}"), t0);
        }
        assert_eq!(t.failures.len(), MAX_KEYS);
        // stale keys make room again
        t.record_failure("user:new", t0 + WINDOW);
        assert_eq!(t.failures.len(), 1);
    }

    #[test]
    fn source_keys_group_ipv6_by_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_eq!(
            source_key("::ffff:192.0.2.7".parse().unwrap()),
            "ip:192.0.2.7"
        );
        assert_eq!(account_key("Anna"), "user:anna");
        assert_eq!(account_key(&"x".repeat(10_000)).len(), "user:".len() + 64);
    }
}
