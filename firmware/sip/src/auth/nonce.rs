//! Server nonces bound to this server by an HMAC, with nonce-count replay protection.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of HMAC kept in a nonce: 128 bits is far beyond guessing range.
const MAC_LEN: usize = 16;
/// timestamp (8) || counter (8) || truncated MAC.
const RAW_LEN: usize = 16 + MAC_LEN;
/// Default bound on the nonces whose counts we remember.
pub const DEFAULT_MAX_TRACKED: usize = 4096;

/// Verdict of [`NonceManager::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, in date, and `nc` is new: accept.
    Valid,
    /// Ours but expired (or no longer tracked): challenge again with `stale=true`, so the
    /// client retries with a fresh nonce without asking its user.
    Stale,
    /// Not issued by this server (forged, truncated, another server's): challenge afresh.
    Invalid,
    /// `nc` not above the last count seen for this nonce: a replayed request.
    Replay,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    issued: u64,
    last_nc: u32,
}

/// Issues and checks digest nonces without I/O: time comes in as Unix seconds.
///
/// A nonce is hex of `timestamp || counter || HMAC-SHA256(secret, timestamp || counter)`
/// (truncated to 128 bits): unforgeable without the secret and self-describing, so
/// issuing costs no memory. Nonce counts are remembered only for nonces that have been
/// used, in a table bounded by `max_tracked`: expired entries go first, then the oldest,
/// and an authentic nonce that was dropped from the table is answered `Stale` from then
/// on (it may have been used), so the bound never opens a replay window.
///
/// Call [`check`](Self::check) after [`super::verify`] succeeded, so that requests
/// with a wrong password cannot fill the table. Use a fresh random secret per process
/// start: nonces are accepted only from this instance's counter range, but a restart
/// with the same secret would accept the previous run's nonces once more.
#[derive(Debug, Clone)]
pub struct NonceManager {
    /// HMAC state after the key and the domain label: cloned per nonce, so issuing and
    /// checking cost one HMAC over 16 bytes instead of re-keying each time.
    tagger: HmacSha256,
    lifetime_secs: u64,
    first_counter: u64,
    next_counter: u64,
    /// Authentic nonces below this counter and absent from `seen` were evicted.
    forgotten_below: u64,
    seen: BTreeMap<u64, Seen>,
    max_tracked: usize,
}

impl NonceManager {
    /// A manager whose nonces live `lifetime` (whole seconds, at least one).
    pub fn new(secret: [u8; 32], lifetime: Duration) -> Self {
        Self::with_max_tracked(secret, lifetime, DEFAULT_MAX_TRACKED)
    }

    /// As [`new`](Self::new), remembering nonce counts for at most `max_tracked` nonces.
    pub fn with_max_tracked(secret: [u8; 32], lifetime: Duration, max_tracked: usize) -> Self {
        // The counter starts at a secret-derived point so nonces do not reveal how many
        // were issued; the top bits are cleared so it never wraps.
        let seed = mac(&secret, b"pbx-sip nonce counter seed", &[]);
        let mut start = [0u8; 8];
        start.copy_from_slice(&seed[..8]);
        let first_counter = u64::from_be_bytes(start) >> 2;
        NonceManager {
            tagger: keyed(&secret, b"pbx-sip nonce"),
            lifetime_secs: lifetime.as_secs().max(1),
            first_counter,
            next_counter: first_counter,
            forgotten_below: first_counter,
            seen: BTreeMap::new(),
            max_tracked: max_tracked.max(1),
        }
    }

