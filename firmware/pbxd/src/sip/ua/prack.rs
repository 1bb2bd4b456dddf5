//! Reliable provisional responses (RFC 3262) towards a caller that offers or requires
//! `100rel`: our 180/183 carry `Require: 100rel` and an `RSeq`, are retransmitted until
//! the caller's PRACK, and one is outstanding at a time. The callee side never needs
//! it: we do not offer 100rel in our INVITEs.

use std::time::{Duration, Instant};

use pbx_sip::message::{HeaderName, Message, MessageBuilder};

use super::{CallOutput, SipLegs};
use crate::call::LegId;

/// An unacknowledged reliable provisional response.
#[derive(Debug)]
pub(super) struct Reliable {
    rseq: u32,
    response: Message,
    next: Instant,
    every: Duration,
    give_up: Instant,
}

impl Reliable {
    pub(super) fn next(&self) -> Instant {
        self.next
    }
}

/// Whether the request offers or requires option tag `tag`.
pub(super) fn wants(req: &Message, tag: &str) -> bool {
    [HeaderName::Supported, HeaderName::Require]
        .iter()
        .flat_map(|h| req.header_all(h).collect::<Vec<_>>())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
}

impl SipLegs {
    /// Sends a provisional response to the caller, reliably if it asked for 100rel.
    /// While one reliable provisional awaits its PRACK, later ones are dropped (sec. 3:
    /// only one may be outstanding); the caller learns the final outcome anyway.
    pub(super) fn send_provisional(&mut self, now: Instant, id: LegId, response: Message) {
        let t1 = self.cfg.t1;
        let Some(uas) = self.legs.get_mut(&id).and_then(|l| l.uas_mut()) else {
            return;
        };
        let key = uas.key.clone();
        if !uas.rel100 {
            self.out.push_back(CallOutput::Respond { key, response });
            return;
        }
        if uas.reliable.is_some() {
            return;
        }
        uas.rseq = uas.rseq.wrapping_add(1).max(1);
        let mut response = response;
        response.set_header(HeaderName::Require, "100rel");
        response.set_header(HeaderName::Other("RSeq".into()), &uas.rseq.to_string());
        if !response.body().is_empty() {
            // The answer went out reliably: the 2xx will not repeat it.
            uas.answered_reliably = true;
        }
        uas.reliable = Some(Reliable {
            rseq: uas.rseq,
            response: response.clone(),
            next: now + t1,
            every: t1,
            give_up: now + t1 * 64,
        });
        self.out.push_back(CallOutput::Respond { key, response });
    }

    /// A PRACK from the caller: 200 if its RAck names our outstanding provisional.
    pub(super) fn handle_prack(&mut self, id: LegId, req: &Message) -> Message {
        let rack = req
            .header(&HeaderName::Other("RAck".into()))
            .and_then(|v| v.split_whitespace().next()?.parse::<u32>().ok());
        let Some(uas) = self.legs.get_mut(&id).and_then(|l| l.uas_mut()) else {
            return MessageBuilder::response_to(req, 481, "Call/Transaction Does Not Exist")
                .build();
        };
        match (&uas.reliable, rack) {
            (Some(r), Some(n)) if r.rseq == n => {
                uas.reliable = None;
                MessageBuilder::response_to(req, 200, "OK").build()
            }
            // A retransmitted PRACK for one already acknowledged.
            (None, Some(n)) if n == uas.rseq => MessageBuilder::response_to(req, 200, "OK").build(),
            _ => MessageBuilder::response_to(req, 481, "Call/Transaction Does Not Exist: RAck")
                .build(),
        }
    }

    /// Retransmits the outstanding reliable provisional; gives up after 64*T1.
    pub(super) fn prack_timeout(&mut self, now: Instant, id: LegId) {
        let Some(uas) = self.legs.get_mut(&id).and_then(|l| l.uas_mut()) else {
            return;
        };
        let key = uas.key.clone();
        let Some(r) = uas.reliable.as_mut() else {
            return;
        };
        if r.next > now {
            return;
        }
        if now >= r.give_up {
            // No PRACK: stop insisting; the final response still ends the transaction.
            uas.reliable = None;
            return;
        }
        r.every *= 2;
        r.next = now + r.every;
        let response = r.response.clone();
        self.out.push_back(CallOutput::Respond { key, response });
    }
}
