//! Reassembly of concatenated SMS parts, keyed by sender and reference, in any order.

use super::{Address, Body, Deliver, Timestamp};

/// A complete received message (one part or all parts joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMessage {
    /// Originating address.
    pub sender: Address,
    /// Time stamp of part 1.
    pub timestamp: Timestamp,
    /// Joined text or data.
    pub body: Body,
    /// Number of parts it came in.
    pub parts: u8,
}

#[derive(Debug)]
struct Pending {
    sender: Address,
    reference: u16,
    wide: bool,
    parts: Vec<Option<Deliver>>,
}

/// Collects parts until a message is complete. Holds at most `max_pending` incomplete
/// messages; the oldest is dropped when another starts.
#[derive(Debug)]
pub struct Reassembler {
    pending: Vec<Pending>,
    max_pending: usize,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(16)
    }
}

impl Reassembler {
    /// A reassembler holding at most `max_pending` incomplete messages.
    pub fn new(max_pending: usize) -> Self {
        Reassembler {
            pending: Vec::new(),
            max_pending: max_pending.max(1),
        }
    }

    /// Incomplete messages held.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Add a part; returns the message once every part is there. A part repeated replaces
    /// the earlier copy.
    pub fn push(&mut self, d: Deliver) -> Option<SmsMessage> {
        let Some(c) = d.concat.filter(|c| c.total > 1) else {
            return Some(SmsMessage {
                sender: d.sender,
                timestamp: d.timestamp,
                body: d.body,
                parts: 1,
            });
        };
        let pos = self.pending.iter().position(|p| {
            p.sender == d.sender
                && p.reference == c.reference
                && p.wide == c.wide
                && p.parts.len() == usize::from(c.total)
        });
        let idx = match pos {
            Some(i) => i,
            None => {
                if self.pending.len() >= self.max_pending {
                    self.pending.remove(0);
                }
                self.pending.push(Pending {
                    sender: d.sender.clone(),
                    reference: c.reference,
                    wide: c.wide,
                    parts: vec![None; usize::from(c.total)],
                });
                self.pending.len() - 1
            }
        };
        // `parse_udh` guarantees 1 <= seq <= total.
        self.pending[idx].parts[usize::from(c.seq) - 1] = Some(d);
        if self.pending[idx].parts.iter().any(Option::is_none) {
            return None;
        }
        let done = self.pending.remove(idx);
        let parts: Vec<Deliver> = done.parts.into_iter().flatten().collect();
        let binary = parts.iter().any(|p| matches!(p.body, Body::Binary(_)));
        let body = if binary {
            Body::Binary(
                parts
                    .iter()
                    .flat_map(|p| match &p.body {
                        Body::Binary(b) => b.clone(),
                        Body::Text(t) => t.as_bytes().to_vec(),
                    })
                    .collect(),
            )
        } else {
            Body::Text(
                parts
                    .iter()
                    .map(|p| match &p.body {
                        Body::Text(t) => t.as_str(),
                        Body::Binary(_) => "",
                    })
                    .collect(),
            )
        };
        Some(SmsMessage {
            sender: done.sender,
            timestamp: parts[0].timestamp,
            body,
            parts: c.total,
        })
    }
}