    /// Issues a fresh nonce stamped `now_unix_secs`.
    pub fn issue(&mut self, now_unix_secs: u64) -> String {
        let counter = self.next_counter;
        self.next_counter += 1;
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&now_unix_secs.to_be_bytes());
        raw[8..16].copy_from_slice(&counter.to_be_bytes());
        let mut m = self.tagger.clone();
        m.update(&raw[..16]);
        let tag: [u8; 32] = m.finalize().into_bytes().into();
        raw[16..].copy_from_slice(&tag[..MAC_LEN]);
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        raw.iter()
            .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
            .map(char::from)
            .collect()
    }

    /// Checks a nonce presented with nonce count `nc` (pass 0 for RFC 2069 credentials,
    /// which makes such a nonce single-use).
    pub fn check(&mut self, nonce: &str, nc: u32, now_unix_secs: u64) -> NonceCheck {
        let Some(raw) = decode_hex(nonce) else {
            return NonceCheck::Invalid;
        };
        let mut verifier = self.tagger.clone();
        verifier.update(&raw[..16]);
        if verifier.verify_truncated_left(&raw[16..]).is_err() {
            return NonceCheck::Invalid;
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&raw[..8]);
        let issued = u64::from_be_bytes(word);
        word.copy_from_slice(&raw[8..16]);
        let counter = u64::from_be_bytes(word);

        if !(self.first_counter..self.next_counter).contains(&counter) {
            // Authentic but not from this instance's range: an earlier run's nonce.
            return NonceCheck::Stale;
        }
        if self.expired(issued, now_unix_secs) {
            self.seen.remove(&counter);
            return NonceCheck::Stale;
        }
        if let Some(seen) = self.seen.get_mut(&counter) {
            if nc > seen.last_nc {
                seen.last_nc = nc;
                return NonceCheck::Valid;
            }
            return NonceCheck::Replay;
        }
        if counter < self.forgotten_below {
            return NonceCheck::Stale;
        }
        self.make_room(now_unix_secs);
        self.seen.insert(
            counter,
            Seen {
                issued,
                last_nc: nc,
            },
        );
        NonceCheck::Valid
    }

    /// How many nonces' counts are currently remembered.
    pub fn tracked(&self) -> usize {
        self.seen.len()
    }

    fn expired(&self, issued: u64, now: u64) -> bool {
        now.saturating_sub(issued) > self.lifetime_secs
    }

    fn make_room(&mut self, now: u64) {
        // Entries are in issue order, so expired ones sit at the front (as long as the
        // caller's clock does not run backwards; if it does, the bound still holds).
        while let Some((_, first)) = self.seen.first_key_value() {
            if !self.expired(first.issued, now) {
                break;
            }
            self.seen.pop_first();
        }
        while self.seen.len() >= self.max_tracked {
            if let Some((counter, _)) = self.seen.pop_first() {
                self.forgotten_below = self.forgotten_below.max(counter + 1);
            }
        }
    }
}

fn keyed(secret: &[u8; 32], domain: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(domain);
    m.update(&[0]);
    m
}

fn mac(secret: &[u8; 32], domain: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = keyed(secret, domain);
    m.update(data);
    m.finalize().into_bytes().into()
}

