//! The store writer: one thread with its own SQLite connection that writes registrar
//! changes through to disk, so fsyncs never stall the SIP task. Commands are applied
//! in order; on shutdown the queue is drained before the thread ends.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{error, warn};

use crate::registrar::Binding;
use crate::store::{self, AuditCtx, Store};

/// A change to write.
#[derive(Debug, Clone, PartialEq)]
pub enum PersistCmd {
    /// Insert or replace a binding.
    Save(store::Binding),
    /// Remove one binding.
    Delete {
        /// Address of record.
        aor: String,
        /// Contact URI as stored.
        contact: String,
    },
    /// Store an authentication block.
    Block {
        /// Blocked source.
        ip: IpAddr,
        /// Why.
        reason: String,
        /// When it started (Unix seconds).
        now_unix: i64,
        /// When it ends (Unix seconds).
        until: i64,
    },
    /// Write a finished call's record.
    CallRecord(Box<store::CallRecord>),
    /// A trunk's registration status (for `pbxctl trunk status`).
    TrunkStatus(Box<store::TrunkStatusRow>),
    /// Raise (with severity and message) or clear (`None`) the dashboard alert `key`.
    Alert {
        /// Alert key, e.g. `trunk:main:down`.
        key: String,
        /// Raise with this severity and message, or clear.
        raise: Option<(store::Severity, String)>,
        /// Unix seconds.
        now_unix: i64,
    },
    /// Remove bindings and blocks that lapsed while pbxd was not running.
    PurgeExpired {
        /// Unix seconds.
        now_unix: i64,
    },
}

impl PersistCmd {
    /// The store row for a registrar binding; `now`/`now_unix` map its monotonic expiry
    /// to wall-clock time.
    pub fn save(aor: &str, b: &Binding, now: Instant, now_unix: u64) -> Self {
        let left = b.expires_at.saturating_duration_since(now).as_secs();
        let expires_at = i64::try_from(now_unix.saturating_add(left)).unwrap_or(i64::MAX);
        PersistCmd::Save(store::Binding {
            aor: aor.to_owned(),
            contact: b.contact.clone(),
            instance: None,
            call_id: b.call_id.clone(),
            cseq: b.cseq,
            expires_at,
            transport: b.flow.transport.as_str().to_ascii_lowercase(),
            source: b.flow.remote,
            user_agent: b.user_agent.clone(),
            q_milli: b
                .q
                .as_deref()
                .and_then(|q| q.trim().parse::<f64>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .map(|q| (q * 1000.0).round() as u16),
        })
    }
}

/// Handle to the writer thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Persister {
    tx: mpsc::Sender<PersistCmd>,
}

impl Persister {
    /// Starts the writer on its own connection to the database in `data_dir`.
    pub fn start(data_dir: PathBuf) -> Result<(Self, JoinHandle<()>), store::StoreError> {
        let mut store = Store::open(&data_dir)?;
        let (tx, rx) = mpsc::channel::<PersistCmd>();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                // Take everything queued and write it in as few transactions as possible:
                // a registration burst costs one fsync per batch, not one per REGISTER.
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(cmd) => batch.push(cmd),
                            Err(_) => break,
                        }
                    }
                    apply_batch(&mut store, batch);
                }
            })
            .map_err(|e| store::StoreError::DataDir {
                path: data_dir,
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok((Self { tx }, handle))
    }

    /// Queues a change (never blocks the caller).
    pub fn send(&self, cmd: PersistCmd) {
        if self.tx.send(cmd).is_err() {
            error!("store writer is gone; change not persisted");
        }
    }
}

/// Most commands written in one transaction.
const MAX_BATCH: usize = 512;

fn apply_batch(store: &mut Store, batch: Vec<PersistCmd>) {
    let mut bindings = Vec::new();
    let mut records = Vec::new();
    for cmd in batch {
        match cmd {
            PersistCmd::Save(b) => bindings.push(store::BindingChange::Save(b)),
            PersistCmd::Delete { aor, contact } => {
                bindings.push(store::BindingChange::Delete { aor, contact })
            }
            // Records touch no other table: their order against the rest does not matter.
            PersistCmd::CallRecord(r) => records.push(*r),
            other => {
                // Keep the order: flush binding changes queued before this command.
                flush_bindings(store, &mut bindings);
                apply(store, other);
            }
        }
    }
    flush_bindings(store, &mut bindings);
    flush_records(store, &mut records);
}

/// Call records of a burst in one transaction.
fn flush_records(store: &mut Store, records: &mut Vec<store::CallRecord>) {
    if records.is_empty() {
        return;
    }
    let what = format!("{} call records", records.len());
    with_retry(&what, || {
        for (i, e) in store.insert_call_records(records)? {
            warn!(call_id = %records[i].call_id, "call record refused: {e}");
        }
        Ok(())
    });
    records.clear();
}

fn flush_bindings(store: &mut Store, changes: &mut Vec<store::BindingChange>) {
    if changes.is_empty() {
        return;
    }
    let what = format!("{} binding changes", changes.len());
    with_retry(&what, || store.apply_binding_changes(changes));
    changes.clear();
}

