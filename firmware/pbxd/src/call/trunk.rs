//! Call control's view of a trunk: where calls to numbers outside the office go. The cloud
//! trunk (issue 5) and the GSM gateway (issue 7) provide targets; until one exists,
//! external and emergency calls fail with 503 and a reason, and are recorded.

use crate::registrar::Flow;

/// A trunk able to take a call now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkTarget {
    /// Its name, for the call record's route.
    pub name: String,
    /// The host part of Request-URIs towards it (the provider's domain).
    pub host: String,
    /// The flow it is reached on (its registration's connection or NAT binding).
    pub flow: Flow,
}
