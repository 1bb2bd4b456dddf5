//! Serialisation: canonical header names, one header per line, correct Content-Length.

use super::header::HeaderName;
use super::msg::{Message, StartLine};

impl Message {
    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.text.len() + self.headers.len() * 16 + self.body.len() + 64);
        self.write_to(&mut out);
        out
    }

    /// Appends the message to `out`. Content-Length is written from the body's
    /// length, where the first Content-Length header stood (else last); stored
    /// Content-Length values are ignored. Non-UTF-8 headers are written as received.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match &self.start {
            StartLine::Request {
                method,
                uri,
                version,
            } => {
                out.extend_from_slice(method.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(version.as_str().as_bytes());
            }
            StartLine::Response {
                version,
                status,
                reason,
            } => {
                out.extend_from_slice(version.as_str().as_bytes());
                out.push(b' ');
                let s = [
                    b'0' + (status / 100 % 10) as u8,
                    b'0' + (status / 10 % 10) as u8,
                    b'0' + (status % 10) as u8,
                ];
                out.extend_from_slice(&s);
                out.push(b' ');
                out.extend_from_slice(reason.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        let mut cl_written = false;
        for h in self.headers() {
            if *h.name() == HeaderName::ContentLength {
                if !cl_written {
                    self.write_content_length(out);
                    cl_written = true;
                }
                continue;
            }
            out.extend_from_slice(h.name().as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.raw_value());
            out.extend_from_slice(b"\r\n");
        }
        if !cl_written {
            self.write_content_length(out);
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    fn write_content_length(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(self.body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}
