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
    /// Removed trunks' clients still un-REGISTERing; dropped once finished.
    leaving: Vec<Registration>,
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
        // A pending un-REGISTER of the same trunk would remove the new binding.
        self.leaving.retain(|c| c.config().name != name);
        self.clients.push(reg);
        self.collect();
    }

    /// Removes the client of trunk `name` (the trunk was removed or disabled): a
    /// registered client keeps running until its un-REGISTER is answered or its tries
    /// are used up (`Registration::unregister`); its outputs still come from
    /// [`Self::poll_output`]. Returns whether there was one.
    pub fn remove(&mut self, now: Instant, name: &str) -> bool {
        let Some(i) = self.clients.iter().position(|c| c.config().name == name) else {
            return false;
        };
        let mut reg = self.clients.remove(i);
        self.out.retain(|(n, _)| n != name);
        if reg.unregister(now) {
            self.leaving.push(reg);
        }
        self.collect();
        true
    }

    /// Removed trunks whose un-REGISTER is still in progress.
    pub fn leaving(&self) -> impl Iterator<Item = &Registration> {
        self.leaving.iter()
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
            .chain(self.leaving.iter_mut())
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
        for c in self.clients.iter_mut().chain(self.leaving.iter_mut()) {
            let stream = c.config().transport != crate::registrar::Transport::Udp;
            if stream && c.target_remote() == Some(remote) {
                c.handle_transport_error(now, why);
            }
        }
        self.collect();
    }

    /// A CRLF pong arrived from `remote`: the stream clients using it hear of it.
    pub fn handle_pong(&mut self, remote: std::net::SocketAddr) -> bool {
        let mut ours = false;
        for c in self.clients.iter_mut() {
            ours |= c.handle_pong(remote);
        }
        ours
    }

    /// Fires due timers of every client.
    pub fn handle_timeout(&mut self, now: Instant) {
        for c in self.clients.iter_mut().chain(self.leaving.iter_mut()) {
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
            .chain(self.leaving.iter())
            .filter_map(Registration::poll_timeout)
            .min()
    }

    /// The next output, with its trunk's name.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<(String, RegisterOutput)> {
        self.out.pop_front()
    }

    fn collect(&mut self) {
        for c in self.clients.iter_mut().chain(self.leaving.iter_mut()) {
            while let Some(o) = c.poll_output() {
                self.out.push_back((c.config().name.clone(), o));
            }
        }
        self.leaving.retain(|c| !c.finished());
    }
}
