//! RFC 3263 target selection from DNS records, without I/O: which SRV names the NAPTR
//! records point to for our transport, and the order to try SRV targets in. The SIP
//! task's shell does the lookups (`crate::sip` trunks shell) and feeds the records here.

use crate::store::TrunkTransport;

/// A NAPTR record, as far as SIP uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Processing order (lowest first).
    pub order: u16,
    /// Preference within an order (lowest first).
    pub preference: u16,
    /// Flags; SIP uses "s" (the replacement is an SRV name).
    pub flags: String,
    /// Service, e.g. "SIP+D2U", "SIP+D2T", "SIPS+D2T".
    pub services: String,
    /// The SRV name to look up.
    pub replacement: String,
}

/// An SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Priority (lowest first).
    pub priority: u16,
    /// Weight within a priority (higher first here).
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host.
    pub target: String,
}

/// The NAPTR service for a transport (RFC 3263 sec. 4.1).
pub fn naptr_service(t: TrunkTransport) -> &'static str {
    match t {
        TrunkTransport::Udp => "SIP+D2U",
        TrunkTransport::Tcp => "SIP+D2T",
        TrunkTransport::Tls => "SIPS+D2T",
    }
}

/// The SRV name to try without NAPTR (RFC 3263 sec. 4.1, last paragraphs).
pub fn srv_name(host: &str, t: TrunkTransport) -> String {
    match t {
        TrunkTransport::Udp => format!("_sip._udp.{host}"),
        TrunkTransport::Tcp => format!("_sip._tcp.{host}"),
        TrunkTransport::Tls => format!("_sips._tcp.{host}"),
    }
}

/// SRV names from NAPTR records offering our transport with the "s" flag, by order and
/// preference. The transport is configured, so other services are ignored.
pub fn naptr_srv_names(mut records: Vec<Naptr>, t: TrunkTransport) -> Vec<String> {
    records.sort_by_key(|r| (r.order, r.preference));
    records
        .into_iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter(|r| r.services.eq_ignore_ascii_case(naptr_service(t)))
        .map(|r| r.replacement)
        .filter(|r| !r.is_empty())
        .collect()
}