fn decode_hex(s: &str) -> Option<[u8; RAW_LEN]> {
    let s = s.as_bytes();
    if s.len() != RAW_LEN * 2 {
        return None;
    }
    let mut out = [0u8; RAW_LEN];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        *o = u8::try_from(hi << 4 | lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_750_000_000;
    const LIFE: Duration = Duration::from_secs(300);

    fn mgr() -> NonceManager {
        NonceManager::new([0x42; 32], LIFE)
    }

    #[test]
    fn fresh_nonce_is_valid_until_lifetime() {
        let mut m = mgr();
        let n = m.issue(T0);
        assert_eq!(n.len(), 64);
        assert_eq!(m.check(&n, 1, T0), NonceCheck::Valid);
        assert_eq!(m.check(&n, 2, T0 + 300), NonceCheck::Valid);
        assert_eq!(m.check(&n, 3, T0 + 301), NonceCheck::Stale);
        // Unused nonce expires the same way.
        let n2 = m.issue(T0);
        assert_eq!(m.check(&n2, 1, T0 + 10_000), NonceCheck::Stale);
    }

    #[test]
    fn nonces_are_unique() {
        let mut m = mgr();
        let a = m.issue(T0);
        let b = m.issue(T0);
        assert_ne!(a, b);
    }

    #[test]
    fn forged_and_malformed_nonces_are_invalid() {
        let mut m = mgr();
        let n = m.issue(T0);
        // Push the timestamp forward by one without the secret.
        let mut raw = decode_hex(&n).expect("our own nonce");
        raw[7] ^= 1;
        let forged: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let other = NonceManager::new([0x43; 32], LIFE).issue(T0);
        for bad in [
            forged.as_str(),
            other.as_str(),
            "",
            &n[..62],
            &format!("{n}00"),
            &n.replace(|_: char| true, "z"),
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        ] {
            assert_eq!(m.check(bad, 1, T0), NonceCheck::Invalid, "{bad:?}");
        }
        // Upper-case hex of a real nonce is still ours.
        assert_eq!(m.check(&n.to_ascii_uppercase(), 1, T0), NonceCheck::Valid);
    }

    #[test]
    fn nonce_count_must_increase() {
        let mut m = mgr();
        let n = m.issue(T0);
        assert_eq!(m.check(&n, 1, T0), NonceCheck::Valid);
        assert_eq!(m.check(&n, 1, T0 + 1), NonceCheck::Replay);
        assert_eq!(m.check(&n, 3, T0 + 1), NonceCheck::Valid);
        assert_eq!(m.check(&n, 2, T0 + 1), NonceCheck::Replay);
        assert_eq!(m.check(&n, 4, T0 + 1), NonceCheck::Valid);
        // RFC 2069 credentials (nc 0) use a nonce once.
        let old = m.issue(T0);
        assert_eq!(m.check(&old, 0, T0), NonceCheck::Valid);
        assert_eq!(m.check(&old, 0, T0), NonceCheck::Replay);
    }

    #[test]
    fn previous_run_nonce_is_stale() {
        let mut before = mgr();
        let n = before.issue(T0);
        let mut after = mgr(); // same secret, nothing issued yet
        assert_eq!(after.check(&n, 1, T0), NonceCheck::Stale);
    }

    #[test]
    fn table_is_bounded_and_eviction_never_allows_replay() {
        let mut m = NonceManager::with_max_tracked([1; 32], LIFE, 8);
        let nonces: Vec<String> = (0..100).map(|_| m.issue(T0)).collect();
        for n in &nonces {
            assert_eq!(m.check(n, 1, T0), NonceCheck::Valid);
            assert!(m.tracked() <= 8);
        }
        // The first nonces were evicted: replaying them is refused as stale.
        assert_eq!(m.check(&nonces[0], 1, T0), NonceCheck::Stale);
        assert_eq!(m.check(&nonces[0], 2, T0), NonceCheck::Stale);
        // The newest are still tracked with their counts.
        assert_eq!(m.check(&nonces[99], 1, T0), NonceCheck::Replay);
        assert_eq!(m.check(&nonces[99], 2, T0), NonceCheck::Valid);
    }

    #[test]
    fn expired_entries_are_evicted_first() {
        let mut m = NonceManager::with_max_tracked([1; 32], LIFE, 4);
        for i in 0..4 {
            let n = m.issue(T0 + i);
            assert_eq!(m.check(&n, 1, T0 + i), NonceCheck::Valid);
        }
        assert_eq!(m.tracked(), 4);
        let late = T0 + 1000;
        let keep = m.issue(late);
        assert_eq!(m.check(&keep, 1, late), NonceCheck::Valid);
        assert_eq!(m.tracked(), 1);
        // Nothing in date was pushed out, so an unused in-date nonce is still fine.
        let unused = m.issue(late);
        let n = m.issue(late);
        assert_eq!(m.check(&n, 1, late), NonceCheck::Valid);
        assert_eq!(m.check(&unused, 1, late + 1), NonceCheck::Valid);
    }
}
