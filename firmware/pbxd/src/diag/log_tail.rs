//! The last [`CAPACITY`] log lines in memory, for the support bundle: pbxd logs to stderr
//! (journald on the box) and keeps no log file, so the web UI could not read them
//! otherwise. A `tracing` layer beside the normal output; bounded, never blocks logging.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Lines kept.
pub const CAPACITY: usize = 500;
/// Longest kept line, in bytes (a huge SIP message in a debug line is cut).
const MAX_LINE: usize = 2000;

fn buffer() -> &'static Mutex<VecDeque<String>> {
    static LINES: OnceLock<Mutex<VecDeque<String>>> = OnceLock::new();
    LINES.get_or_init(|| Mutex::new(VecDeque::with_capacity(CAPACITY)))
}

/// Appends a line, dropping the oldest beyond [`CAPACITY`].
pub fn push(mut line: String) {
    if line.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    let mut lines = buffer().lock().unwrap_or_else(|p| p.into_inner());
    if lines.len() == CAPACITY {
        lines.pop_front();
    }
    lines.push_back(line);
}

/// The kept lines, oldest first.
pub fn lines() -> Vec<String> {
    let lines = buffer().lock().unwrap_or_else(|p| p.into_inner());
    lines.iter().cloned().collect()
}

/// The layer: formats each event as `RFC-3339-UTC LEVEL target: message key=value ...`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogTail;

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for LogTail {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let ms = i128::from(crate::clock::unix_now_ms());
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let mut f = Fields(format!("{at} {} {}:", meta.level(), meta.target()));
        event.record(&mut f);
        push(f.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_keeps_the_newest_lines_only_and_cuts_long_ones() {
        for i in 0..CAPACITY + 10 {
            push(format!("test-line {i}"));
        }
        push("é".repeat(MAX_LINE));
        let got = lines();
        assert_eq!(got.len(), CAPACITY);
        assert!(got.iter().all(|l| l != "test-line 10"), "oldest dropped");
        assert_eq!(got[got.len() - 2], format!("test-line {}", CAPACITY + 9));
        assert!(got[got.len() - 1].len() <= MAX_LINE + '…'.len_utf8());
    }
}
