//! Analog port settings (`pbxctl port set`) and the ports' live status, which pbxd writes
//! on change for `pbxctl ports` (the same way as `trunk_status` and `gsm_status`).

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

use super::{audit, validate_name, validate_number, AuditCtx, Store, StoreError};
use crate::line::ports_config::CidMode;
use crate::line::Country;

/// Highest port number the store accepts.
pub const MAX_PORTS: u32 = 64;

/// One port's settings; `None` fields take the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSettings {
    /// Port number, 1-based.
    pub port: u32,
    /// The extension number (default: the daemon's `--port-extensions`).
    pub number: Option<String>,
    /// Display name, shown as caller ID name when the port calls.
    pub name: Option<String>,
    /// Country override (default DE).
    pub country: Option<Country>,
    /// Caller-ID mode (default: the country's).
    pub cid: Option<CidMode>,
    /// Call waiting on (default) or off.
    pub call_waiting: bool,
}

impl PortSettings {
    /// All defaults for `port`.
    #[must_use]
    pub fn new(port: u32) -> Self {
        PortSettings {
            port,
            number: None,
            name: None,
            country: None,
            cid: None,
            call_waiting: true,
        }
    }
}

/// A port's live state as pbxd last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatusRow {
    /// Port number, 1-based.
    pub port: u32,
    /// The extension number in use.
    pub number: String,
    /// `on`, `off`.
    pub hook: String,
    /// `open`, `forward`, `reverse`, `on-hook-tx`, `ringing`.
    pub linefeed: String,
    /// `idle`, `dialling`, `ringing`, `connected`, ...
    pub call: String,
    /// Why the port is out of service, if it is.
    pub faulty: Option<String>,
    /// When pbxd wrote it, Unix seconds.
    pub updated_at: i64,
}

fn bad_port(port: u32) -> StoreError {
    StoreError::InvalidValue {
        what: "port",
        reason: format!("{port} is not a port number (1 to {MAX_PORTS})"),
    }
}

/// A `ports` row as stored: port, number, name, country, cid_mode, call_waiting.
type SettingsRow = (
    u32,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

fn settings_row(row: &Row<'_>) -> rusqlite::Result<SettingsRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn to_settings(
    (port, number, name, country, cid, call_waiting): SettingsRow,
) -> Result<PortSettings, StoreError> {
    let country = country
        .map(|c| c.parse::<Country>())
        .transpose()
        .map_err(|e| StoreError::BadValue {
            what: "ports.country",
            detail: e.to_string(),
        })?;
    let cid = cid
        .map(|c| c.parse::<CidMode>())
        .transpose()
        .map_err(|e| StoreError::BadValue {
            what: "ports.cid_mode",
            detail: e.to_string(),
        })?;
    Ok(PortSettings {
        port,
        number,
        name,
        country,
        cid,
        call_waiting,
    })
}

impl Store {
    /// The settings of every port that has any, by port.
    pub fn port_settings(&self) -> Result<Vec<PortSettings>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT port, number, name, country, cid_mode, call_waiting FROM ports ORDER BY port",
        )?;
        let rows = stmt
            .query_map([], settings_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(to_settings).collect()
    }

    /// The settings of `port` (all defaults when none are stored).
    pub fn port_setting(&self, port: u32) -> Result<PortSettings, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT port, number, name, country, cid_mode, call_waiting FROM ports
                 WHERE port = ?1",
            )?
            .query_row([port], settings_row)
            .optional()?;
        row.map_or(Ok(PortSettings::new(port)), to_settings)
    }

    /// Stores a port's settings, audited. The number must not be an extension, a ring
    /// group or another port's.
    pub fn set_port_settings(
        &mut self,
        by: &AuditCtx<'_>,
        s: &PortSettings,
    ) -> Result<(), StoreError> {
        if !(1..=MAX_PORTS).contains(&s.port) {
            return Err(bad_port(s.port));
        }
        if let Some(n) = &s.number {
            validate_number(n)?;
        }
        if let Some(n) = &s.name {
            validate_name(n)?;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(n) = &s.number {
            let used: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM extensions WHERE number = ?1
                     UNION ALL SELECT 2 FROM ring_groups WHERE number = ?1
                     UNION ALL SELECT 3 FROM ports WHERE number = ?1 AND port != ?2
                     LIMIT 1",
                    params![n, s.port],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(kind) = used {
                return Err(StoreError::NumberInUse {
                    number: n.clone(),
                    used_by: match kind {
                        1 => "an extension",
                        2 => "a ring group",
                        _ => "another port",
                    },
                });
            }
        }
        tx.execute(
            "INSERT INTO ports (port, number, name, country, cid_mode, call_waiting, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (port) DO UPDATE SET number = ?2, name = ?3, country = ?4,
                 cid_mode = ?5, call_waiting = ?6, updated_at = ?7",
            params![
                s.port,
                s.number,
                s.name,
                s.country.map(Country::code),
                s.cid.map(CidMode::as_str),
                s.call_waiting,
                by.now_unix
            ],
        )?;
        let detail = format!(
            "port {}: number={} name={} country={} cid={} call-waiting={}",
            s.port,
            s.number.as_deref().unwrap_or("default"),
            s.name.as_deref().unwrap_or("-"),
            s.country.map_or("default", Country::code),
            s.cid.map_or("default", CidMode::as_str),
            if s.call_waiting { "on" } else { "off" },
        );
        audit::insert(&tx, by, "port.set", &detail)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a port's live state (pbxd, on change).
    pub fn write_port_status(&mut self, s: &PortStatusRow) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO port_status
                 (port, number, hook, linefeed, call, faulty, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                s.port,
                s.number,
                s.hook,
                s.linefeed,
                s.call,
                s.faulty,
                s.updated_at
            ])?;
        Ok(())
    }

    /// Forgets every port's live state (pbxd at start: ports it no longer runs vanish).
    pub fn clear_port_status(&mut self) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM port_status", [])?;
        Ok(())
    }

    /// The live state rows, by port.
    pub fn port_statuses(&self) -> Result<Vec<PortStatusRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT port, number, hook, linefeed, call, faulty, updated_at
             FROM port_status ORDER BY port",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(PortStatusRow {
                port: row.get(0)?,
                number: row.get(1)?,
                hook: row.get(2)?,
                linefeed: row.get(3)?,
                call: row.get(4)?,
                faulty: row.get(5)?,
                updated_at: row.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
