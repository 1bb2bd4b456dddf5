//! Framing of SIP messages on stream transports (TCP, TLS) by Content-Length.

use super::error::{ParseError, ParseErrorKind as K};
use super::msg::Message;
use super::parse::{parse_head, Limits};

/// One unit read from a stream.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one frame per message; boxing would cost an allocation
pub enum Frame {
    /// A complete message.
    Message(Message),
    /// A `CRLFCRLF` keep-alive ping (RFC 5626 3.5.1); answer with a single CRLF.
    KeepAlive,
    /// A single CRLF: the server's pong to our ping (RFC 5626 4.4.1). Only decoders made
    /// with [`StreamDecoder::client`] yield it.
    Pong,
}

/// Splits a byte stream into messages. Feed bytes with [`StreamDecoder::push`] and
/// drain [`StreamDecoder::next`] until `None`.
///
/// A framing error (bad or missing Content-Length, oversized message, garbled
/// header section) is returned once; the stream cannot be resynchronised, so the
/// decoder then yields nothing more and the connection should be closed (after
/// sending the error's rejection, if any).
#[derive(Debug)]
pub struct StreamDecoder {
    limits: Limits,
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for the end of the header section.
    scanned: usize,
    failed: bool,
    /// Our side opened the connection: CRLFs between messages are pongs, not pings.
    client: bool,
}

impl StreamDecoder {
    /// A decoder applying `limits` to each message.
    pub fn new(limits: Limits) -> Self {
        StreamDecoder {
            limits,
            buf: Vec::new(),
            scanned: 0,
            failed: false,
            client: false,
        }
    }

    /// A decoder for a connection we opened (RFC 5626 client side, e.g. to a trunk's
    /// registrar): only the client pings, so every CRLF at a message boundary is the
    /// server's pong and is returned as [`Frame::Pong`] at once.
    pub fn client(limits: Limits) -> Self {
        StreamDecoder {
            client: true,
            ..Self::new(limits)
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True after a framing error.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// The next frame, `None` if more bytes are needed (or after a framing error).
    #[allow(clippy::should_implement_trait)] // not an Iterator: it resumes after `push`
    pub fn next(&mut self) -> Option<Result<Frame, ParseError>> {
        if self.failed {
            return None;
        }
        // keep-alive and stray CRLFs before a message
        loop {
            match self.buf.as_slice() {
                [b'\r', b'\n', ..] if self.client => {
                    self.consume(2);
                    return Some(Ok(Frame::Pong));
                }
                [b'\r'] if self.client => return None,
                [b'\r', b'\n', b'\r', b'\n', ..] => {
                    self.consume(4);
                    return Some(Ok(Frame::KeepAlive));
                }
                [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => return None, // maybe a ping
                [b'\r', b'\n', ..] => self.consume(2),
                [b'\n', ..] => self.consume(1),
                _ => break,
            }
        }
        if self.buf.is_empty() {
            return None;
        }
        let Some(head_end) = self.find_head_end() else {
            if self.buf.len() > self.limits.max_message_size {
                return self.fail(ParseError::new(K::TooLarge {
                    limit: self.limits.max_message_size,
                }));
            }
            return None;
        };
        let (mut msg, body_at, cl) = match parse_head(&self.buf[..head_end], &self.limits) {
            Ok(v) => v,
            Err(e) => return self.fail(e),
        };
        let len = match cl {
            Ok(Some(n)) => n,
            Ok(None) => {
                return self.fail(ParseError::new(K::MissingContentLength).with_partial(msg))
            }
            Err(k) => return self.fail(ParseError::new(k).with_partial(msg)),
        };
        let total = body_at.saturating_add(len);
        if total > self.limits.max_message_size {
            let limit = self.limits.max_message_size;
            return self.fail(ParseError::new(K::TooLarge { limit }).with_partial(msg));
        }
        if self.buf.len() < total {
            return None;
        }
        msg.body = self.buf[body_at..total].to_vec();
        self.consume(total);
        Some(Ok(Frame::Message(msg)))
    }

    /// Offset just past the empty line ending the header section, if buffered.
    fn find_head_end(&mut self) -> Option<usize> {
        let b = &self.buf;
        let mut i = self.scanned;
        while let Some(off) = b[i..].iter().position(|&c| c == b'\n') {
            let nl = i + off;
            match &b[nl + 1..] {
                [b'\n', ..] => return Some(nl + 2),
                [b'\r', b'\n', ..] => return Some(nl + 3),
                [] | [b'\r'] => break,
                _ => i = nl + 1,
            }
        }
        self.scanned = b.len().saturating_sub(2);
        None
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.scanned = 0;
    }

    fn fail(&mut self, e: ParseError) -> Option<Result<Frame, ParseError>> {
        self.failed = true;
        self.buf = Vec::new();
        Some(Err(e))
    }
}
