//! The GSM/LTE module's settings, its last status, and the SMS in- and outbox.
//!
//! `pbxctl` and the web UI write settings and queue SMS; the daemon's modem task reads the
//! settings, sends what is queued and writes the status and what arrives. The PIN and PUK
//! are stored only sealed (see [`crate::secret`]); this module never sees them in clear.

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// When calls go out over the GSM module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundPolicy {
    /// Never (emergency calls still may).
    Off,
    /// Numbers dialled with the GSM prefix.
    Prefix,
    /// Prefix, and every external call while the cloud trunk is down.
    Fallback,
    /// Every external call.
    All,
}

impl OutboundPolicy {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundPolicy::Off => "off",
            OutboundPolicy::Prefix => "prefix",
            OutboundPolicy::Fallback => "fallback",
            OutboundPolicy::All => "all",
        }
    }

    /// Parse the stored (or typed) name.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "off" => Ok(OutboundPolicy::Off),
            "prefix" => Ok(OutboundPolicy::Prefix),
            "fallback" => Ok(OutboundPolicy::Fallback),
            "all" => Ok(OutboundPolicy::All),
            other => Err(StoreError::InvalidValue {
                what: "GSM outbound policy",
                reason: format!("{other:?}: use off, prefix, fallback or all"),
            }),
        }
    }
}

/// How many SMS may be sent: no automated bulk sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsLimits {
    /// At most this many in any 60 seconds.
    pub per_minute: u32,
    /// At most this many in any 24 hours.
    pub per_day: u32,
}

/// The module's settings (one row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GsmSettings {
    /// The SIM PIN, sealed for purpose "sim-pin".
    pub pin_sealed: Option<String>,
    /// The SIM rejected the stored PIN: it is never sent again.
    pub pin_rejected: bool,
    /// The admin allowed the PIN to use the SIM's last attempt.
    pub pin_last_attempt_ok: bool,
    /// The PUK, sealed for purpose "sim-puk".
    pub puk_sealed: Option<String>,
    /// The PIN to set with the PUK, sealed for purpose "sim-pin".
    pub puk_new_pin_sealed: Option<String>,
    /// The SIM rejected the stored PUK: it is never sent again.
    pub puk_rejected: bool,
    /// Unix seconds when the installer confirmed the SIM's terms allow gateway use.
    pub gateway_confirmed_at: Option<i64>,
    /// Internal number inbound GSM calls ring (extension, ring group, analog port).
    pub inbound_destination: Option<String>,
    /// Outside-line prefix that sends a call over GSM (e.g. "88").
    pub outbound_prefix: Option<String>,
    /// When calls go out over GSM.
    pub outbound_policy: OutboundPolicy,
    /// Mobile numbers go out over the module (while it can take a call).
    pub outbound_mobile: bool,
    /// Days SMS are kept.
    pub sms_retention_days: u32,
    /// Sending limits.
    pub sms_limits: SmsLimits,
}

/// The module's status as the daemon last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GsmStatusRow {
    /// SIM state ("ready", "PIN needed", "no SIM", ...).
    pub sim: String,
    /// Registration ("home", "roaming", "searching", ...).
    pub registration: String,
    /// Operator name.
    pub operator: Option<String>,
    /// Signal in dBm.
    pub signal_dbm: Option<i16>,
    /// PIN attempts left, if known.
    pub pin_left: Option<u8>,
    /// PUK attempts left, if known.
    pub puk_left: Option<u8>,
    /// The last problem, for the installer.
    pub last_error: Option<String>,
    /// Unix seconds of this status.
    pub updated_at: i64,
}

/// Received or sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsDirection {
    /// Received from the mobile network.
    In,
    /// Sent from the box.
    Out,
}

/// Where an SMS is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsStatus {
    /// In the inbox.
    Received,
    /// Waiting for the modem.
    Queued,
    /// Handed to the modem.
    Sending,
    /// Every part accepted by the network.
    Sent,
    /// Not (completely) sent; see the error.
    Failed,
}