fn apply(store: &mut Store, cmd: PersistCmd) {
    with_retry("a change", || match &cmd {
        PersistCmd::Save(b) => store.save_binding(b),
        PersistCmd::Delete { aor, contact } => store.delete_binding(aor, contact).map(|_| ()),
        PersistCmd::Block {
            ip,
            reason,
            now_unix,
            until,
        } => {
            let by = AuditCtx {
                actor: "pbxd",
                source: "sip",
                now_unix: *now_unix,
            };
            store.add_block(&by, *ip, reason, *until)
        }
        PersistCmd::CallRecord(r) => store.insert_call_record(r).map(|_| ()),
        PersistCmd::TrunkStatus(row) => store.set_trunk_status(row),
        PersistCmd::Alert {
            key,
            raise,
            now_unix,
        } => match raise {
            Some((severity, message)) => store
                .raise_alert(key, *severity, message, *now_unix)
                .map(|_| ()),
            None => store.clear_alert(key, *now_unix).map(|_| ()),
        },
        PersistCmd::PurgeExpired { now_unix } => store
            .delete_expired(*now_unix)
            .and_then(|_| store.delete_expired_blocks(*now_unix))
            .map(|_| ()),
    });
}

/// Runs a write, retrying briefly: a locked database (pbxctl writing) usually clears
/// within milliseconds. A write that still fails is logged, never fatal.
fn with_retry(what: &str, mut write: impl FnMut() -> Result<(), store::StoreError>) {
    for attempt in 0..3 {
        match write() {
            Ok(()) => return,
            Err(e) if attempt < 2 => {
                warn!("storing {what} failed, retrying: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => error!("storing {what} failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(aor: &str, contact: &str, expires_at: i64) -> store::Binding {
        store::Binding {
            aor: aor.into(),
            contact: contact.into(),
            instance: None,
            call_id: "c".into(),
            cseq: 1,
            expires_at,
            transport: "udp".into(),
            source: "192.0.2.1:5060".parse().expect("addr"),
            user_agent: None,
            q_milli: None,
        }
    }

    #[test]
    fn queued_changes_are_written_in_order_and_drained_on_shutdown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (p, handle) = Persister::start(dir.path().to_path_buf()).expect("writer starts");
        for i in 0..300 {
            p.send(PersistCmd::Save(binding(
                &format!("{i}@pbx"),
                "sip:a@h",
                2_000_000_000,
            )));
        }
        // a delete after its save must win, even inside one batch
        p.send(PersistCmd::Delete {
            aor: "7@pbx".into(),
            contact: "sip:a@h".into(),
        });
        p.send(PersistCmd::Block {
            ip: "198.51.100.1".parse().expect("ip"),
            reason: "test".into(),
            now_unix: 1_000,
            until: 2_000_000_000,
        });
        p.send(PersistCmd::Save(binding("7@pbx", "sip:b@h", 2_000_000_000)));
        drop(p);
        handle.join().expect("writer ends after draining");
        let store = Store::open(dir.path()).expect("reopen");
        let all = store.load_bindings(1_000).expect("load");
        assert_eq!(all.len(), 300);
        let seven: Vec<_> = all.iter().filter(|b| b.aor == "7@pbx").collect();
        assert_eq!(seven.len(), 1);
        assert_eq!(seven[0].contact, "sip:b@h");
        assert_eq!(store.active_blocks(1_000).expect("blocks").len(), 1);
    }

    #[test]
    fn call_records_are_written_with_the_bindings_around_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (p, handle) = Persister::start(dir.path().to_path_buf()).expect("writer starts");
        for i in 0..200i64 {
            p.send(PersistCmd::CallRecord(Box::new(store::CallRecord {
                call_id: format!("c{i}"),
                caller: "1001".into(),
                caller_name: None,
                dialled: "1002".into(),
                normalised: None,
                destination: Some("1002".into()),
                direction: store::CallDirection::Internal,
                route: Some("internal".into()),
                source_ip: None,
                dest_ip: None,
                start_ms: 1_800_000_000_000 + i,
                answer_ms: None,
                end_ms: 1_800_000_000_500 + i,
                disposition: store::Disposition::Busy,
                reason: Some("486 Busy Here".into()),
                sip_status: Some(486),
                hangup: None,
                quality_caller: None,
                quality_callee: None,
                forwarded_by: None,
            })));
            if i == 100 {
                p.send(PersistCmd::Save(binding("1@pbx", "sip:a@h", 2_000_000_000)));
            }
        }
        drop(p);
        handle.join().expect("writer ends after draining");
        let store = Store::open(dir.path()).expect("reopen");
        let q = store::CdrQuery {
            limit: 1000,
            ..store::CdrQuery::default()
        };
        assert_eq!(store.call_records(&q).expect("records").len(), 200);
        assert_eq!(store.load_bindings(1_000).expect("load").len(), 1);
    }

    #[test]
    fn purge_removes_what_lapsed_while_pbxd_was_down() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut store = Store::open(dir.path()).expect("open");
            store
                .save_binding(&binding("1@pbx", "sip:old@h", 1_000))
                .expect("save");
            store
                .save_binding(&binding("2@pbx", "sip:new@h", 3_000))
                .expect("save");
            let by = AuditCtx {
                actor: "test",
                source: "test",
                now_unix: 500,
            };
            let ip = "198.51.100.2".parse().expect("ip");
            store.add_block(&by, ip, "old", 1_500).expect("block");
        }
        let (p, handle) = Persister::start(dir.path().to_path_buf()).expect("writer starts");
        p.send(PersistCmd::PurgeExpired { now_unix: 2_000 });
        drop(p);
        handle.join().expect("writer ends");
        let store = Store::open(dir.path()).expect("reopen");
        let left: Vec<_> = store
            .load_bindings(0)
            .expect("load")
            .into_iter()
            .map(|b| b.contact)
            .collect();
        assert_eq!(left, vec!["sip:new@h".to_owned()]);
        assert!(store.active_blocks(0).expect("blocks").is_empty());
    }
}
