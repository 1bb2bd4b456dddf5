//! Login sessions, in memory (sans-IO: time comes in as `now`).
//!
//! The cookie carries a random 256-bit id; the map is keyed by its SHA-256, so neither a
//! memory dump nor lookup timing gives a usable id. Sessions end after [`IDLE_TIMEOUT`]
//! without a request, after [`ABSOLUTE_TIMEOUT`] in any case, at logout, and when the
//! account is disabled or changes its password (other sessions). A restart of pbxd logs
//! everyone out, which is acceptable for an appliance UI and keeps the ids off the disk.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A session unused for this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// No session lives longer than this, used or not.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// Live sessions kept at most; the least recently used goes first.
pub const MAX_SESSIONS: usize = 256;

/// A new session as handed to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// Cookie value: 64 lowercase hex digits.
    pub id: String,
    /// The anti-CSRF token for `X-CSRF-Token`: 64 lowercase hex digits.
    pub csrf: String,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Whose session.
    pub username: String,
    /// The anti-CSRF token.
    pub csrf: String,
}

#[derive(Debug)]
struct Entry {
    username: String,
    csrf: String,
    created: Instant,
    last_used: Instant,
}

/// The session table.
#[derive(Debug, Default)]
pub struct Sessions {
    map: HashMap<[u8; 32], Entry>,
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Starts a session for `username` with fresh random id and CSRF token.
    pub fn create(&mut self, username: &str, now: Instant, random: [[u8; 32]; 2]) -> NewSession {
        self.expire(now);
        if self.map.len() >= MAX_SESSIONS {
            if let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            {
                self.map.remove(&oldest);
            }
        }
        let id = hex::encode(random[0]);
        let csrf = hex::encode(random[1]);
        self.map.insert(
            key(&id),
            Entry {
                username: username.to_owned(),
                csrf: csrf.clone(),
                created: now,
                last_used: now,
            },
        );
        NewSession { id, csrf }
    }

    /// The session for a cookie value, if live; marks it used.
    pub fn touch(&mut self, id: &str, now: Instant) -> Option<SessionInfo> {
        let k = key(id);
        let entry = self.map.get_mut(&k)?;
        if expired(entry, now) {
            self.map.remove(&k);
            return None;
        }
        entry.last_used = now;
        Some(SessionInfo {
            username: entry.username.clone(),
            csrf: entry.csrf.clone(),
        })
    }

    /// Whether the session for a cookie value is live, without marking it used (a
    /// long-lived event stream must not keep a session from expiring).
    pub fn peek(&self, id: &str, now: Instant) -> bool {
        self.map.get(&key(id)).is_some_and(|e| !expired(e, now))
    }

    /// Ends one session; returns whose it was.
    pub fn remove(&mut self, id: &str) -> Option<String> {
        self.map.remove(&key(id)).map(|e| e.username)
    }

    /// Ends every session of `username` except `keep` (a cookie value); returns how many.
    pub fn remove_user(&mut self, username: &str, keep: Option<&str>) -> usize {
        let keep = keep.map(key);
        let before = self.map.len();
        self.map
            .retain(|k, e| e.username != username || Some(*k) == keep);
        before - self.map.len()
    }

    /// Live sessions (after dropping expired ones).
    pub fn len(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.map.len()
    }

    /// True when no session is live.
    pub fn is_empty(&mut self, now: Instant) -> bool {
        self.len(now) == 0
    }

    fn expire(&mut self, now: Instant) {
        self.map.retain(|_, e| !expired(e, now));
    }
}

fn expired(e: &Entry, now: Instant) -> bool {
    now.saturating_duration_since(e.last_used) >= IDLE_TIMEOUT
        || now.saturating_duration_since(e.created) >= ABSOLUTE_TIMEOUT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
    fn epoch() -> Instant {
        Instant::now()
    }

    fn rnd(n: u8) -> [[u8; 32]; 2] {
        [[n; 32], [n.wrapping_add(100); 32]]
    }

    #[test]
    fn idle_sessions_expire_and_use_keeps_them_alive_until_the_absolute_limit() {
        let t0 = epoch();
        let mut s = Sessions::default();
        let a = s.create("anna", t0, rnd(1));
        assert_eq!(a.id.len(), 64);
        let minute = Duration::from_secs(60);
        // used every 29 minutes: alive...
        let mut t = t0;
        while t + 29 * minute < t0 + ABSOLUTE_TIMEOUT {
            t += 29 * minute;
            assert!(s.touch(&a.id, t).is_some(), "alive at {:?}", t - t0);
        }
        // ...until 12 hours after creation
        assert_eq!(s.touch(&a.id, t0 + ABSOLUTE_TIMEOUT), None);
        let b = s.create("ben", t0, rnd(2));
        assert!(s.touch(&b.id, t0 + IDLE_TIMEOUT - minute).is_some());
        assert_eq!(s.touch(&b.id, t0 + 2 * IDLE_TIMEOUT - minute), None);
        // peek does not refresh: an untouched session still expires on time.
        let c = s.create("cora", t0, rnd(3));
        assert!(s.peek(&c.id, t0 + IDLE_TIMEOUT - minute));
        assert!(!s.peek(&c.id, t0 + IDLE_TIMEOUT));
        assert!(!s.peek("unknown", t0));
    }

    #[test]
    fn logout_and_user_wide_removal() {
        let t0 = epoch();
        let mut s = Sessions::default();
        let a1 = s.create("anna", t0, rnd(1));
        let a2 = s.create("anna", t0, rnd(2));
        let b = s.create("ben", t0, rnd(3));
        assert_eq!(s.touch(&a1.id, t0).map(|i| i.csrf), Some(a1.csrf.clone()));
        assert_eq!(s.remove_user("anna", Some(&a1.id)), 1);
        assert!(s.touch(&a2.id, t0).is_none());
        assert!(s.touch(&a1.id, t0).is_some());
        assert_eq!(s.remove(&b.id).as_deref(), Some("ben"));
        assert!(s.touch(&b.id, t0).is_none());
        assert!(s.touch("not-a-session", t0).is_none());
        assert_eq!(s.len(t0), 1);
    }

    #[test]
    fn the_table_is_bounded_least_recently_used_out() {
        let t0 = epoch();
        let mut s = Sessions::default();
        let first = s.create("u", t0, [[0; 32], [0; 32]]);
        for i in 1..=MAX_SESSIONS {
            let mut r = [[0u8; 32]; 2];
            r[0][..8].copy_from_slice(&(i as u64).to_le_bytes());
            s.create("u", t0 + Duration::from_millis(i as u64), r);
        }
        assert_eq!(s.len(t0), MAX_SESSIONS);
        assert!(s.touch(&first.id, t0).is_none(), "oldest evicted");
    }
}
