//! Building requests and responses.

use super::header::HeaderName;
use super::method::Method;
use super::msg::{Message, StartLine, Version};
use super::name_addr::NameAddr;
use super::uri::Uri;
use super::via::Via;

/// Builds a [`Message`]. Headers are written in the order added.
///
/// ```
/// use pbx_sip::message::{HeaderName, MessageBuilder, Method, Uri};
/// let uri = Uri::parse("sip:alice@example.com").unwrap();
/// let req = MessageBuilder::request(Method::Options, uri)
///     .header(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1")
///     .header(HeaderName::CallId, "abc")
///     .build();
/// assert!(req.to_bytes().starts_with(b"OPTIONS sip:alice@example.com SIP/2.0\r\n"));
/// ```
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    msg: Message,
}

impl MessageBuilder {
    /// A request with the given method and Request-URI.
    pub fn request(method: Method, uri: Uri) -> Self {
        MessageBuilder {
            msg: Message::new(StartLine::Request {
                method,
                uri,
                version: Version::Sip20,
            }),
        }
    }

    /// A response with the given status and reason phrase.
    pub fn response(status: u16, reason: &str) -> Self {
        MessageBuilder {
            msg: Message::new(StartLine::Response {
                version: Version::Sip20,
                status,
                reason: reason.to_owned(),
            }),
        }
    }

    /// A response to `req`, copying all Via headers in order, From, To, Call-ID and
    /// CSeq (RFC 3261 8.2.6.2). Works on a partial message from a parse error too.
    pub fn response_to(req: &Message, status: u16, reason: &str) -> Self {
        let mut b = Self::response(status, reason);
        for h in req.headers() {
            let copy = matches!(
                h.name(),
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
            );
            if copy {
                b.msg.push_header(h.name().clone(), h.value());
                if let Some(raw) = h.raw {
                    if let Some(last) = b.msg.headers.last_mut() {
                        last.raw = Some(raw.into());
                    }
                }
            }
        }
        b
    }

    /// Appends a header.
    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.msg.push_header(name, &value.into());
        self
    }

    /// Replaces the first header of that name (or appends).
    pub fn set_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.msg.set_header(name, &value.into());
        self
    }

    /// Adds `;tag=<tag>` to the To header unless it already has a tag. The value is
    /// extended textually, so the rest of To is kept as received.
    pub fn set_to_tag(mut self, tag: &str) -> Self {
        if let Some(to) = self.msg.header(&HeaderName::To) {
            let has_tag = NameAddr::parse(to)
                .map(|n| n.tag().is_some())
                .unwrap_or(false);
            if !has_tag {
                let value = format!("{to};tag={tag}");
                self.msg.set_header(HeaderName::To, &value);
            }
        }
        self
    }

    /// Replaces the top Via value (e.g. with `received`/`rport` filled in).
    pub fn set_top_via(mut self, via: &Via) -> Self {
        self.msg.set_top_via(via);
        self
    }

    /// Sets the body and Content-Type (Content-Length is computed on serialisation).
    pub fn body(mut self, content_type: &str, bytes: Vec<u8>) -> Self {
        self.msg.set_header(HeaderName::ContentType, content_type);
        self.msg.body = bytes;
        self
    }

    /// The message.
    pub fn build(mut self) -> Message {
        // Built by appending, so the buffers have slack; a response is kept by its
        // transaction for retransmissions (32 s over UDP), so give the slack back.
        self.msg.text.shrink_to_fit();
        self.msg.headers.shrink_to_fit();
        self.msg
    }
}