impl SmsStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsStatus::Received => "received",
            SmsStatus::Queued => "queued",
            SmsStatus::Sending => "sending",
            SmsStatus::Sent => "sent",
            SmsStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "received" => SmsStatus::Received,
            "queued" => SmsStatus::Queued,
            "sending" => SmsStatus::Sending,
            "sent" => SmsStatus::Sent,
            "failed" => SmsStatus::Failed,
            other => {
                return Err(StoreError::BadValue {
                    what: "sms.status",
                    detail: other.to_owned(),
                })
            }
        })
    }
}

/// One SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    /// Row id.
    pub id: i64,
    /// In or out.
    pub direction: SmsDirection,
    /// The other side's number (or alphanumeric sender).
    pub peer: String,
    /// Unix seconds: received, or queued.
    pub at: i64,
    /// The text.
    pub text: String,
    /// Parts it came or went in.
    pub parts: u32,
    /// Whether someone read it (inbox).
    pub read: bool,
    /// Where it is.
    pub status: SmsStatus,
    /// Why sending failed.
    pub error: Option<String>,
}

const SMS_COLUMNS: &str = "id, direction, peer, at, text, parts, read, status, error";

fn row_to_sms(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Sms, String)> {
    let dir: String = row.get(1)?;
    Ok((
        Sms {
            id: row.get(0)?,
            direction: if dir == "in" {
                SmsDirection::In
            } else {
                SmsDirection::Out
            },
            peer: row.get(2)?,
            at: row.get(3)?,
            text: row.get(4)?,
            parts: row.get(5)?,
            read: row.get(6)?,
            status: SmsStatus::Received,
            error: row.get(8)?,
        },
        row.get(7)?,
    ))
}

fn finish_rows(rows: Vec<(Sms, String)>) -> Result<Vec<Sms>, StoreError> {
    rows.into_iter()
        .map(|(mut s, st)| {
            s.status = SmsStatus::parse(&st)?;
            Ok(s)
        })
        .collect()
}

/// An internal number GSM calls may ring: 2 to 6 digits.
pub fn validate_inbound_destination(n: &str) -> Result<(), StoreError> {
    if (2..=6).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(StoreError::InvalidValue {
            what: "GSM inbound destination",
            reason: format!(
                "{n:?}: an extension, ring group or analog port number (2 to 6 digits)"
            ),
        })
    }
}

/// A GSM outside-line prefix: 1 to 4 of `0-9 * #`.
pub fn validate_outbound_prefix(p: &str) -> Result<(), StoreError> {
    if (1..=4).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
    {
        Ok(())
    } else {
        Err(StoreError::InvalidValue {
            what: "GSM outbound prefix",
            reason: format!("{p:?}: 1 to 4 of 0-9, * and #"),
        })
    }
}

impl Store {
    /// The module's settings.
    pub fn gsm_settings(&self) -> Result<GsmSettings, StoreError> {
        let (s, policy) = self.conn.query_row(
            "SELECT pin_sealed, pin_rejected, pin_last_attempt_ok, puk_sealed,
                    puk_new_pin_sealed, puk_rejected, gateway_confirmed_at, inbound_destination,
                    outbound_prefix, outbound_policy, sms_retention_days, sms_per_minute,
                    sms_per_day, outbound_mobile
             FROM gsm_settings WHERE id = 1",
            [],
            |r| {
                Ok((
                    GsmSettings {
                        pin_sealed: r.get(0)?,
                        pin_rejected: r.get(1)?,
                        pin_last_attempt_ok: r.get(2)?,
                        puk_sealed: r.get(3)?,
                        puk_new_pin_sealed: r.get(4)?,
                        puk_rejected: r.get(5)?,
                        gateway_confirmed_at: r.get(6)?,
                        inbound_destination: r.get(7)?,
                        outbound_prefix: r.get(8)?,
                        outbound_policy: OutboundPolicy::Off,
                        outbound_mobile: r.get(13)?,
                        sms_retention_days: r.get(10)?,
                        sms_limits: SmsLimits {
                            per_minute: r.get(11)?,
                            per_day: r.get(12)?,
                        },
                    },
                    r.get::<_, String>(9)?,
                ))
            },
        )?;
        Ok(GsmSettings {
            outbound_policy: OutboundPolicy::parse(&policy)?,
            ..s
        })
    }

