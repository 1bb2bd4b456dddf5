//! The cloud trunk (issue 5): the provider accounts the box reaches the world through.
//!
//! This file is the contract between the registration client (which keeps each trunk's
//! [`TrunkLink`] current) and the SIP user agent and call control (which read it to accept
//! calls from the provider, send calls to it and answer its challenges). The registration
//! client and the numbers/policy layer live in submodules of their own.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::registrar::Flow;

pub mod cli;
pub mod clients;
pub mod dns;
pub mod down_alert;
pub mod register;

/// Credentials for the provider's digest challenges (REGISTER and INVITE).
#[derive(Clone, PartialEq, Eq)]
pub struct TrunkAuth {
    /// Authentication user (often the SIP-ID).
    pub user: String,
    /// Password in clear, in memory only (stored encrypted at rest).
    pub password: String,
}

impl fmt::Debug for TrunkAuth {
    // Secrets never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrunkAuth")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why a trunk is or is not usable, in words an installer understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrunkState {
    /// Configured off.
    Disabled,
    /// First REGISTER under way.
    Registering,
    /// Registered; calls may go out.
    Registered,
    /// The provider refused the credentials (401/407 after an answer).
    AuthFailed,
    /// The provider answered 403: no fast retries.
    Forbidden,
    /// No answer, or the name does not resolve, or the connection fails.
    Unreachable(String),
    /// Another final failure, with its status line.
    Failed(String),
}

/// What the SIP side knows about one trunk at this moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkLink {
    /// The trunk's name (the call record's route).
    pub name: String,
    /// The provider's domain: host part of Request-URIs, From and To.
    pub domain: String,
    /// The account's SIP-ID (user part of From when no DID is sent).
    pub user: String,
    /// Credentials for challenges.
    pub auth: Option<TrunkAuth>,
    /// The flow the last successful REGISTER went over (`None` while not registered).
    pub flow: Option<Flow>,
    /// Resolved addresses of the registrar and outbound proxy: INVITEs from these (or from
    /// `flow`'s remote) are the provider's; everything else from outside is refused.
    pub peers: Vec<IpAddr>,
    /// Our public address as the provider saw it (`received`/`rport`), for Contact and SDP.
    pub public: Option<SocketAddr>,
    /// Current state.
    pub state: TrunkState,
    /// The account's SRTP mode for calls over this trunk (`None`: the global `--srtp`).
    pub srtp: Option<crate::media::SrtpMode>,
}

impl TrunkLink {
    /// Whether a request from `remote` comes from this trunk.
    pub fn is_peer(&self, remote: SocketAddr) -> bool {
        self.flow.is_some_and(|f| f.remote == remote) || self.peers.contains(&remote.ip())
    }

    /// Whether calls can go out through this trunk now.
    pub fn is_up(&self) -> bool {
        self.state == TrunkState::Registered && self.flow.is_some()
    }
}

/// All trunks' links, kept in the SIP task.
#[derive(Debug, Clone, Default)]
pub struct TrunkLinks {
    links: Vec<TrunkLink>,
}

impl TrunkLinks {
    /// The trunk a request from `remote` belongs to, if any.
    pub fn by_source(&self, remote: SocketAddr) -> Option<&TrunkLink> {
        self.links.iter().find(|l| l.is_peer(remote))
    }

    /// The trunk called `name`.
    pub fn get(&self, name: &str) -> Option<&TrunkLink> {
        self.links.iter().find(|l| l.name == name)
    }

    /// Adds a trunk or replaces the one with the same name.
    pub fn upsert(&mut self, link: TrunkLink) {
        match self.links.iter_mut().find(|l| l.name == link.name) {
            Some(l) => *l = link,
            None => self.links.push(link),
        }
    }

    /// Removes the trunk called `name`.
    pub fn remove(&mut self, name: &str) {
        self.links.retain(|l| l.name != name);
    }

    /// All trunks, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &TrunkLink> {
        self.links.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::Transport;

    fn link(name: &str, peer: &str, remote: Option<&str>) -> TrunkLink {
        TrunkLink {
            name: name.into(),
            domain: "sipconnect.example".into(),
            user: "4930123".into(),
            auth: Some(TrunkAuth {
                user: "4930123".into(),
                password: "very-secret".into(),
            }),
            flow: remote.map(|r| Flow {
                transport: Transport::Udp,
                remote: r.parse().expect("test address"),
                local: "10.0.0.2:5060".parse().expect("test address"),
            }),
            peers: vec![peer.parse().expect("test address")],
            public: None,
            state: TrunkState::Registered,
            srtp: None,
        }
    }

    #[test]
    fn requests_are_matched_to_their_trunk_by_flow_or_resolved_address() {
        let mut links = TrunkLinks::default();
        links.upsert(link("a", "192.0.2.10", Some("198.51.100.7:5060")));
        links.upsert(link("b", "192.0.2.20", None));
        let from = |s: &str| {
            links
                .by_source(s.parse().expect("test address"))
                .map(|l| l.name.clone())
        };
        assert_eq!(from("198.51.100.7:5060").as_deref(), Some("a"));
        assert_eq!(from("192.0.2.20:5080").as_deref(), Some("b"));
        assert_eq!(from("203.0.113.9:5060"), None);
        assert!(links.get("a").is_some_and(TrunkLink::is_up));
        assert!(!links.get("b").is_some_and(TrunkLink::is_up));
        links.remove("a");
        assert!(links.get("a").is_none());
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let l = link("a", "192.0.2.10", None);
        assert!(!format!("{l:?}").contains("very-secret"));
    }
}
