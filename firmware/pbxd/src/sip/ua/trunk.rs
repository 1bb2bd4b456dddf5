//! The cloud trunk in SIP's words: what the provider's INVITEs say about who calls whom
//! (P-Called-Party-ID, P-Asserted-Identity, Privacy), the identity headers of our calls
//! to it (RFC 3325 P-Preferred-Identity, RFC 3323 Privacy), its digest challenges on
//! our INVITEs, and what its refusals mean.

use pbx_sip::auth;
use pbx_sip::message::{HeaderName, Message, NameAddr, Scheme};
use pbx_sip::transaction::TransactionKey;

use super::dialog::our_via;
use super::{cause, CallOutput, ClientRole, ForkState, SipLegs};
use crate::call::{Cause, CauseKind, LegId};

/// Who a provider's INVITE calls and who calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Inbound {
    /// Called-number candidates, most specific first.
    pub(super) called: Vec<String>,
    /// The caller's number (`None`: anonymous or withheld).
    pub(super) caller: Option<String>,
    /// The caller's display name, unless withheld.
    pub(super) name: Option<String>,
}

/// The number in a name-addr's URI: the user part of a SIP URI, the number of a tel URI.
fn number_of(value: &str) -> Option<String> {
    let na = NameAddr::parse(value).ok()?;
    let n = match na.uri.scheme() {
        Scheme::Tel => na
            .uri
            .as_str()
            .strip_prefix("tel:")
            .map(|s| s.split(';').next().unwrap_or_default().to_owned()),
        _ => na.uri.user().map(str::to_owned),
    }?;
    let digits = n.strip_prefix('+').unwrap_or(&n);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

fn display_of(value: &str) -> Option<String> {
    NameAddr::parse(value)
        .ok()?
        .display_name
        .filter(|n| !n.trim().is_empty() && !n.eq_ignore_ascii_case("anonymous"))
}

/// Reads a provider's INVITE.
pub(super) fn inbound(req: &Message) -> Inbound {
    let pcpid = HeaderName::Other("P-Called-Party-ID".into());
    let pai = HeaderName::Other("P-Asserted-Identity".into());
    let privacy = HeaderName::Other("Privacy".into());
    let mut called: Vec<String> = Vec::new();
    let ruri = req.request_uri().and_then(|u| u.user()).map(str::to_owned);
    let candidates = [
        req.header(&pcpid).and_then(number_of),
        ruri,
        req.header(&HeaderName::To).and_then(number_of),
    ];
    for c in candidates.into_iter().flatten() {
        if !called.contains(&c) {
            called.push(c);
        }
    }
    // RFC 3323/3325: `id` or `user` privacy withholds the caller from the called party.
    let withheld = req.header_all(&privacy).any(|v| {
        v.split(';')
            .any(|p| matches!(p.trim().to_ascii_lowercase().as_str(), "id" | "user"))
    });
    if withheld {
        return Inbound {
            called,
            caller: None,
            name: None,
        };
    }
    let asserted = req.header_all(&pai).find_map(number_of);
    let from = req.header(&HeaderName::From);
    Inbound {
        called,
        caller: asserted.or_else(|| from.and_then(number_of)),
        name: from.and_then(display_of),
    }
}

/// What a provider's final refusal means: 402, or words about balance or credit, is
/// [`CauseKind::Balance`]; otherwise the status's cause with the provider's words.
pub(super) fn refusal(resp: &Message) -> Cause {
    let status = resp.status().unwrap_or(500);
    let reason = resp.reason().unwrap_or_default();
    let warning = resp
        .header(&HeaderName::Other("Warning".into()))
        .unwrap_or_default();
    let words = format!("{reason} {warning}").to_ascii_lowercase();
    let balance = ["balance", "credit", "guthaben", "insufficient funds"];
    if status == 402 || balance.iter().any(|w| words.contains(w)) {
        return Cause::with(
            CauseKind::Balance,
            "outgoing calls refused by provider: balance",
        );
    }
    let mut c = cause::of_status(status);
    c.detail = Some(format!("provider: {status} {reason}").trim().to_owned());
    c
}

impl SipLegs {
    /// Answers a 401/407 to fork `i` of trunk leg `id` with the trunk's credentials:
    /// the INVITE again with CSeq + 1, a new branch and the credentials. `false` when
    /// it cannot (not a trunk, no credentials, already answered once, no usable
    /// challenge): the fork then fails.
    pub(super) fn answer_challenge(&mut self, id: LegId, i: usize, resp: &Message) -> bool {
        let branch = self.ids.branch();
        let cnonce = self.ids.tag();
        let Some(fork) = self
            .legs
            .get_mut(&id)
            .and_then(|l| l.uac_mut())
            .and_then(|u| u.forks.get_mut(i))
        else {
            return false;
        };
        let Some((_, Some(creds))) = &fork.trunk else {
            return false;
        };
        if fork.challenged || fork.state == ForkState::Answered {
            return false;
        }
        let (chal_name, auth_name) = match resp.status() {
            Some(401) => (HeaderName::WwwAuthenticate, HeaderName::Authorization),
            _ => (
                HeaderName::ProxyAuthenticate,
                HeaderName::ProxyAuthorization,
            ),
        };
        let Some(chal) = auth::select_challenge(resp.header_all(&chal_name)) else {
            return false;
        };
        let uri = fork
            .invite
            .request_uri()
            .map(|u| u.to_string())
            .unwrap_or_default();
        let Ok(value) = auth::authorize(
            &chal,
            "INVITE",
            &uri,
            &creds.user,
            &creds.password,
            &cnonce,
            1,
        ) else {
            return false;
        };
        let mut invite = fork.invite.clone();
        let seq = invite.cseq().map(|c| c.seq).unwrap_or(1) + 1;
        invite.set_header(HeaderName::Via, &our_via(fork.flow, &branch).to_string());
        invite.set_header(HeaderName::CSeq, &format!("{seq} INVITE"));
        invite.set_header(auth_name, &value);
        let Ok(key) = TransactionKey::for_client_request(&invite) else {
            return false;
        };
        let old = std::mem::replace(&mut fork.key, key.clone());
        fork.invite = invite.clone();
        fork.challenged = true;
        fork.state = ForkState::Calling;
        let flow = fork.flow;
        self.by_client_key.remove(&old);
        self.by_client_key.insert(key, ClientRole::Fork(id, i));
        self.out.push_back(CallOutput::Request {
            flow,
            request: invite,
        });
        true
    }

    /// A final refusal of fork `i`: a trunk's says more than its status.
    pub(super) fn fork_refused(
        &mut self,
        now: std::time::Instant,
        id: LegId,
        i: usize,
        resp: &Message,
    ) {
        let status = resp.status().unwrap_or(500);
        if let Some(fork) = self
            .legs
            .get_mut(&id)
            .and_then(|l| l.uac_mut())
            .and_then(|u| u.forks.get_mut(i))
        {
            if fork.trunk.is_some() {
                fork.final_cause = Some(if matches!(status, 401 | 407) {
                    Cause::with(CauseKind::Failed, "trunk auth failed")
                } else {
                    refusal(resp)
                });
            }
        }
        self.fork_failed(now, id, i, status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbx_sip::message::parse;

    fn invite(headers: &str) -> Message {
        let text = format!(
            "INVITE sip:4930123@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.5;branch=z9hG4bKx\r\n\
             From: \"Erika\" <sip:+4930555@provider.example>;tag=a\r\nTo: <sip:+4921112345@provider.example>\r\n\
             Call-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{headers}Content-Length: 0\r\n\r\n"
        );
        parse(text.as_bytes()).expect("parses")
    }

    #[test]
    fn called_and_calling_numbers_are_read_from_the_provider_headers() {
        let i = inbound(&invite(
            "P-Called-Party-ID: <tel:+4921112399>\r\nP-Asserted-Identity: <sip:+4930999@provider.example>\r\n",
        ));
        assert_eq!(i.called, ["+4921112399", "4930123", "+4921112345"]);
        assert_eq!(i.caller.as_deref(), Some("+4930999"));
        assert_eq!(i.name.as_deref(), Some("Erika"));
        let i = inbound(&invite(""));
        assert_eq!(i.caller.as_deref(), Some("+4930555"));
        let i = inbound(&invite(
            "Privacy: id\r\nP-Asserted-Identity: <sip:+4930999@provider.example>\r\n",
        ));
        assert_eq!((i.caller, i.name), (None, None));
    }

    #[test]
    fn refusals_about_balance_become_the_balance_cause() {
        let resp = |line: &str, extra: &str| {
            let t = format!(
                "SIP/2.0 {line}\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n\
                 To: <sip:c@d>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
            );
            refusal(&parse(t.as_bytes()).expect("parses"))
        };
        assert_eq!(resp("402 Payment Required", "").kind, CauseKind::Balance);
        assert_eq!(
            resp("403 Insufficient Balance", "").kind,
            CauseKind::Balance
        );
        assert_eq!(
            resp(
                "480 Unavailable",
                "Warning: 399 sip.example \"no credit left\"\r\n"
            )
            .kind,
            CauseKind::Balance
        );
        let c = resp("484 Address Incomplete", "");
        assert_eq!(c.kind, CauseKind::Incomplete);
        assert_eq!(
            c.detail.as_deref(),
            Some("provider: 484 Address Incomplete")
        );
    }
}
