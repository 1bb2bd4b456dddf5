//! Keeping calls honest: session timers (RFC 4028) towards the caller, in-dialog
//! OPTIONS pings to both phones, and the SIP extensions we refuse (RFC 3261 sec. 8.2.2.3).
//! A phone that lost power or its network must not leave a call (and its relay ports)
//! open until the media time-out; whichever of these notices first ends the call.

use std::time::{Duration, Instant};

use pbx_sip::message::{HeaderName, Message, Method};

use super::uas::Early;
use super::{CallOutput, ClientRole, Phase, SipLegs};
use crate::call::{Gone, LegId};

/// Option tags we implement (for Require and Supported).
pub(super) const SUPPORTED: &str = "timer, replaces, 100rel";

/// RFC 4028 sec. 4: the smallest session interval we accept (and the RFC's minimum).
pub(super) const MIN_SE: u32 = 90;

/// Refuses a request that requires an extension we do not implement (420).
pub(super) fn check_require(req: &Message) -> Result<(), Early> {
    let unsupported: Vec<String> = req
        .header_all(&HeaderName::Require)
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty() && !matches!(t.as_str(), "timer" | "replaces" | "100rel"))
        .collect();
    if unsupported.is_empty() {
        return Ok(());
    }
    let mut e = Early::new(420, "Bad Extension");
    e.unsupported = Some(unsupported.join(", "));
    Err(e)
}

/// The session interval the caller asks for, if it supports timers (RFC 4028 sec. 9):
/// below our minimum is 422 with Min-SE.
pub(super) fn session_interval(req: &Message) -> Result<Option<Duration>, Early> {
    let Some(value) = req.header(&HeaderName::Other("Session-Expires".into())) else {
        return Ok(None);
    };
    let secs: u32 = value
        .split(';')
        .next()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Early::new(400, "Bad Request: malformed Session-Expires"))?;
    if secs < MIN_SE {
        let mut e = Early::new(422, "Session Interval Too Small");
        e.min_se = Some(MIN_SE);
        return Err(e);
    }
    let supported = req
        .header_all(&HeaderName::Supported)
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("timer"));
    // Only a caller that can refresh gets a timer; otherwise we would have to.
    Ok(supported.then(|| Duration::from_secs(u64::from(secs))))
}

impl SipLegs {
    /// Headers for a 2xx to the caller's INVITE or refresh: the caller refreshes.
    pub(super) fn session_headers(&self, id: LegId) -> Vec<(HeaderName, String)> {
        match self
            .legs
            .get(&id)
            .and_then(|l| l.uas())
            .and_then(|u| u.session)
        {
            Some(s) => vec![
                (
                    HeaderName::Other("Session-Expires".into()),
                    format!("{};refresher=uac", s.as_secs()),
                ),
                (HeaderName::Require, "timer".into()),
            ],
            None => Vec::new(),
        }
    }

    /// The caller refreshed the session (re-INVITE or UPDATE), or it just started.
    /// RFC 4028 sec. 10: the non-refresher ends the session min(32 s, SE/3) before it
    /// would expire, so its BYE arrives while the refresher still has the dialog.
    pub(super) fn session_refreshed(&mut self, now: Instant, id: LegId) {
        if let Some(uas) = self.legs.get_mut(&id).and_then(|l| l.uas_mut()) {
            if let Some(s) = uas.session {
                let margin = (s / 3).min(Duration::from_secs(32));
                uas.session_deadline = Some(now + s - margin);
            }
        }
    }

    /// The leg is established: pings start.
    pub(super) fn start_pings(&mut self, now: Instant, id: LegId) {
        let every = self.cfg.ping_interval;
        if let Some(leg) = self.legs.get_mut(&id) {
            leg.ping_at = every.map(|e| now + e);
        }
    }

    /// Timers of this module that are due for leg `id`.
    pub(super) fn liveness_timeout(&mut self, now: Instant, id: LegId) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let session_over = leg
            .uas_mut()
            .is_some_and(|u| u.session_deadline.is_some_and(|t| t <= now));
        if session_over {
            // RFC 4028 sec. 10: no refresh before expiry ends the session.
            self.send_bye(id);
            self.leg_gone(now, id, Gone::Lost("session timer expired".into()));
            return;
        }
        if leg.phase != Phase::Up || leg.ping_at.is_none_or(|t| t > now) {
            return;
        }
        leg.ping_at = self.cfg.ping_interval.map(|e| now + e);
        let Some(d) = leg.dialog.as_mut() else {
            return;
        };
        let ping = d.request(Method::Options, &mut self.ids);
        let flow = d.flow;
        if let Ok(key) = pbx_sip::transaction::TransactionKey::for_client_request(&ping) {
            self.by_client_key.insert(key, ClientRole::Ping(id));
        }
        self.out.push_back(CallOutput::Request {
            flow,
            request: ping,
        });
    }

    /// The answer to a ping: only "no such dialog" or silence means the phone is gone
    /// (405 or 501 from a phone that does not do OPTIONS in a dialog is a sign of life).
    pub(super) fn ping_answered(&mut self, now: Instant, id: LegId, status: Option<u16>) {
        if !matches!(status, None | Some(408 | 481)) || !self.legs.contains_key(&id) {
            return;
        }
        let why = match status {
            None => "peer unreachable (no answer to OPTIONS)",
            _ => "peer lost the dialog (OPTIONS answered 481)",
        };
        // A phone that answered 481 has no dialog to end; a silent one may just have
        // lost packets, and gets a BYE in case it comes back.
        if status.is_none() {
            self.send_bye(id);
        }
        self.leg_gone(now, id, Gone::Lost(why.into()));
    }
}
