//! Errors of the message layer and their single mapping to SIP responses.

use super::header::HeaderName;
use super::Message;
use std::fmt;

/// A SIP status and reason phrase to answer a request with: the one place where
/// message-layer errors meet the wire (see [`super::validate_request`] and
/// [`ParseError::rejection`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Status code, e.g. 400.
    pub status: u16,
    /// Reason phrase naming the problem, e.g. "Bad Request: malformed Via".
    pub reason: String,
}

impl Rejection {
    /// A 400 whose reason phrase names the problem.
    pub fn bad_request(what: impl fmt::Display) -> Self {
        Rejection {
            status: 400,
            reason: format!("Bad Request: {what}"),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

/// Why a URI could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// Empty input.
    #[error("empty URI")]
    Empty,
    /// No `scheme:` prefix.
    #[error("missing scheme")]
    NoScheme,
    /// The host part is missing or has characters a host cannot have.
    #[error("malformed host")]
    BadHost,
    /// The port is not a number in 0..=65535.
    #[error("malformed port")]
    BadPort,
    /// A character that must be escaped (e.g. a space) or a broken `%` escape.
    #[error("invalid character or escape")]
    BadChar,
    /// A malformed `;param` or `?header`.
    #[error("malformed parameter")]
    BadParam,
    /// A `tel:` URI without a number.
    #[error("malformed telephone number")]
    BadTel,
}

/// Why a header needed by a typed accessor is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The header is absent.
    #[error("missing {0} header")]
    Missing(HeaderName),
    /// The header is present but does not parse; `why` says what is wrong.
    #[error("malformed {header} header: {why}")]
    Malformed {
        /// Which header.
        header: HeaderName,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The header's bytes are not UTF-8 (kept raw, unusable as typed value).
    #[error("{0} header is not valid UTF-8")]
    NotUtf8(HeaderName),
}

impl HeaderError {
    /// The header this error is about.
    pub fn header(&self) -> &HeaderName {
        match self {
            HeaderError::Missing(h) | HeaderError::NotUtf8(h) => h,
            HeaderError::Malformed { header, .. } => header,
        }
    }

    pub(crate) fn malformed(header: HeaderName, why: &'static str) -> Self {
        HeaderError::Malformed { header, why }
    }
}

/// What went wrong while framing or parsing a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Nothing but whitespace.
    #[error("empty message")]
    Empty,
    /// Larger than [`super::Limits::max_message_size`].
    #[error("message larger than {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// More headers than [`super::Limits::max_headers`].
    #[error("more than {limit} headers")]
    TooManyHeaders {
        /// The limit in force.
        limit: usize,
    },
    /// No empty line ends the header section.
    #[error("header section not terminated by an empty line")]
    Incomplete,
    /// The first line is neither a request line nor a status line.
    #[error("malformed start line")]
    BadStartLine,
    /// The request line is malformed; the string says how.
    #[error("malformed request line: {0}")]
    BadRequestLine(&'static str),
    /// The Request-URI does not parse.
    #[error("malformed Request-URI: {0}")]
    BadRequestUri(UriError),
    /// The status line is malformed (e.g. status not three digits).
    #[error("malformed status line")]
    BadStatusLine,
    /// A header line without a colon or with an invalid name.
    #[error("malformed header line {line}")]
    BadHeaderLine {
        /// 1-based line number in the message.
        line: usize,
    },
    /// Content-Length is not a non-negative decimal number.
    #[error("malformed Content-Length")]
    BadContentLength,
    /// No Content-Length on a stream transport (RFC 3261 18.3 makes it mandatory).
    #[error("missing Content-Length on a stream")]
    MissingContentLength,
    /// Several Content-Length headers: the body cannot be framed.
    #[error("more than one Content-Length")]
    MultipleContentLength,
    /// The body is shorter than Content-Length says (RFC 3261 18.3).
    #[error("body of {actual} bytes shorter than Content-Length {declared}")]
    BodyTooShort {
        /// Declared Content-Length.
        declared: usize,
        /// Bytes actually present.
        actual: usize,
    },
}

/// A message that could not be parsed. When the start line was a request line,
/// the headers read so far are kept (see [`ParseError::partial`]) so that a UAS
/// can still answer with [`ParseError::rejection`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    kind: ParseErrorKind,
    is_request: bool,
    partial: Option<Box<Message>>,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind) -> Self {
        ParseError {
            kind,
            is_request: false,
            partial: None,
        }
    }

    pub(crate) fn in_request(kind: ParseErrorKind) -> Self {
        ParseError {
            kind,
            is_request: true,
            partial: None,
        }
    }

    pub(crate) fn with_partial(mut self, msg: Message) -> Self {
        self.is_request = msg.is_request();
        self.partial = Some(Box::new(msg));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// Whether the start line was a request line.
    pub fn is_request(&self) -> bool {
        self.is_request
    }

    /// The message as far as it could be read (start line and headers; the body may be
    /// missing). Present when the start line and header section could be read, which
    /// is what a UAS needs to build the error response with `MessageBuilder::response_to`.
    pub fn partial(&self) -> Option<&Message> {
        self.partial.as_deref()
    }

    /// The response to send, or `None` when we cannot answer (a response, garbage,
    /// or an oversized message we should just drop).
    pub fn rejection(&self) -> Option<Rejection> {
        if !self.is_request {
            return None;
        }
        use ParseErrorKind as K;
        Some(match &self.kind {
            K::Empty | K::BadStartLine | K::BadStatusLine => return None,
            K::TooLarge { .. } => Rejection {
                status: 513,
                reason: "Message Too Large".into(),
            },
            K::TooManyHeaders { .. } => Rejection::bad_request("too many headers"),
            K::Incomplete => Rejection::bad_request("incomplete header section"),
            K::BadRequestLine(why) => {
                Rejection::bad_request(format_args!("malformed request line: {why}"))
            }
            K::BadRequestUri(e) => {
                Rejection::bad_request(format_args!("malformed Request-URI: {e}"))
            }
            K::BadHeaderLine { .. } => Rejection::bad_request("malformed header line"),
            K::BadContentLength => Rejection::bad_request("malformed Content-Length"),
            K::MissingContentLength => Rejection::bad_request("missing Content-Length"),
            K::MultipleContentLength => Rejection::bad_request("multiple Content-Length"),
            K::BodyTooShort { .. } => Rejection::bad_request("Content-Length larger than body"),
        })
    }
}
