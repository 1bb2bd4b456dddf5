//! Call control's view of a trunk: where calls to numbers outside the office go. The cloud
//! trunk (issue 5) and the GSM gateway (issue 7) provide targets; when none can take a
//! call, external and emergency calls fail with 503 and a reason, and are recorded.
//!
//! Emergency calls try [`EmergencyRoute`]s in order until one connects: every cloud trunk
//! that is registered, then what the directory adds ([`super::CallDirectory::emergency_fallbacks`],
//! where the GSM gateway registers itself as [`EmergencyRoute::Gsm`]).

use std::net::SocketAddr;

use crate::registrar::Flow;
use crate::trunk::{TrunkAuth, TrunkLink};

/// A trunk able to take a call now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkTarget {
    /// Its name, for the call record's route.
    pub name: String,
    /// The host part of Request-URIs towards it (the provider's domain).
    pub host: String,
    /// The flow it is reached on (its registration's connection or NAT binding).
    pub flow: Flow,
    /// The account's SIP-ID (From when no number of the account applies).
    pub user: String,
    /// Credentials for the provider's 401/407 on our INVITEs.
    pub auth: Option<TrunkAuth>,
    /// Our public address as the provider sees it (Contact and SDP), if learnt.
    pub public: Option<SocketAddr>,
    /// The account's SRTP mode for this leg (`None`: the global `--srtp`).
    pub srtp: Option<crate::media::SrtpMode>,
}

impl TrunkTarget {
    /// A target plainly on `flow` (no credentials, no public address).
    pub fn new(name: &str, host: &str, flow: Flow) -> Self {
        Self {
            name: name.to_owned(),
            host: host.to_owned(),
            flow,
            user: name.to_owned(),
            auth: None,
            public: None,
            srtp: None,
        }
    }

    /// The target for `link`, if calls can go out through it now.
    pub fn of_link(link: &TrunkLink) -> Option<Self> {
        let flow = link.flow.filter(|_| link.is_up())?;
        Some(Self {
            name: link.name.clone(),
            host: link.domain.clone(),
            flow,
            user: link.user.clone(),
            auth: link.auth.clone(),
            public: link.public,
            srtp: link.srtp,
        })
    }
}

/// One way out for an emergency call, tried in order until one connects.
// A handful per emergency call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmergencyRoute {
    /// A registered cloud trunk.
    Trunk(TrunkTarget),
    /// The GSM gateway (issue 7): rung as [`super::RingTarget::Gsm`].
    Gsm,
}

impl EmergencyRoute {
    /// The route's name for records and alerts.
    pub fn name(&self) -> &str {
        match self {
            EmergencyRoute::Trunk(t) => &t.name,
            EmergencyRoute::Gsm => "gsm",
        }
    }
}

/// Limits on external calls for one extension through one trunk (`None`: no limit).
/// Emergency calls are never counted against them nor refused by them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExternalLimits {
    /// Concurrent external calls of the extension.
    pub per_user: Option<u32>,
    /// Concurrent calls (both directions) on the trunk.
    pub per_trunk: Option<u32>,
    /// Outbound external calls the extension may start per minute before it is locked
    /// for external calls (toll-fraud protection).
    pub per_minute: Option<u32>,
}
