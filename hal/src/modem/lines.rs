//! Splits the modem's output into lines (TS 27.007 §4.1: `<CR><LF>text<CR><LF>`).
//!
//! CR, LF and Ctrl-Z end a line; empty lines are skipped; the SMS prompt `> ` (sent with no
//! line end) is reported as soon as it is complete; a line equal to the command we just
//! sent is reported as [`LineItem::Echo`]; over-long or non-text lines are reported as
//! [`LineItem::Garbage`] and dropped.

use std::collections::VecDeque;

/// Default longest line kept, in bytes. A PDU line of 176 octets is 352 hex digits.
pub const DEFAULT_MAX_LINE: usize = 1024;

/// One unit of modem output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineItem {
    /// A text line, without its line end.
    Line(String),
    /// The SMS text prompt `> `.
    Prompt,
    /// The modem echoed our command back.
    Echo,
    /// Bytes that were dropped.
    Garbage(GarbageKind),
}

/// Why bytes were dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GarbageKind {
    /// A line longer than the limit; everything up to the next line end was dropped.
    TooLong {
        /// Bytes dropped.
        len: usize,
    },
    /// A line holding control characters or invalid UTF-8.
    NotText {
        /// The line's length in bytes.
        len: usize,
    },
}

/// Byte-stream to line splitter.
#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    max_line: usize,
    /// Bytes dropped so far from an over-long line, if we are dropping.
    dropping: Option<usize>,
    echo: Option<Vec<u8>>,
    out: VecDeque<LineItem>,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter::new(DEFAULT_MAX_LINE)
    }
}

impl LineSplitter {
    /// A splitter that keeps lines up to `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            max_line: max_line.max(2),
            dropping: None,
            echo: None,
            out: VecDeque::new(),
        }
    }

    /// Expect the modem to echo `line` (without line end); the next line equal to it is
    /// reported as [`LineItem::Echo`]. `None` stops expecting.
    pub fn expect_echo(&mut self, line: Option<&[u8]>) {
        self.echo = line.map(<[u8]>::to_vec);
    }

    /// Forget a partial line (after a modem reset).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.dropping = None;
        self.echo = None;
    }

    /// Feed bytes read from the port.
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if matches!(b, b'\r' | b'\n' | 0x1A) {
                self.end_line();
                continue;
            }
            if let Some(n) = &mut self.dropping {
                *n += 1;
                continue;
            }
            if self.buf.len() >= self.max_line {
                self.dropping = Some(self.buf.len() + 1);
                self.buf.clear();
                continue;
            }
            self.buf.push(b);
            if self.buf == b"> " {
                self.buf.clear();
                self.out.push_back(LineItem::Prompt);
            }
        }
    }

    /// The next item, in arrival order.
    #[must_use]
    pub fn poll_item(&mut self) -> Option<LineItem> {
        self.out.pop_front()
    }

    fn end_line(&mut self) {
        if let Some(len) = self.dropping.take() {
            self.out
                .push_back(LineItem::Garbage(GarbageKind::TooLong { len }));
            return;
        }
        if self.buf.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.buf);
        if self.echo.as_deref() == Some(&line[..]) {
            self.echo = None;
            self.out.push_back(LineItem::Echo);
            return;
        }
        let item = match String::from_utf8(line) {
            Ok(s) if !s.chars().any(|c| c.is_control() && c != '\t') => {
                // Some modems pad with spaces; the content is what counts.
                let t = s.trim();
                if t.is_empty() {
                    return;
                }
                LineItem::Line(t.to_owned())
            }
            Ok(s) => LineItem::Garbage(GarbageKind::NotText { len: s.len() }),
            Err(e) => LineItem::Garbage(GarbageKind::NotText {
                len: e.as_bytes().len(),
            }),
        };
        self.out.push_back(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(s: &mut LineSplitter) -> Vec<LineItem> {
        std::iter::from_fn(|| s.poll_item()).collect()
    }

    fn line(s: &str) -> LineItem {
        LineItem::Line(s.into())
    }

    #[test]
    fn splits_on_any_line_end_and_skips_empty_lines() {
        let mut s = LineSplitter::default();
        s.handle_bytes(b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n\n\rRING\n");
        assert_eq!(
            items(&mut s),
            [line("+CSQ: 20,99"), line("OK"), line("RING")]
        );
    }

    #[test]
    fn lines_may_arrive_byte_by_byte() {
        let mut s = LineSplitter::default();
        for b in b"\r\nOK\r\n" {
            s.handle_bytes(&[*b]);
        }
        assert_eq!(items(&mut s), [line("OK")]);
    }

    #[test]
    fn prompt_is_reported_without_a_line_end() {
        let mut s = LineSplitter::default();
        s.handle_bytes(b"\r\n> ");
        assert_eq!(items(&mut s), [LineItem::Prompt]);
        s.handle_bytes(b"\r\n>x\r\n");
        assert_eq!(items(&mut s), [line(">x")]);
    }

    #[test]
    fn echo_is_recognised_once() {
        let mut s = LineSplitter::default();
        s.expect_echo(Some(b"AT+CSQ"));
        s.handle_bytes(b"AT+CSQ\r\r\n+CSQ: 1,2\r\nAT+CSQ\r\n");
        assert_eq!(
            items(&mut s),
            [LineItem::Echo, line("+CSQ: 1,2"), line("AT+CSQ")]
        );
    }

    #[test]
    fn overlong_and_binary_lines_are_garbage() {
        let mut s = LineSplitter::new(8);
        s.handle_bytes(b"0123456789ABC\r\nOK\r\n\xff\xfe\x00\r\nOK\r\n");
        assert_eq!(
            items(&mut s),
            [
                LineItem::Garbage(GarbageKind::TooLong { len: 13 }),
                line("OK"),
                LineItem::Garbage(GarbageKind::NotText { len: 3 }),
                line("OK"),
            ]
        );
    }
}
