//! Many transactions of one transport, keyed and matched.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Instant;

use super::{
    ClientInvite, ClientNonInvite, Reliability, ServerInvite, ServerNonInvite, State, TimerConfig,
    Transaction, TransactionError, TransactionEvent, TransactionInput, TransactionKey,
    TransactionOutput,
};
use crate::message::{Message, Method};

/// Where [`Transactions::handle_message`] put a received message.
// The common variants are small, but a stray message is handed back whole; boxing it
// would add an allocation on that path for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Dispatch {
    /// Fed to the existing transaction with this key.
    Matched(TransactionKey),
    /// A new server transaction was created; its first output hands the request to
    /// the TU.
    Created(TransactionKey),
    /// Matches no transaction and starts none: an ACK for a 2xx (a new branch, sec.
    /// 17.1.1.3), or a response no client transaction knows, such as a 2xx
    /// retransmission after Timer M. Given back for the TU to handle (sec. 17.1.3).
    Stray(Message),
}

/// A live transaction and the deadline index entry that is current for it.
#[derive(Debug)]
struct Slot {
    tx: Transaction,
    /// `(deadline, seq)` of this transaction's live heap entry; `None` when no timer
    /// is armed (or its entry was just popped by `handle_timeout`).
    armed: Option<(Instant, u64)>,
}

/// One entry of the deadline index. Ordered by `(at, seq)` only; `seq` is unique,
/// so the key never takes part in the comparison.
#[derive(Debug)]
struct Deadline {
    at: Instant,
    seq: u64,
    key: TransactionKey,
}

impl PartialEq for Deadline {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Deadline {}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The transactions of one transport: creates them, matches messages to them, and
/// aggregates their outputs and timers. Terminated transactions are dropped as soon
/// as their last output is queued.
///
/// Timers are indexed by a min-heap of deadlines with lazy deletion, so
/// `poll_timeout` is O(1) and `handle_timeout` touches only due transactions: a UDP
/// registration burst keeps tens of thousands of transactions alive (Timer J, 32 s)
/// and the daemon polls after every packet.
#[derive(Debug)]
pub struct Transactions {
    cfg: TimerConfig,
    reliability: Reliability,
    map: HashMap<TransactionKey, Slot>,
    out: VecDeque<(TransactionKey, TransactionOutput)>,
    /// Invariant after every public `&mut self` method: the top entry, if any, is
    /// current (see [`Transactions::is_current`]), and every live transaction with an
    /// armed timer has its current entry in the heap. Stale entries below the top are
    /// skipped when they surface, or dropped by compaction.
    heap: BinaryHeap<Reverse<Deadline>>,
    /// Source of unique entry ids, so a re-armed transaction's old entries are stale.
    next_seq: u64,
}

impl Transactions {
    /// An empty table for a transport of the given reliability.
    pub fn new(cfg: TimerConfig, reliability: Reliability) -> Self {
        Transactions {
            cfg,
            reliability,
            map: HashMap::new(),
            out: VecDeque::new(),
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    /// Starts a client transaction for our `request` (INVITE or non-INVITE); its first
    /// output transmits the request.
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Message,
    ) -> Result<TransactionKey, TransactionError> {
        let key = TransactionKey::for_client_request(&request)?;
        if self.map.contains_key(&key) {
            return Err(TransactionError::Duplicate);
        }
        let tx = if request.method() == Some(&Method::Invite) {
            Transaction::ClientInvite(Box::new(ClientInvite::new(
                request,
                self.cfg,
                self.reliability,
                now,
            )?))
        } else {
            Transaction::ClientNonInvite(Box::new(ClientNonInvite::new(
                request,
                self.cfg,
                self.reliability,
                now,
            )?))
        };
        self.insert(key.clone(), tx);
        Ok(key)
    }

    /// Matches a message from the transport: responses to client transactions,
    /// requests to server transactions (creating one for a new request).
    pub fn handle_message(
        &mut self,
        now: Instant,
        msg: Message,
    ) -> Result<Dispatch, TransactionError> {
        if !msg.is_request() {
            let key = TransactionKey::for_response(&msg)?;
            if !self.map.contains_key(&key) {
                return Ok(Dispatch::Stray(msg));
            }
            self.feed(now, &key, TransactionInput::Received(msg));
            return Ok(Dispatch::Matched(key));
        }
        let key = TransactionKey::for_request(&msg)?;
        if self.map.contains_key(&key) {
            self.feed(now, &key, TransactionInput::Received(msg));
            return Ok(Dispatch::Matched(key));
        }
        if msg.method() == Some(&Method::Ack) {
            if let Some(alt) = self.rfc2543_ack_match(&key, &msg) {
                self.feed(now, &alt, TransactionInput::Received(msg));
                return Ok(Dispatch::Matched(alt));
            }
            return Ok(Dispatch::Stray(msg));
        }
        let tx = if msg.method() == Some(&Method::Invite) {
            Transaction::ServerInvite(Box::new(ServerInvite::new(
                msg,
                self.cfg,
                self.reliability,
                now,
            )?))
        } else {
            Transaction::ServerNonInvite(Box::new(ServerNonInvite::new(
                msg,
                self.cfg,
                self.reliability,
                now,
            )?))
        };
        self.insert(key.clone(), tx);
        Ok(Dispatch::Created(key))
    }

    /// An RFC 2543 ACK carries the To tag of our response, which the INVITE (outside
    /// a dialog) did not have: find the INVITE by the key without the tag, then check
    /// the tag against the response sent (sec. 17.2.3).
    fn rfc2543_ack_match(&self, key: &TransactionKey, ack: &Message) -> Option<TransactionKey> {
        let TransactionKey::ServerRfc2543 { to_tag, .. } = key else {
            return None;
        };
        let ack_tag = to_tag.as_deref()?;
        let mut alt = key.clone();
        if let TransactionKey::ServerRfc2543 { to_tag, .. } = &mut alt {
            *to_tag = None;
        }
        let Some(Transaction::ServerInvite(tx)) = self.map.get(&alt).map(|s| &s.tx) else {
            return None;
        };
        let sent_tag = tx.last_response()?.to_header().ok()?;
        let ack_to = ack.to_header().ok()?;
        (sent_tag.tag() == Some(ack_tag) && ack_to.tag() == Some(ack_tag)).then_some(alt)
    }

    /// Passes the TU's response to the server transaction `key`.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: Message,
    ) -> Result<(), TransactionError> {
        if response.is_request() {
            return Err(TransactionError::WrongKind {
                expected: "response",
            });
        }
        if !self.map.contains_key(key) {
            return Err(TransactionError::NoSuchTransaction);
        }
        self.feed(now, key, TransactionInput::Send(response));
        Ok(())
    }

