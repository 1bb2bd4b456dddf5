//! SIP messages (RFC 3261 sec. 7, 19, 20, 25): parser, serialiser, typed headers,
//! builder, stream framing and the mapping of malformed input to responses.
//!
//! # API overview
//! - [`parse`] / [`parse_with`] read one datagram into an owned [`Message`]
//!   (Content-Length frames the body: shorter is an error, longer is cut, absent
//!   means "rest of the datagram"); [`StreamDecoder`] frames messages on TCP/TLS by
//!   Content-Length (mandatory there) and reports RFC 5626 `CRLFCRLF` pings as
//!   [`Frame::KeepAlive`] (or, on connections we opened, each CRLF pong as [`Frame::Pong`]). [`Limits`] bound message size (64 KiB) and header count (128).
//! - [`Message`] keeps the start line, one copy of the header section with each
//!   value as a span (folded values unfolded: each fold becomes one space; values
//!   trimmed), and the body. No allocation per header.
//!   Generic access: [`Message::headers`] yields [`Header`] views (`name()`,
//!   `value()`, `is_utf8()`, `raw_value()`), [`Message::header`] (first value),
//!   [`Message::header_all`], [`Message::header_count`]. Edits: `push_header`,
//!   `prepend_header`, `set_header`, `remove_header`, [`Message::set_top_via`],
//!   `set_body`.
//! - Typed access parses on each call (keep the result if you need it twice):
//!   [`Message::vias`] (all values, comma lists split), [`Message::top_via`],
//!   [`Message::from_header`], [`Message::to_header`], [`Message::call_id`],
//!   [`Message::cseq`], [`Message::contacts`] ([`Contacts::Star`] or a list; no
//!   Contact header gives an empty list), [`Message::expires`],
//!   [`Message::min_expires`], [`Message::max_forwards`] (0..=255). Each error is a
//!   [`HeaderError`] naming the header and the reason.
//! - A header whose bytes are not UTF-8 spoils only itself: it keeps its raw bytes
//!   (forwarded as received), reads as a lossy string, and typed access to it
//!   fails with [`HeaderError::NotUtf8`].
//! - [`Uri`] keeps its raw text ([`Uri::as_str`], `Display`: forwarded as received)
//!   and exposes %-unescaped parts through getters (`scheme()`, `user()`,
//!   `password()`, `host()`, `port()`, `params()`, `headers()`, `transport()`);
//!   setters re-render the text. [`Uri::equivalent`] compares per RFC 3261 19.1.4,
//!   [`Uri::user_host`] gives the AOR key. `tel:` URIs hold the number in `user()`.
//! - [`NameAddr`] (`display_name`, `uri`, `params`: header parameters; for an
//!   addr-spec without `<>` every `;param` belongs to the header), [`Via`]
//!   (`transport` uppercased, `host`, `port`, `params`; `branch()`, `rport()`,
//!   `received()`), [`CSeq`], [`Params`] (ordered, case-insensitive `get`,
//!   `set`, `push`, `remove`, `iter`; quoted values keep their quotes).
//! - [`Message::to_bytes`] / [`Message::write_to`] serialise with canonical header
//!   names and a Content-Length computed from the body (stored Content-Length
//!   values are not written; [`Message`] equality ignores them too).
//! - [`MessageBuilder`] builds requests and responses (`response_to` copies Via,
//!   From, To, Call-ID and CSeq per RFC 3261 8.2.6; `set_to_tag`, `set_top_via`,
//!   `body`).
//! - [`validate_request`] and [`ParseError::rejection`] are the one place where
//!   malformed input maps to a [`Rejection`] (status + reason): 400 "Bad Request:
//!   `<what>`" for malformed requests (missing or duplicate mandatory headers,
//!   malformed Via/From/To/Call-ID/CSeq/Max-Forwards/Contact/Expires/Date, CSeq
//!   method mismatch, Content-Length problems, headers in the Request-URI), 505 for a
//!   SIP version other than 2.0, 416 for a Request-URI scheme other than sip, sips or
//!   tel, 513 for oversized messages. A request whose headers could be read keeps
//!   them in [`ParseError::partial`] so the 400 can still be built with
//!   `MessageBuilder::response_to`. 501 for unknown methods ([`Method::is_known`])
//!   and 483 for `Max-Forwards: 0` are the application's call.
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
