//! A trunk link given on the command line (`--static-trunk`, hidden): the provider taken
//! as registered over UDP without REGISTER. For end-to-end tests of calls over the trunk
//! until the registration client keeps the links; not for production.

use std::net::SocketAddr;

use super::{TrunkLink, TrunkState};
use crate::registrar::{Flow, Transport};

/// `name=NAME,peer=IP:PORT,domain=DOMAIN,user=SIP-ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticTrunk {
    /// The trunk's name (numbers refer to it).
    pub name: String,
    /// The provider's address.
    pub peer: SocketAddr,
    /// The provider's domain.
    pub domain: String,
    /// The account's SIP-ID.
    pub user: String,
}

impl StaticTrunk {
    /// Parses the flag's value.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (mut name, mut peer, mut domain, mut user) = (None, None, None, None);
        for part in s.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {part:?}"))?;
            match k.trim() {
                "name" => name = Some(v.trim().to_owned()),
                "peer" => peer = Some(v.trim().parse().map_err(|e| format!("peer {v:?}: {e}"))?),
                "domain" => domain = Some(v.trim().to_owned()),
                "user" => user = Some(v.trim().to_owned()),
                other => return Err(format!("unknown key {other:?}")),
            }
        }
        let need = |v: Option<String>, k: &str| v.ok_or_else(|| format!("{k}= missing"));
        Ok(Self {
            name: need(name, "name")?,
            peer: peer.ok_or("peer= missing")?,
            domain: need(domain, "domain")?,
            user: need(user, "user")?,
        })
    }

    /// The link, as registered on UDP from `local`.
    pub fn link(&self, local: SocketAddr) -> TrunkLink {
        TrunkLink {
            name: self.name.clone(),
            domain: self.domain.clone(),
            user: self.user.clone(),
            auth: None,
            flow: Some(Flow {
                transport: Transport::Udp,
                remote: self.peer,
                local,
            }),
            // Only the exact address: on loopback every local peer shares the IP.
            peers: Vec::new(),
            public: None,
            state: TrunkState::Registered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_clearly() {
        let t = StaticTrunk::parse("name=cloud,peer=127.0.0.1:5070,domain=sip.example,user=4930")
            .expect("parses");
        assert_eq!(t.peer, "127.0.0.1:5070".parse().expect("addr"));
        assert!(t.link("127.0.0.1:5060".parse().expect("addr")).is_up());
        assert_eq!(
            StaticTrunk::parse("name=cloud,peer=x").map_err(|e| e.contains("peer")),
            Err(true)
        );
    }
}