    /// Ends transaction `key` at once because its TU gave up on it, e.g. an INVITE
    /// whose CANCEL brought no final response within 64*T1 (sec. 9.1), which would
    /// otherwise stay in Proceeding forever. Emits `Terminated` like any other end.
    pub fn abandon(&mut self, key: &TransactionKey) {
        if self.map.remove(key).is_some() {
            self.out.push_back((
                key.clone(),
                TransactionOutput::Event(TransactionEvent::Terminated),
            ));
            self.settle();
        }
    }

    /// Reports that the transport failed to send for transaction `key`.
    pub fn handle_transport_error(&mut self, now: Instant, key: &TransactionKey) {
        self.feed(now, key, TransactionInput::TransportError);
    }

    /// Fires every timer due at `now`; early or repeated calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Collect first, then feed: like a scan, each due transaction is fed once per
        // call, even if its handler re-arms a timer at `now` (zero linger on reliable
        // transports); that one fires on the next call.
        let mut due = Vec::new();
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.at > now {
                break;
            }
            let Some(Reverse(entry)) = self.heap.pop() else {
                break;
            };
            if self.is_current(&entry) {
                if let Some(slot) = self.map.get_mut(&entry.key) {
                    slot.armed = None;
                }
                due.push(entry.key);
            }
        }
        for key in due {
            self.feed(now, &key, TransactionInput::Timeout);
        }
        self.settle();
    }

    /// The next output, with the key of the transaction it comes from.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<(TransactionKey, TransactionOutput)> {
        self.out.pop_front()
    }

    /// The earliest timer of any transaction.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        // The top is current by the heap invariant.
        self.heap.peek().map(|Reverse(d)| d.at)
    }

    /// The live transaction with this key.
    pub fn get(&self, key: &TransactionKey) -> Option<&Transaction> {
        self.map.get(key).map(|s| &s.tx)
    }

    /// For a received CANCEL's key: the key of the live INVITE server transaction it
    /// cancels (sec. 9.2), if any.
    pub fn invite_for_cancel(&self, cancel: &TransactionKey) -> Option<TransactionKey> {
        let invite = cancel.cancelled_invite()?;
        self.map.contains_key(&invite).then_some(invite)
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn insert(&mut self, key: TransactionKey, tx: Transaction) {
        self.map.insert(key.clone(), Slot { tx, armed: None });
        self.drain(&key);
    }

    fn feed(&mut self, now: Instant, key: &TransactionKey, input: TransactionInput) {
        if let Some(slot) = self.map.get_mut(key) {
            slot.tx.handle(now, input);
            self.drain(key);
        }
    }

    /// Queues the transaction's outputs, drops it if terminated, else re-indexes its
    /// deadline; then restores the heap invariant.
    fn drain(&mut self, key: &TransactionKey) {
        let Some(slot) = self.map.get_mut(key) else {
            return;
        };
        while let Some(o) = slot.tx.poll_output() {
            self.out.push_back((key.clone(), o));
        }
        if slot.tx.state() == State::Terminated {
            // Its heap entry, if any, is now stale.
            self.map.remove(key);
        } else {
            let at = slot.tx.poll_timeout();
            if at != slot.armed.map(|(at, _)| at) {
                slot.armed = at.map(|at| {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.heap.push(Reverse(Deadline {
                        at,
                        seq,
                        key: key.clone(),
                    }));
                    (at, seq)
                });
            }
        }
        self.settle();
    }

    /// Whether `entry` is the live index entry of a live transaction.
    fn is_current(&self, entry: &Deadline) -> bool {
        self.map
            .get(&entry.key)
            .is_some_and(|s| s.armed.is_some_and(|(_, seq)| seq == entry.seq))
    }

    /// Restores the heap invariant (current top) and compacts the heap when stale
    /// entries dominate, which keeps its size O(live transactions).
    fn settle(&mut self) {
        if self.heap.len() > 2 * self.map.len() + 64 {
            let mut entries = std::mem::take(&mut self.heap).into_vec();
            entries.retain(|Reverse(e)| self.is_current(e));
            self.heap = BinaryHeap::from(entries);
        }
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.is_current(top) {
                break;
            }
            self.heap.pop();
        }
    }

    /// Entries in the deadline index, current and stale (for tests).
    #[cfg(test)]
    pub(crate) fn index_len(&self) -> usize {
        self.heap.len()
    }
}
