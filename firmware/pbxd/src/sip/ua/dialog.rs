//! One SIP dialog of a call leg (RFC 3261 sec. 12): the state that in-dialog requests
//! are built from and matched against, for either role.

use pbx_sip::message::{HeaderName, Message, MessageBuilder, Method, NameAddr, Uri, Via};

use super::ids::Ids;
use crate::registrar::{Flow, Transport};

/// A dialog as one leg of the B2BUA sees it.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our tag (To tag on a leg we answered, From tag on a leg we called).
    pub local_tag: String,
    /// The peer's tag (empty while a leg we answered has no peer tag: RFC 2543 peers).
    pub remote_tag: String,
    /// Our name-addr with tag, as it goes in From of our requests.
    pub local: String,
    /// The peer's name-addr with tag, as it goes in To of our requests.
    pub remote: String,
    /// Where in-dialog requests go (the peer's Contact).
    pub remote_target: Uri,
    /// Route set, in the order our requests carry it.
    pub route_set: Vec<String>,
    /// CSeq of our last request.
    pub local_cseq: u32,
    /// CSeq of the peer's last request (for ordering, sec. 12.2.2).
    pub remote_cseq: u32,
    /// The flow the peer is reached on (the NAT binding or TCP connection).
    pub flow: Flow,
    /// Our Contact in this dialog: the one our INVITE or answer carried (towards a trunk
    /// behind NAT, the public address), repeated in our re-INVITEs.
    pub local_contact: String,
}

impl Dialog {
    /// The dialog we form by answering `invite` (UAS side, sec. 12.1.1) with our tag.
    pub fn as_uas(invite: &Message, local_tag: &str, flow: Flow) -> Option<Dialog> {
        let from = invite.from_header().ok()?;
        let to = invite.header(&HeaderName::To)?;
        let contact = first_contact(invite)?;
        Some(Dialog {
            call_id: invite.call_id().ok()?.to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: from.tag().unwrap_or("").to_owned(),
            local: format!("{to};tag={local_tag}"),
            remote: invite.header(&HeaderName::From)?.to_owned(),
            remote_target: contact,
            route_set: record_routes(invite),
            local_cseq: 0,
            remote_cseq: invite.cseq().ok()?.seq,
            flow,
            local_contact: our_contact(flow),
        })
    }

    /// The dialog a 2xx (or 1xx with tag) to our `invite` forms (UAC side, sec. 12.1.2).
    pub fn as_uac(invite: &Message, response: &Message, flow: Flow) -> Option<Dialog> {
        let from = invite.from_header().ok()?;
        let to = response.to_header().ok()?;
        let mut route_set = record_routes(response);
        route_set.reverse();
        Some(Dialog {
            call_id: invite.call_id().ok()?.to_owned(),
            local_tag: from.tag()?.to_owned(),
            remote_tag: to.tag()?.to_owned(),
            local: invite.header(&HeaderName::From)?.to_owned(),
            remote: response.header(&HeaderName::To)?.to_owned(),
            remote_target: first_contact(response).or_else(|| invite.request_uri().cloned())?,
            route_set,
            local_cseq: invite.cseq().ok()?.seq,
            remote_cseq: 0,
            flow,
            local_contact: invite
                .header(&HeaderName::Contact)
                .map_or_else(|| our_contact(flow), str::to_owned),
        })
    }

    /// A new in-dialog request (BYE, re-INVITE, ...) with the next CSeq.
    pub fn request(&mut self, method: Method, ids: &mut Ids) -> Message {
        self.local_cseq = self.local_cseq.wrapping_add(1);
        let cseq = self.local_cseq;
        self.request_with_cseq(method, cseq, ids)
    }

    /// The ACK for a 2xx to our INVITE with CSeq `cseq` (sec. 13.2.2.4: same CSeq
    /// number, a new branch, the dialog's route set).
    pub fn ack(&self, cseq: u32, ids: &mut Ids) -> Message {
        self.request_with_cseq(Method::Ack, cseq, ids)
    }

    fn request_with_cseq(&self, method: Method, cseq: u32, ids: &mut Ids) -> Message {
        let mut b = MessageBuilder::request(method.clone(), self.remote_target.clone())
            .header(
                HeaderName::Via,
                our_via(self.flow, &ids.branch()).to_string(),
            )
            .header(HeaderName::MaxForwards, "70")
            .header(HeaderName::From, self.local.clone())
            .header(HeaderName::To, self.remote.clone())
            .header(HeaderName::CallId, self.call_id.clone())
            .header(HeaderName::CSeq, format!("{cseq} {method}"));
        for r in &self.route_set {
            b = b.header(HeaderName::Route, r.clone());
        }
        if matches!(method, Method::Invite | Method::Update | Method::Refer) {
            b = b.header(HeaderName::Contact, self.local_contact.clone());
        }
        b.build()
    }

    /// Whether `req` (with To tag = our tag) belongs to this dialog.
    pub fn matches(&self, req: &Message) -> bool {
        let (Ok(from), Ok(to), Ok(call_id)) = (req.from_header(), req.to_header(), req.call_id())
        else {
            return false;
        };
        call_id == self.call_id
            && to.tag() == Some(self.local_tag.as_str())
            && from.tag().unwrap_or("") == self.remote_tag
    }
}

/// Our Via for a request on `flow`, with `rport` so NATed peers answer where we sent
/// from (RFC 3581).
pub fn our_via(flow: Flow, branch: &str) -> Via {
    let mut via = Via::new(
        transport_token(flow.transport),
        &host_of(flow.local.ip()),
        Some(flow.local.port()),
        branch,
    );
    via.params.push("rport", None);
    via
}

/// Our Contact on `flow`: the address the peer reached us at.
pub fn our_contact(flow: Flow) -> String {
    let host = host_of(flow.local.ip());
    let port = flow.local.port();
    match flow.transport {
        Transport::Udp => format!("<sip:pbx@{host}:{port}>"),
        Transport::Tcp => format!("<sip:pbx@{host}:{port};transport=tcp>"),
        Transport::Tls => format!("<sips:pbx@{host}:{port}>"),
    }
}

fn transport_token(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
        Transport::Tls => "TLS",
    }
}

/// An IP as a SIP host (IPv6 in brackets).
pub fn host_of(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn first_contact(msg: &Message) -> Option<Uri> {
    let value = msg.header(&HeaderName::Contact)?;
    let first = value.split(',').next()?;
    NameAddr::parse(first).ok().map(|n| n.uri)
}

fn record_routes(msg: &Message) -> Vec<String> {
    msg.header_all(&HeaderName::RecordRoute)
        .flat_map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect()
}
