//! The SIP side of the daemon: the sans-IO endpoint core (`endpoint.rs`), the user agent
//! that turns call legs into SIP dialogs ([`ua`]), and the tokio shell (UDP and TCP
//! sockets, timers, persistence of registrar events).

mod dial;
mod endpoint;
mod guard;
mod load;
mod records;
mod services;
mod task;
mod tcp;
#[cfg(test)]
mod tests;
mod trunks;
pub mod ua;

pub use dial::{DialError, Dialer};
pub use endpoint::{Endpoint, EndpointEvent, EndpointOutput, EndpointStats, ALLOW};
pub use guard::{AuthGuard, GuardConfig, NewBlock, Verdict};
pub(crate) use services::StoreServices;
pub use task::{SipShell, SipSockets};