    /// Stores a new (sealed) PIN; it will be tried once, at the next SIM PIN request.
    pub fn set_gsm_pin(
        &mut self,
        pin_sealed: &str,
        last_attempt_ok: bool,
        now_unix: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE gsm_settings SET pin_sealed = ?1, pin_rejected = 0, pin_last_attempt_ok = ?2,
                 updated_at = ?3 WHERE id = 1",
            params![pin_sealed, last_attempt_ok, now_unix],
        )?;
        Ok(())
    }

    /// The SIM rejected the stored PIN: never send it again.
    pub fn mark_gsm_pin_rejected(&mut self, now_unix: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE gsm_settings SET pin_rejected = 1, pin_last_attempt_ok = 0, updated_at = ?1
             WHERE id = 1",
            [now_unix],
        )?;
        Ok(())
    }

    /// Stores a (sealed) PUK and the PIN to set with it.
    pub fn set_gsm_puk(
        &mut self,
        puk_sealed: &str,
        new_pin_sealed: &str,
        now_unix: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE gsm_settings SET puk_sealed = ?1, puk_new_pin_sealed = ?2, puk_rejected = 0,
                 updated_at = ?3 WHERE id = 1",
            params![puk_sealed, new_pin_sealed, now_unix],
        )?;
        Ok(())
    }

    /// The SIM rejected the stored PUK: never send it again.
    pub fn mark_gsm_puk_rejected(&mut self, now_unix: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE gsm_settings SET puk_rejected = 1, updated_at = ?1 WHERE id = 1",
            [now_unix],
        )?;
        Ok(())
    }

    /// The SIM took the PUK: the new PIN is now the SIM's PIN; the PUK is forgotten.
    pub fn gsm_puk_accepted(&mut self, now_unix: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE gsm_settings SET pin_sealed = puk_new_pin_sealed, pin_rejected = 0,
                 pin_last_attempt_ok = 0, puk_sealed = NULL, puk_new_pin_sealed = NULL,
                 puk_rejected = 0, updated_at = ?1 WHERE id = 1",
            [now_unix],
        )?;
        Ok(())
    }

    /// The installer confirms the SIM's terms allow use in a gateway.
    pub fn confirm_gsm_gateway_use(&mut self, now_unix: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE gsm_settings SET gateway_confirmed_at = ?1, updated_at = ?1 WHERE id = 1",
            [now_unix],
        )?;
        Ok(())
    }

    /// Sets call routing over the module.
    pub fn set_gsm_routing(
        &mut self,
        inbound_destination: Option<&str>,
        outbound_prefix: Option<&str>,
        policy: OutboundPolicy,
        now_unix: i64,
    ) -> Result<(), StoreError> {
        if let Some(d) = inbound_destination {
            validate_inbound_destination(d)?;
        }
        if let Some(p) = outbound_prefix {
            validate_outbound_prefix(p)?;
        }
        if policy == OutboundPolicy::Prefix && outbound_prefix.is_none() {
            return Err(StoreError::InvalidValue {
                what: "GSM outbound policy",
                reason: "policy prefix needs a prefix".into(),
            });
        }
        self.conn.execute(
            "UPDATE gsm_settings SET inbound_destination = ?1, outbound_prefix = ?2,
                 outbound_policy = ?3, updated_at = ?4 WHERE id = 1",
            params![
                inbound_destination,
                outbound_prefix,
                policy.as_str(),
                now_unix
            ],
        )?;
        Ok(())
    }

    /// Sets only where inbound GSM calls ring; the outbound settings stay as stored
    /// (the default `prefix` policy without a prefix included: it routes nothing).
    pub fn set_gsm_inbound(
        &mut self,
        inbound_destination: Option<&str>,
        now_unix: i64,
    ) -> Result<(), StoreError> {
        if let Some(d) = inbound_destination {
            validate_inbound_destination(d)?;
        }
        self.conn.execute(
            "UPDATE gsm_settings SET inbound_destination = ?1, updated_at = ?2 WHERE id = 1",
            params![inbound_destination, now_unix],
        )?;
        Ok(())
    }

    /// Sends mobile numbers over the module, or not.
    pub fn set_gsm_mobile_route(&mut self, on: bool, now_unix: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE gsm_settings SET outbound_mobile = ?1, updated_at = ?2 WHERE id = 1",
            params![on, now_unix],
        )?;
        Ok(())
    }

    /// Sets SMS retention and sending limits.
    pub fn set_sms_limits(
        &mut self,
        retention_days: u32,
        limits: SmsLimits,
        now_unix: i64,
    ) -> Result<(), StoreError> {
        let bad = |what, reason: &str| StoreError::InvalidValue {
            what,
            reason: reason.to_owned(),
        };
        if !(1..=3650).contains(&retention_days) {
            return Err(bad("SMS retention", "1 to 3650 days"));
        }
        if !(1..=60).contains(&limits.per_minute) || !(1..=1000).contains(&limits.per_day) {
            return Err(bad("SMS limits", "1 to 60 per minute, 1 to 1000 per day"));
        }
        self.conn.execute(
            "UPDATE gsm_settings SET sms_retention_days = ?1, sms_per_minute = ?2,
                 sms_per_day = ?3, updated_at = ?4 WHERE id = 1",
            params![retention_days, limits.per_minute, limits.per_day, now_unix],
        )?;
        Ok(())
    }

    /// Records the module's status.
    pub fn write_gsm_status(&mut self, s: &GsmStatusRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO gsm_status (id, sim, registration, operator, signal_dbm, pin_left,
                 puk_left, last_error, updated_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET sim = ?1, registration = ?2, operator = ?3,
                 signal_dbm = ?4, pin_left = ?5, puk_left = ?6, last_error = ?7,
                 updated_at = ?8",
            params![
                s.sim,
                s.registration,
                s.operator,
                s.signal_dbm,
                s.pin_left,
                s.puk_left,
                s.last_error,
                s.updated_at
            ],
        )?;
        Ok(())
    }

    /// The module's last recorded status (`None` before the modem task first ran).
    pub fn gsm_status(&self) -> Result<Option<GsmStatusRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT sim, registration, operator, signal_dbm, pin_left, puk_left, last_error,
                        updated_at
                 FROM gsm_status WHERE id = 1",
                [],
                |r| {
                    Ok(GsmStatusRow {
                        sim: r.get(0)?,
                        registration: r.get(1)?,
                        operator: r.get(2)?,
                        signal_dbm: r.get(3)?,
                        pin_left: r.get(4)?,
                        puk_left: r.get(5)?,
                        last_error: r.get(6)?,
                        updated_at: r.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    /// Queues an SMS for the modem after the rate limits: at most `per_minute` in the last
    /// 60 s and `per_day` in the last 24 h (every outgoing SMS counts, failed ones too).
    /// `parts` is what the text encodes to; the caller checked it can be encoded.
    pub fn queue_sms(
        &mut self,
        peer: &str,
        text: &str,
        parts: u32,
        created_by: &str,
        now_unix: i64,
    ) -> Result<i64, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (per_minute, per_day): (u32, u32) = tx.query_row(
            "SELECT sms_per_minute, sms_per_day FROM gsm_settings WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let count = |since: i64| -> Result<u32, StoreError> {
            Ok(tx.query_row(
                "SELECT count(*) FROM sms WHERE direction = 'out' AND at > ?1",
                [since],
                |r| r.get(0),
            )?)
        };
        if count(now_unix - 60)? >= per_minute {
            return Err(StoreError::InvalidValue {
                what: "SMS",
                reason: format!(
                    "rate limit: at most {per_minute} SMS per minute (no bulk sending); try again later"
                ),
            });
        }
        if count(now_unix - 86_400)? >= per_day {
            return Err(StoreError::InvalidValue {
                what: "SMS",
                reason: format!("rate limit: at most {per_day} SMS per day (no bulk sending)"),
            });
        }
        tx.execute(
            "INSERT INTO sms (direction, peer, at, text, parts, read, status, created_by)
             VALUES ('out', ?1, ?2, ?3, ?4, 1, 'queued', ?5)",
            params![peer, now_unix, text, parts, created_by],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    /// The oldest queued SMS, now marked as sending.
    pub fn take_queued_sms(&mut self) -> Result<Option<Sms>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let row = tx
            .query_row(
                &format!(
                    "SELECT {SMS_COLUMNS} FROM sms WHERE status = 'queued' ORDER BY id LIMIT 1"
                ),
                [],
                row_to_sms,
            )
            .optional()?;
        let Some(mut sms) = finish_rows(row.into_iter().collect())?.pop() else {
            return Ok(None);
        };
        tx.execute("UPDATE sms SET status = 'sending' WHERE id = ?1", [sms.id])?;
        tx.commit()?;
        sms.status = SmsStatus::Sending;
        Ok(Some(sms))
    }

    /// Records how sending ended.
    pub fn finish_sms(&mut self, id: i64, result: Result<(), &str>) -> Result<(), StoreError> {
        let (status, error) = match result {
            Ok(()) => (SmsStatus::Sent, None),
            Err(e) => (SmsStatus::Failed, Some(e)),
        };
        self.conn.execute(
            "UPDATE sms SET status = ?2, error = ?3 WHERE id = ?1",
            params![id, status.as_str(), error],
        )?;
        Ok(())
    }

    /// SMS left as "sending" by a daemon that stopped mid-send are failed (some parts may
    /// have gone out; sending them again could duplicate them). Returns how many.
    pub fn fail_interrupted_sms(&mut self) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE sms SET status = 'failed', error = 'interrupted by a restart; send again'
             WHERE status = 'sending'",
            [],
        )?)
    }

    /// Puts a received SMS in the inbox.
    pub fn insert_received_sms(
        &mut self,
        peer: &str,
        text: &str,
        parts: u32,
        at_unix: i64,
    ) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO sms (direction, peer, at, text, parts, read, status)
             VALUES ('in', ?1, ?2, ?3, ?4, 0, 'received')",
            params![peer, at_unix, text, parts],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// SMS, newest first.
    pub fn list_sms(&self, limit: u32) -> Result<Vec<Sms>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SMS_COLUMNS} FROM sms ORDER BY at DESC, id DESC LIMIT ?1"
        ))?;
        let rows = stmt
            .query_map([limit], row_to_sms)?
            .collect::<Result<Vec<_>, _>>()?;
        finish_rows(rows)
    }

    /// One SMS.
    pub fn get_sms(&self, id: i64) -> Result<Option<Sms>, StoreError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {SMS_COLUMNS} FROM sms WHERE id = ?1"),
                [id],
                row_to_sms,
            )
            .optional()?;
        Ok(finish_rows(row.into_iter().collect())?.pop())
    }

    /// Marks an SMS read; returns whether it exists.
    pub fn mark_sms_read(&mut self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("UPDATE sms SET read = 1 WHERE id = ?1", [id])?
            > 0)
    }

    /// Deletes SMS older than the retention (not ones still waiting to be sent).
    pub fn purge_sms(&mut self, now_unix: i64) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM sms WHERE status NOT IN ('queued', 'sending')
               AND at < ?1 - 86400 * (SELECT sms_retention_days FROM gsm_settings WHERE id = 1)",
            [now_unix],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn pin_rejection_and_puk_acceptance_are_kept() {
        let (_d, mut s) = store();
        let g = s.gsm_settings().unwrap();
        assert_eq!(g.pin_sealed, None);
        assert_eq!(g.outbound_policy, OutboundPolicy::Prefix);
        assert_eq!(g.sms_retention_days, 30);
        s.set_gsm_pin("sealed-a", false, 10).unwrap();
        s.mark_gsm_pin_rejected(11).unwrap();
        let g = s.gsm_settings().unwrap();
        assert!(g.pin_rejected);
        assert_eq!(g.pin_sealed.as_deref(), Some("sealed-a"));
        s.set_gsm_puk("sealed-puk", "sealed-b", 12).unwrap();
        s.gsm_puk_accepted(13).unwrap();
        let g = s.gsm_settings().unwrap();
        assert_eq!(
            (g.pin_sealed.as_deref(), g.pin_rejected, g.puk_sealed),
            (Some("sealed-b"), false, None)
        );
    }

    #[test]
    fn sms_sending_is_rate_limited_per_minute_and_day() {
        let (_d, mut s) = store();
        s.set_sms_limits(
            30,
            SmsLimits {
                per_minute: 2,
                per_day: 3,
            },
            0,
        )
        .unwrap();
        let t = 1_000_000;
        s.queue_sms("+491701", "a", 1, "t", t).unwrap();
        s.queue_sms("+491701", "b", 1, "t", t).unwrap();
        let e = s.queue_sms("+491701", "c", 1, "t", t + 10).unwrap_err();
        assert!(e.to_string().contains("at most 2 SMS per minute"), "{e}");
        s.queue_sms("+491701", "c", 1, "t", t + 61).unwrap();
        let e = s.queue_sms("+491701", "d", 1, "t", t + 200).unwrap_err();
        assert!(e.to_string().contains("at most 3 SMS per day"), "{e}");
        s.queue_sms("+491701", "d", 1, "t", t + 86_401).unwrap();
    }

    #[test]
    fn outbox_inbox_and_retention() {
        let (_d, mut s) = store();
        let day = 86_400;
        let id = s.queue_sms("+491701", "hello", 1, "t", 100 * day).unwrap();
        let taken = s.take_queued_sms().unwrap().unwrap();
        assert_eq!((taken.id, taken.status), (id, SmsStatus::Sending));
        assert_eq!(s.take_queued_sms().unwrap(), None);
        s.finish_sms(id, Err("+CMS ERROR: 500")).unwrap();
        let got = s.get_sms(id).unwrap().unwrap();
        assert_eq!(got.status, SmsStatus::Failed);
        assert_eq!(got.error.as_deref(), Some("+CMS ERROR: 500"));
        let old = s.insert_received_sms("+4930", "old", 1, 90 * day).unwrap();
        let new = s.insert_received_sms("+4930", "new", 2, 110 * day).unwrap();
        assert!(s.mark_sms_read(new).unwrap());
        assert_eq!(s.purge_sms(125 * day).unwrap(), 1);
        assert_eq!(s.get_sms(old).unwrap(), None);
        let list = s.list_sms(10).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].read && list[0].direction == SmsDirection::In);
    }

    #[test]
    fn routing_values_are_checked() {
        let (_d, mut s) = store();
        assert!(s
            .set_gsm_routing(Some("1"), None, OutboundPolicy::Off, 0)
            .is_err());
        assert!(s
            .set_gsm_routing(None, None, OutboundPolicy::Prefix, 0)
            .is_err());
        assert!(s
            .set_gsm_routing(Some("21"), Some("0x"), OutboundPolicy::Prefix, 0)
            .is_err());
        s.set_gsm_routing(Some("21"), Some("88"), OutboundPolicy::Fallback, 0)
            .unwrap();
        let g = s.gsm_settings().unwrap();
        assert_eq!(g.inbound_destination.as_deref(), Some("21"));
        assert_eq!(g.outbound_policy, OutboundPolicy::Fallback);
        assert!(!g.outbound_mobile);
        s.set_gsm_mobile_route(true, 3).unwrap();
        assert!(s.gsm_settings().unwrap().outbound_mobile);
        assert_eq!(g.outbound_policy, OutboundPolicy::Fallback);
    }
}
