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

/// SRV targets in the order to try: by priority, then by weight, heaviest first. RFC 2782
/// draws by weight at random; a registration client tries all of them in turn anyway, so
/// a fixed order that prefers the heavy ones keeps failover testable.
pub fn order_srv(mut records: Vec<Srv>) -> Vec<Srv> {
    // "." means the service is not offered at this name.
    records.retain(|r| !r.target.is_empty() && r.target != ".");
    records.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.weight.cmp(&a.weight))
            .then(a.target.cmp(&b.target))
    });
    records
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

    #[test]
    fn srv_targets_are_tried_by_priority_then_weight() {
        let srv = |priority, weight, target: &str| Srv {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        };
        let ordered = order_srv(vec![
            srv(20, 0, "backup"),
            srv(10, 10, "light"),
            srv(10, 90, "heavy"),
            srv(5, 0, "."),
        ]);
        let names: Vec<&str> = ordered.iter().map(|s| s.target.as_str()).collect();
        assert_eq!(names, vec!["heavy", "light", "backup"]);
    }
}
