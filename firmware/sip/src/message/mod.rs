//! SIP messages (RFC 3261 sec. 7, 19, 20, 25): parser, serialiser, typed headers,
//! builder, stream framing and the mapping of malformed input to responses.
//!
//! # API overview
//! - [`parse`] / [`parse_with`] read one datagram into an owned [`Message`];
//!   [`StreamDecoder`] frames messages on TCP/TLS by Content-Length and reports
//!   RFC 5626 keep-alives as [`Frame::KeepAlive`].
//! - [`Message`] keeps the start line, the headers as `(HeaderName, value)` with
//!   values unfolded and stored in one buffer (no allocation per header), and the body.
//!   Generic access: [`Message::headers`], [`Message::header`], [`Message::header_all`].
//!   Typed access parses lazily on each call: [`Message::vias`], [`Message::top_via`],
//!   [`Message::from_header`], [`Message::to_header`], [`Message::call_id`],
//!   [`Message::cseq`], [`Message::contacts`], [`Message::expires`],
//!   [`Message::max_forwards`]; each returns a [`HeaderError`] naming the header.
//! - A header whose bytes are not UTF-8 spoils only itself: it is kept raw
//!   ([`Header::is_utf8`], [`Header::raw_value`]) and typed access to it fails.
//! - [`Message::to_bytes`] / [`Message::write_to`] serialise with canonical header
//!   names and a Content-Length computed from the body (stored Content-Length headers
//!   are not written; [`Message`] equality ignores them too).
//! - [`MessageBuilder`] builds requests and responses (`response_to` copies Via, From,
//!   To, Call-ID and CSeq per RFC 3261 8.2.6).
//! - [`validate_request`] and [`ParseError::rejection`] are the one place where
//!   malformed input maps to a [`Rejection`] (status + reason): 400 for malformed
//!   requests, 505 for a SIP version other than 2.0, 416 for an unsupported
//!   Request-URI scheme, 513 for oversized messages. 501 for unknown methods
//!   ([`Method::is_known`]) and 483 for `Max-Forwards: 0` are the application's call.
//!
//! ```
//! use pbx_sip::message::{parse, validate_request, HeaderName, MessageBuilder};
//! let req = parse(b"OPTIONS sip:alice@example.com SIP/2.0\r\n\
//!     Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
//!     From: <sip:bob@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\n\
//!     Call-ID: abc\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n").unwrap();
//! validate_request(&req).unwrap();
//! assert_eq!(req.top_via().unwrap().branch(), Some("z9hG4bK1"));
//! let resp = MessageBuilder::response_to(&req, 200, "OK").set_to_tag("xyz").build();
//! assert_eq!(resp.to_header().unwrap().tag(), Some("xyz"));
//! assert_eq!(resp.header(&HeaderName::CallId), Some("abc"));
//! ```

mod builder;
mod error;
mod header;
mod lex;
mod method;
mod msg;
mod name_addr;
mod params;
mod parse;
mod serialize;
mod stream;
mod uri;
mod validate;
mod via;

pub use builder::MessageBuilder;
pub use error::{HeaderError, ParseError, ParseErrorKind, Rejection, UriError};
pub use header::{Header, HeaderName};
pub use method::{InvalidMethod, Method};
pub use msg::{Message, Version};
pub use name_addr::{CSeq, Contacts, NameAddr, NameAddrError};
pub use params::Params;
pub use parse::{parse, parse_with, Limits};
pub use stream::{Frame, StreamDecoder};
pub use uri::{Scheme, Uri};
pub use validate::validate_request;
pub use via::Via;

#[cfg(test)]
mod tests;
