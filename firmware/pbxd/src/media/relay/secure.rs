//! SRTP on a relay leg: one context for what the peer sends us (its key), one for what we
//! send it (our key). The session unprotects on ingress before anything else looks at a
//! packet, and protects on egress as the shell takes packets; plain legs have no state
//! here and pay one `Option` check.

use crate::media::sdp::SrtpKeys;
use crate::media::srtp::{SrtpContext, SrtpError};

/// The SRTP state of one leg.
#[derive(Debug)]
pub(crate) struct LegSrtp {
    keys: SrtpKeys,
    /// Unprotects what the peer sends (its key).
    rx: SrtpContext,
    /// Protects what we send (our key).
    tx: SrtpContext,
}

impl LegSrtp {
    pub(crate) fn new(keys: SrtpKeys) -> Self {
        Self {
            rx: SrtpContext::new(keys.suite, &keys.recv),
            tx: SrtpContext::new(keys.suite, &keys.send),
            keys,
        }
    }

    /// Takes new keys (a re-INVITE): a direction whose key and suite stayed keeps its
    /// context, so its rollover counter and replay window carry on.
    pub(crate) fn rekey(&mut self, keys: SrtpKeys) {
        if keys.suite != self.keys.suite || keys.recv != self.keys.recv {
            self.rx = SrtpContext::new(keys.suite, &keys.recv);
        }
        if keys.suite != self.keys.suite || keys.send != self.keys.send {
            self.tx = SrtpContext::new(keys.suite, &keys.send);
        }
        self.keys = keys;
    }

    /// Decrypts and authenticates a received packet in place.
    pub(crate) fn unprotect(&mut self, rtcp: bool, pkt: &mut Vec<u8>) -> Result<(), SrtpError> {
        if rtcp {
            self.rx.unprotect_rtcp(pkt)
        } else {
            self.rx.unprotect_rtp(pkt)
        }
    }

    /// Encrypts a packet we send, in place.
    pub(crate) fn protect(&mut self, rtcp: bool, pkt: &mut Vec<u8>) -> Result<(), SrtpError> {
        if rtcp {
            self.tx.protect_rtcp(pkt)
        } else {
            self.tx.protect_rtp(pkt)
        }
    }
}
