//! All trunks' registration clients, as the SIP endpoint holds them: routes responses
//! by Call-ID, merges the timers, and tags each output with its trunk's name.

use std::collections::VecDeque;
use std::time::Instant;

use pbx_sip::message::Message;

use super::register::{RegisterOutput, Registration, Resolved};

/// What the endpoint tells its shell about trunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrunkEvent {
    /// Resolve this trunk's registrar and proxy, then call `TrunkClients::handle_targets`.
    Resolve(String),
    /// This trunk's link changed (state, flow, public address): write its status.
    Changed(String),
}

/// The registration clients, one per enabled trunk.
#[derive(Debug, Default)]
pub struct TrunkClients {
    clients: Vec<Registration>,
    /// Outputs not yet taken, with the trunk's name.
    out: VecDeque<(String, RegisterOutput)>,
}

impl TrunkClients {
    /// Adds a client, replacing (and forgetting) one of the same trunk. No un-REGISTER:
    /// the new client registers the same Contact again (an un-REGISTER racing it on UDP
    /// could remove the fresh binding).
    pub fn insert(&mut self, reg: Registration) {
        let name = reg.config().name.clone();
        self.forget(&name);
        self.clients.push(reg);
        self.collect();
    }

    /// Removes the client of trunk `name` (the trunk was removed or disabled): a
    /// registered client sends its un-REGISTER first (in [`Self::poll_output`]). Returns
    /// whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let bye = self
            .clients
            .iter_mut()
            .find(|c| c.config().name == name)
            .and_then(Registration::unregister);
        let found = self.forget(name);
        if let Some(o) = bye {
            self.out.push_back((name.to_owned(), o));
        }
        found
    }

    fn forget(&mut self, name: &str) -> bool {
        let before = self.clients.len();
        self.clients.retain(|c| c.config().name != name);
        self.out.retain(|(n, _)| n != name);
        before != self.clients.len()
    }

    /// The client of trunk `name`.
    pub fn get(&self, name: &str) -> Option<&Registration> {
        self.clients.iter().find(|c| c.config().name == name)
    }

    /// All clients.
    pub fn iter(&self) -> impl Iterator<Item = &Registration> {
        self.clients.iter()
    }

    /// A response: true when it belonged to one of the clients (then nobody else
    /// should see it).
    pub fn handle_response(&mut self, now: Instant, msg: &Message) -> bool {
        let Ok(call_id) = msg.call_id() else {
            return false;
        };
        let claimed = self
            .clients
            .iter_mut()
            .find(|c| c.call_id() == call_id)
            .is_some_and(|c| c.handle_response(now, msg));
        self.collect();
        claimed
    }

    /// The shell's resolution for trunk `name`.
    pub fn handle_targets(&mut self, now: Instant, name: &str, r: Result<Resolved, String>) {
        if let Some(c) = self.clients.iter_mut().find(|c| c.config().name == name) {
            c.handle_targets(now, r);
        }
        self.collect();
    }

    /// The stream toward a trunk's registrar failed.
    pub fn handle_transport_error(&mut self, now: Instant, name: &str, why: &str) {
        if let Some(c) = self.clients.iter_mut().find(|c| c.config().name == name) {
            c.handle_transport_error(now, why);
        }
        self.collect();
    }

    /// The stream to `remote` failed or closed: every stream client using it hears of it.
    pub fn handle_transport_error_at(
        &mut self,
        now: Instant,
        remote: std::net::SocketAddr,
        why: &str,
    ) {
        for c in &mut self.clients {
            let stream = c.config().transport != crate::registrar::Transport::Udp;
            if stream && c.target_remote() == Some(remote) {
                c.handle_transport_error(now, why);
            }
        }
        self.collect();
    }

    /// Fires due timers of every client.
    pub fn handle_timeout(&mut self, now: Instant) {
        for c in &mut self.clients {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
        }
        self.collect();
    }

    /// The earliest timer of any client.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.clients
            .iter()
            .filter_map(Registration::poll_timeout)
            .min()
    }

    /// The next output, with its trunk's name.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<(String, RegisterOutput)> {
        self.out.pop_front()
    }

    fn collect(&mut self) {
        for c in &mut self.clients {
            while let Some(o) = c.poll_output() {
                self.out.push_back((c.config().name.clone(), o));
            }
        }
    }
}