/// SRV targets in the order to try (RFC 2782, "Usage rules"): by priority, lowest first;
/// within one priority a weighted random draw, repeated over the remaining records, so a
/// record of weight w comes first with probability w / sum. Zero-weight records go first
/// in the list before each draw, so they are picked only when the draw is 0 (rarely, while
/// heavier ones exist). The randomness is injected so tests can fix the seed.
pub fn order_srv(mut records: Vec<Srv>, rng: &mut impl rand::Rng) -> Vec<Srv> {
    // "." means the service is not offered at this name.
    records.retain(|r| !r.target.is_empty() && r.target != ".");
    // RFC 2782 leaves the order before the draw open ("any order") apart from zero
    // weights first; a shuffle makes the choice among zero weights fair too.
    rand::seq::SliceRandom::shuffle(records.as_mut_slice(), rng);
    records.sort_by_key(|r| (r.priority, r.weight != 0));
    let mut out = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].priority;
        let end = records
            .iter()
            .take_while(|r| r.priority == priority)
            .count();
        let mut group: Vec<Srv> = records.drain(..end).collect();
        while !group.is_empty() {
            let sum: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let draw = rng.random_range(0..=sum);
            let mut running = 0u32;
            let pick = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= draw
                })
                // The running sum reaches `sum` at the last record, and draw <= sum.
                .unwrap_or(group.len() - 1);
            out.push(group.remove(pick));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naptr(order: u16, pref: u16, service: &str, repl: &str) -> Naptr {
        Naptr {
            order,
            preference: pref,
            flags: "s".into(),
            services: service.into(),
            replacement: repl.into(),
        }
    }

    #[test]
    fn naptr_records_select_the_srv_name_for_the_configured_transport() {
        let records = vec![
            naptr(20, 10, "SIP+D2U", "_sip._udp.example.net"),
            naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.net"),
            naptr(10, 20, "SIP+D2T", "_sip._tcp.example.net"),
            naptr(5, 10, "SIP+D2U", "_sip._udp.first.example.net"),
            Naptr {
                flags: "a".into(),
                ..naptr(1, 1, "SIP+D2U", "ignored.example.net")
            },
        ];
        assert_eq!(
            naptr_srv_names(records.clone(), TrunkTransport::Udp),
            vec!["_sip._udp.first.example.net", "_sip._udp.example.net"]
        );
        assert_eq!(
            naptr_srv_names(records.clone(), TrunkTransport::Tls),
            vec!["_sips._tcp.example.net"]
        );
        assert_eq!(
            naptr_srv_names(records, TrunkTransport::Tcp),
            vec!["_sip._tcp.example.net"]
        );
        assert_eq!(
            srv_name("example.net", TrunkTransport::Tls),
            "_sips._tcp.example.net"
        );
    }

    fn srv(priority: u16, weight: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        }
    }

    fn names(ordered: &[Srv]) -> Vec<&str> {
        ordered.iter().map(|s| s.target.as_str()).collect()
    }

    fn seeded(seed: u64) -> rand::rngs::StdRng {
        rand::SeedableRng::seed_from_u64(seed)
    }

    #[test]
    fn srv_targets_are_tried_by_priority_and_unoffered_services_are_dropped() {
        let ordered = order_srv(
            vec![
                srv(20, 0, "backup"),
                srv(10, 10, "light"),
                srv(10, 90, "heavy"),
                srv(5, 0, "."),
            ],
            &mut seeded(1),
        );
        let got = names(&ordered);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], "backup", "{got:?}");
        let mut first_two = got[..2].to_vec();
        first_two.sort();
        assert_eq!(first_two, vec!["heavy", "light"]);
    }

    /// RFC 2782: within a priority, a record comes first in proportion to its weight. 10,000
    /// draws with a fixed seed; the bounds are about 5 standard deviations wide.
    #[test]
    fn within_a_priority_targets_come_first_in_proportion_to_their_weight() {
        let records = vec![
            srv(10, 60, "a"),
            srv(10, 30, "b"),
            srv(10, 10, "c"),
            srv(20, 50, "later"),
        ];
        let mut rng = seeded(0x2782);
        let mut first = std::collections::HashMap::new();
        for _ in 0..10_000 {
            let ordered = order_srv(records.clone(), &mut rng);
            assert_eq!(ordered.len(), 4);
            assert_eq!(ordered[3].target, "later", "priority 20 is always last");
            *first.entry(ordered[0].target.clone()).or_insert(0u32) += 1;
        }
        let count = |n: &str| first.get(n).copied().unwrap_or(0);
        println!(
            "first picks of 10000: a={} b={} c={}",
            count("a"),
            count("b"),
            count("c")
        );
        assert!((5750..=6250).contains(&count("a")), "{first:?}");
        assert!((2770..=3230).contains(&count("b")), "{first:?}");
        assert!((850..=1150).contains(&count("c")), "{first:?}");
    }

    /// The second place is drawn again among the rest: with "a" (60) taken, "b" (30) is
    /// second three times as often as "c" (10).
    #[test]
    fn later_places_are_drawn_again_among_the_remaining_weights() {
        let records = vec![srv(10, 60, "a"), srv(10, 30, "b"), srv(10, 10, "c")];
        let mut rng = seeded(7);
        let (mut b_second, mut c_second) = (0u32, 0u32);
        for _ in 0..10_000 {
            let ordered = order_srv(records.clone(), &mut rng);
            if ordered[0].target == "a" {
                match ordered[1].target.as_str() {
                    "b" => b_second += 1,
                    _ => c_second += 1,
                }
            }
        }
        let share = f64::from(b_second) / f64::from(b_second + c_second);
        println!("after a: b second {b_second}, c second {c_second}");
        assert!((0.71..=0.79).contains(&share), "b share {share}");
    }

    /// Zero-weight rule: a weight-0 record is picked first only when the draw is 0 (1 in
    /// sum+1); among only zero weights each is equally likely; none is ever lost.
    #[test]
    fn zero_weight_targets_are_rarely_first_but_always_tried() {
        let mut rng = seeded(42);
        let mut zero_first = 0u32;
        for _ in 0..10_000 {
            let ordered = order_srv(vec![srv(10, 0, "zero"), srv(10, 99, "heavy")], &mut rng);
            assert_eq!(ordered.len(), 2);
            if ordered[0].target == "zero" {
                zero_first += 1;
            }
        }
        // Expected 1 in 100 draws: 100 of 10,000.
        println!("zero-weight first: {zero_first} of 10000");
        assert!((50..=150).contains(&zero_first), "{zero_first}");

        let mut zero_a_first = 0u32;
        for _ in 0..10_000 {
            let ordered = order_srv(vec![srv(10, 0, "za"), srv(10, 0, "zb")], &mut rng);
            assert_eq!(ordered.len(), 2);
            if ordered[0].target == "za" {
                zero_a_first += 1;
            }
        }
        println!("only zero weights: za first {zero_a_first} of 10000");
        assert!((4750..=5250).contains(&zero_a_first), "{zero_a_first}");
    }
}
