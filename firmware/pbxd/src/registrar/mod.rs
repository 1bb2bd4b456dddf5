//! The local SIP registrar (RFC 3261 sec. 10) for the office's phones: digest
//! authentication, bindings with expiry, and the flows they came from.

mod bindings;
mod core;
#[cfg(test)]
mod tests;

pub use self::bindings::{Binding, Bindings, Flow, Transport};
pub use self::core::{
    contact_key, Directory, ExtensionSecrets, Registrar, RegistrarConfig, RegistrarEvent,
    RemovalReason,
};
