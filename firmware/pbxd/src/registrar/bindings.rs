//! The location service: current contacts of each address of record, in memory, with
//! expiry on a clock passed in. The registrar writes every change through to the store.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

/// Transport a binding's flow uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS.
    Tls,
}

impl Transport {
    /// The token used in Via headers and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// Parses the token written by [`Transport::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "UDP" => Some(Transport::Udp),
            "TCP" => Some(Transport::Tcp),
            "TLS" => Some(Transport::Tls),
            _ => None,
        }
    }
}

/// The network path a request arrived on; requests to the binding go back along it
/// (RFC 5626's flow idea, which NATed phones need).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Transport of the path.
    pub transport: Transport,
    /// The peer's address as seen by us (after NAT).
    pub remote: SocketAddr,
    /// Our socket's address.
    pub local: SocketAddr,
}

/// One contact registered for an address of record.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The Contact URI as the phone sent it (forwarded as received).
    pub contact: String,
    /// Comparison key of the contact URI (RFC 3261 sec. 19.1.4 equivalence).
    pub key: String,
    /// When the binding lapses.
    pub expires_at: Instant,
    /// Call-ID of the REGISTER that created or last refreshed it.
    pub call_id: String,
    /// CSeq of that REGISTER.
    pub cseq: u32,
    /// The `q` preference, as sent.
    pub q: Option<String>,
    /// The path the REGISTER came from.
    pub flow: Flow,
    /// User-Agent of the phone, for diagnostics.
    pub user_agent: Option<String>,
}

/// All bindings, per address of record ("1001@pbx.local").
#[derive(Debug, Default)]
pub struct Bindings {
    by_aor: HashMap<String, Vec<Binding>>,
    /// Expiry queue with lazy deletion: an entry is stale when its binding has been
    /// refreshed or removed since it was pushed.
    queue: BinaryHeap<Reverse<(Instant, String, String)>>,
    count: usize,
}

impl Bindings {
    /// An empty location service.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of bindings held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no binding is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bindings of `aor` still valid at `now`.
    pub fn get(&self, aor: &str, now: Instant) -> impl Iterator<Item = &Binding> {
        self.by_aor
            .get(aor)
            .into_iter()
            .flatten()
            .filter(move |b| b.expires_at > now)
    }

    /// The binding of `aor` whose contact has comparison key `key`.
    pub fn find(&self, aor: &str, key: &str) -> Option<&Binding> {
        self.by_aor.get(aor)?.iter().find(|b| b.key == key)
    }

    /// Inserts or replaces the binding with the same key.
    pub fn upsert(&mut self, aor: &str, binding: Binding) {
        self.queue.push(Reverse((
            binding.expires_at,
            aor.to_owned(),
            binding.key.clone(),
        )));
        let list = self.by_aor.entry(aor.to_owned()).or_default();
        match list.iter_mut().find(|b| b.key == binding.key) {
            Some(existing) => *existing = binding,
            None => {
                list.push(binding);
                self.count += 1;
            }
        }
        self.compact_queue();
    }

    /// Removes one binding; returns it if it existed.
    pub fn remove(&mut self, aor: &str, key: &str) -> Option<Binding> {
        let list = self.by_aor.get_mut(aor)?;
        let pos = list.iter().position(|b| b.key == key)?;
        let removed = list.swap_remove(pos);
        if list.is_empty() {
            self.by_aor.remove(aor);
        }
        self.count -= 1;
        Some(removed)
    }

    /// Removes every binding of `aor`; returns them.
    pub fn remove_all(&mut self, aor: &str) -> Vec<Binding> {
        let removed = self.by_aor.remove(aor).unwrap_or_default();
        self.count -= removed.len();
        removed
    }

    /// The earliest instant at which a binding lapses.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Removes and returns the bindings lapsed at `now`, with their AOR.
    pub fn expire(&mut self, now: Instant) -> Vec<(String, Binding)> {
        let mut gone = Vec::new();
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, aor, key))) = self.queue.pop() else {
                break;
            };
            let current = self.find(&aor, &key).map(|b| b.expires_at);
            if current == Some(at) {
                if let Some(b) = self.remove(&aor, &key) {
                    gone.push((aor, b));
                }
            }
        }
        gone
    }

    /// Every binding with its AOR (for persistence and listings).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Binding)> {
        self.by_aor
            .iter()
            .flat_map(|(aor, list)| list.iter().map(move |b| (aor.as_str(), b)))
    }

    /// Rebuilds the queue when stale entries dominate (frequent refreshes leave them).
    fn compact_queue(&mut self) {
        if self.queue.len() > 64 && self.queue.len() > 4 * self.count {
            self.queue = self
                .by_aor
                .iter()
                .flat_map(|(aor, list)| {
                    list.iter()
                        .map(move |b| Reverse((b.expires_at, aor.clone(), b.key.clone())))
                })
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
    fn start() -> Instant {
        Instant::now()
    }

    fn binding(key: &str, expires_at: Instant) -> Binding {
        let addr: SocketAddr = "192.0.2.1:5060".parse().expect("test address");
        Binding {
            contact: format!("<sip:{key}>"),
            key: key.to_owned(),
            expires_at,
            call_id: "c1".into(),
            cseq: 1,
            q: None,
            flow: Flow {
                transport: Transport::Udp,
                remote: addr,
                local: addr,
            },
            user_agent: None,
        }
    }

    #[test]
    fn bindings_expire_on_the_simulated_clock_and_refresh_extends_them() {
        let t0 = start();
        let mut b = Bindings::new();
        b.upsert("1001@pbx", binding("a", t0 + Duration::from_secs(60)));
        b.upsert("1001@pbx", binding("b", t0 + Duration::from_secs(120)));
        assert_eq!(b.len(), 2);
        assert_eq!(b.next_expiry(), Some(t0 + Duration::from_secs(60)));
        // refresh "a" before it lapses
        b.upsert("1001@pbx", binding("a", t0 + Duration::from_secs(180)));
        assert_eq!(b.len(), 2);
        assert!(b.expire(t0 + Duration::from_secs(60)).is_empty());
        let gone = b.expire(t0 + Duration::from_secs(120));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].1.key, "b");
        assert_eq!(b.get("1001@pbx", t0 + Duration::from_secs(121)).count(), 1);
        let gone = b.expire(t0 + Duration::from_secs(180));
        assert_eq!(gone.len(), 1);
        assert!(b.is_empty());
        assert_eq!(b.next_expiry(), None);
    }

    #[test]
    fn stale_queue_entries_are_compacted() {
        let t0 = start();
        let mut b = Bindings::new();
        for i in 0..1000u64 {
            b.upsert("1001@pbx", binding("a", t0 + Duration::from_secs(60 + i)));
        }
        assert_eq!(b.len(), 1);
        assert!(b.queue.len() <= 65);
    }
}
