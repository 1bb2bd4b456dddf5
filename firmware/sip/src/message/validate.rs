//! Request validation: the mapping of a parsed but unacceptable request to a
//! response (RFC 3261 8.2, 16.3).

use super::error::{HeaderError, Rejection};
use super::header::HeaderName;
use super::msg::{Message, Version};
use super::parse::content_length;
use super::uri::Scheme;

/// Checks what a UAS must check before processing a request, in this order:
/// SIP version (505), Request-URI scheme and form (416, 400), mandatory headers
/// present (Via, From, To, Call-ID, CSeq) and not duplicated (also Max-Forwards and
/// Content-Length), each of them well-formed, CSeq method equal to the request
/// method, Max-Forwards a number in 0..=255, Contact, Expires and Date well-formed, and
/// Content-Length equal to the body length. Every failure other than 505/416 is a
/// 400 whose reason names the header. Responses are not checked (`Ok`).
///
/// Unknown methods (501) and `Max-Forwards: 0` (483) are left to the application.
pub fn validate_request(msg: &Message) -> Result<(), Rejection> {
    let Some(method) = msg.method() else {
        return Ok(());
    };
    if let Version::Other(v) = msg.version() {
        return Err(Rejection {
            status: 505,
            reason: format!("Version Not Supported: {v}"),
        });
    }
    if let Some(uri) = msg.request_uri() {
        match uri.scheme() {
            Scheme::Sip | Scheme::Sips | Scheme::Tel => {}
            Scheme::Other(_) => {
                return Err(Rejection {
                    status: 416,
                    reason: "Unsupported URI Scheme".into(),
                })
            }
        }
        // RFC 3261 19.1.1: headers are not allowed in a Request-URI
        if !uri.headers().is_empty() {
            return Err(Rejection::bad_request("headers in Request-URI"));
        }
    }
    for name in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        if msg.header_count(&name) == 0 {
            return Err(Rejection::bad_request(format_args!("missing {name}")));
        }
    }
    for name in [
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::MaxForwards,
        HeaderName::ContentLength,
    ] {
        if msg.header_count(&name) > 1 {
            return Err(Rejection::bad_request(format_args!("duplicate {name}")));
        }
    }
    let bad = |e: HeaderError| Rejection::bad_request(format_args!("malformed {}", e.header()));
    msg.vias().map_err(bad)?;
    msg.from_header().map_err(bad)?;
    msg.to_header().map_err(bad)?;
    msg.call_id().map_err(bad)?;
    let cseq = msg.cseq().map_err(bad)?;
    if cseq.method != *method {
        return Err(Rejection::bad_request("CSeq method does not match"));
    }
    msg.max_forwards().map_err(bad)?;
    msg.contacts().map_err(bad)?;
    msg.expires().map_err(bad)?;
    // SIP-date is rfc1123-date and always in GMT (RFC 3261 20.17; RFC 4475 baddate)
    if let Some(date) = msg.header(&HeaderName::Date) {
        if !date.ends_with(" GMT") {
            return Err(Rejection::bad_request("malformed Date"));
        }
    }
    match content_length(msg) {
        Ok(Some(n)) if n != msg.body().len() => {
            return Err(Rejection::bad_request("Content-Length mismatch"));
        }
        Ok(_) => {}
        Err(_) => return Err(Rejection::bad_request("malformed Content-Length")),
    }
    Ok(())
}
