//! Cloud trunk accounts (one per provider account) and their registration status.
//!
//! The password is stored sealed with the device key (`crate::secret`, purpose
//! `trunk:<name>`); the store never sees it in clear and the audit log never names it.
//! Numbers (DIDs), emergency caller ID and toll-fraud limits live elsewhere.

use std::net::IpAddr;

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

use super::{AuditCtx, Store, StoreError};

/// Default registration interval asked of the registrar, seconds. Providers commonly
/// grant 600 to 3600; the client refreshes at half of what is granted.
pub const DEFAULT_REGISTER_SECS: u32 = 600;
/// Allowed registration intervals, seconds.
pub const REGISTER_SECS_RANGE: std::ops::RangeInclusive<u32> = 60..=86_400;
/// Default limit of simultaneous calls over one trunk.
pub const DEFAULT_MAX_CALLS: u32 = 2;
const MAX_CALLS_RANGE: std::ops::RangeInclusive<u32> = 1..=1000;

/// SIP transport to the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkTransport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl TrunkTransport {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkTransport::Udp => "udp",
            TrunkTransport::Tcp => "tcp",
            TrunkTransport::Tls => "tls",
        }
    }

    /// Parses `udp`, `tcp` or `tls` (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(TrunkTransport::Udp),
            "tcp" => Ok(TrunkTransport::Tcp),
            "tls" => Ok(TrunkTransport::Tls),
            _ => Err(StoreError::InvalidValue {
                what: "transport",
                reason: format!("{s:?} is not one of udp, tcp, tls"),
            }),
        }
    }

    /// The default port for this transport (RFC 3263 sec. 4.2).
    pub fn default_port(self) -> u16 {
        match self {
            TrunkTransport::Tls => 5061,
            _ => 5060,
        }
    }
}

/// Media encryption towards the provider: the same type the calls use, so the stored
/// mode reaches the trunk's legs as it is.
pub use crate::media::SrtpMode;

/// Parses `off`, `optional` or `mandatory` (case-insensitive) for a trunk.
pub fn parse_srtp_mode(s: &str) -> Result<SrtpMode, StoreError> {
    s.parse().map_err(|reason| StoreError::InvalidValue {
        what: "srtp",
        reason,
    })
}

/// A trunk account as the installer configures it (without the password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkAccount {
    /// Short name, the key (`[a-z0-9_-]`, 1 to 32 characters).
    pub name: String,
    /// Whether the box registers and routes over it.
    pub enabled: bool,
    /// Registrar: a DNS name (resolved per RFC 3263), an IP literal, or either with `:port`.
    pub registrar: String,
    /// SIP domain for the AOR, From and To (often the registrar's host name).
    pub domain: String,
    /// Outbound proxy (host or host:port), if the provider names one.
    pub proxy: Option<String>,
    /// SIP-ID: the user part of the AOR.
    pub user: String,
    /// Authentication user for digest (often equal to the SIP-ID).
    pub auth_user: String,
    /// Transport.
    pub transport: TrunkTransport,
    /// SRTP policy.
    pub srtp: SrtpMode,
    /// Registration interval asked for, seconds.
    pub register_secs: u32,
    /// Most simultaneous calls over this trunk.
    pub max_calls: u32,
}

/// A stored trunk: the account, its sealed password and its times.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTrunk {
    /// The account.
    pub account: TrunkAccount,
    /// The password sealed with the device key (purpose `trunk:<name>`).
    pub password_sealed: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

impl std::fmt::Debug for StoredTrunk {
    // Even the sealed form stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTrunk")
            .field("account", &self.account)
            .field("password_sealed", &"<sealed>")
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// The registration status pbxd last wrote for a trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkStatusRow {
    /// Trunk name.
    pub name: String,
    /// `registered`, `registering`, `auth-failed`, `forbidden`, `unreachable`, `failed`,
    /// `disabled`.
    pub state: String,
    /// Why, in words (e.g. "no answer from 192.0.2.1:5060").
    pub reason: String,
    /// Unix seconds until which the registration holds, when registered.
    pub registered_until: Option<i64>,
    /// Our public address as the provider sees it.
    pub public_addr: Option<String>,
    /// Unix seconds since the state holds.
    pub since: i64,
    /// Unix seconds of the last write.
    pub updated_at: i64,
}

/// Checks a trunk name: 1 to 32 of `a-z 0-9 _ -`, starting with a letter or digit.
pub fn validate_trunk_name(name: &str) -> Result<(), StoreError> {
    let bad = |reason: &str| StoreError::InvalidValue {
        what: "trunk name",
        reason: format!("{name:?}: {reason}"),
    };
    if name.is_empty() || name.len() > 32 {
        return Err(bad("must be 1 to 32 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(bad("only a-z, 0-9, _ and - are allowed"));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(bad("must start with a letter or digit"));
    }
    Ok(())
}

/// Splits `host`, `host:port`, `IP`, `IP:port`, `[IPv6]` or `[IPv6]:port` into host and
/// optional port, checking that the host is an IP literal or a DNS name.
pub fn validate_host(what: &'static str, s: &str) -> Result<(String, Option<u16>), StoreError> {
    let bad = |reason: &str| StoreError::InvalidValue {
        what,
        reason: format!("{s:?}: {reason}"),
    };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(|| bad("missing ]"))?;
        let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| bad("not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                parse_port(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?)
                    .ok_or_else(|| bad("bad port"))?,
            ),
        };
        return Ok((format!("[{ip}]"), port));
    }
    if s.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) {
        return Ok((format!("[{s}]"), None));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(parse_port(p).ok_or_else(|| bad("bad port"))?)),
        None => (s, None),
    };
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok((host.to_owned(), port));
    }
    if host.len() > 253 {
        return Err(bad("host name longer than 253 characters"));
    }
    for label in host.trim_end_matches('.').split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(bad("not a valid host name or IP address"));
        }
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad("not a valid IPv4 address"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_port(p: &str) -> Option<u16> {
    p.parse::<u16>().ok().filter(|p| *p != 0)
}

/// Checks a SIP user part (SIP-ID or auth user): 1 to 64 unreserved characters.
pub fn validate_sip_user(what: &'static str, s: &str) -> Result<(), StoreError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidValue {
            what,
            reason: format!("{s:?}: 1 to 64 letters, digits or -_.!~*'()&=+$,;?/"),
        })
    }
}

/// Checks every field of an account (the web API and pbxctl share this).
pub fn validate_trunk(t: &TrunkAccount) -> Result<(), StoreError> {
    validate_trunk_name(&t.name)?;
    validate_host("registrar", &t.registrar)?;
    let (_, port) = validate_host("domain", &t.domain)?;
    if port.is_some() {
        return Err(StoreError::InvalidValue {
            what: "domain",
            reason: format!("{:?}: a SIP domain has no port", t.domain),
        });
    }
    if let Some(p) = &t.proxy {
        validate_host("outbound proxy", p)?;
    }
    validate_sip_user("SIP user", &t.user)?;
    validate_sip_user("auth user", &t.auth_user)?;
    if !REGISTER_SECS_RANGE.contains(&t.register_secs) {
        return Err(StoreError::InvalidValue {
            what: "registration interval",
            reason: format!(
                "{} s is outside {}..={} s",
                t.register_secs,
                REGISTER_SECS_RANGE.start(),
                REGISTER_SECS_RANGE.end()
            ),
        });
    }
    if !MAX_CALLS_RANGE.contains(&t.max_calls) {
        return Err(StoreError::InvalidValue {
            what: "max calls",
            reason: format!("{} is outside 1..=1000", t.max_calls),
        });
    }
    Ok(())
}

fn detail(t: &TrunkAccount) -> String {
    format!(
        "name={} enabled={} registrar={} domain={} proxy={} user={} auth_user={} transport={} srtp={} register_secs={} max_calls={}",
        t.name,
        t.enabled,
        t.registrar,
        t.domain,
        t.proxy.as_deref().unwrap_or("-"),
        t.user,
        t.auth_user,
        t.transport.as_str(),
        t.srtp.as_str(),
        t.register_secs,
        t.max_calls
    )
}

const COLUMNS: &str = "name, enabled, registrar, domain, proxy, sip_user, auth_user, \
     password_sealed, transport, srtp, register_secs, max_calls, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<(TrunkAccount, String, String, String, i64, i64)> {
    Ok((
        TrunkAccount {
            name: row.get(0)?,
            enabled: row.get(1)?,
            registrar: row.get(2)?,
            domain: row.get(3)?,
            proxy: row.get(4)?,
            user: row.get(5)?,
            auth_user: row.get(6)?,
            // Filled in below from the text columns.
            transport: TrunkTransport::Udp,
            srtp: SrtpMode::Off,
            register_secs: row.get(10)?,
            max_calls: row.get(11)?,
        },
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(12)?,
        row.get(13)?,
    ))
}

fn finish(
    (mut account, password_sealed, transport, srtp, created_at, updated_at): (
        TrunkAccount,
        String,
        String,
        String,
        i64,
        i64,
    ),
) -> Result<StoredTrunk, StoreError> {
    account.transport = TrunkTransport::parse(&transport).map_err(|_| StoreError::BadValue {
        what: "trunks.transport",
        detail: transport,
    })?;
    account.srtp = parse_srtp_mode(&srtp).map_err(|_| StoreError::BadValue {
        what: "trunks.srtp",
        detail: srtp,
    })?;
    Ok(StoredTrunk {
        account,
        password_sealed,
        created_at,
        updated_at,
    })
}

impl Store {
    /// Adds a trunk account with its sealed password. Audited as `trunk.add` (without
    /// the password).
    pub fn add_trunk(
        &mut self,
        by: &AuditCtx<'_>,
        t: &TrunkAccount,
        password_sealed: &str,
    ) -> Result<(), StoreError> {
        validate_trunk(t)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = tx
            .query_row(
                "SELECT 1 FROM trunks WHERE name = ?1",
                [&t.name],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if exists {
            return Err(StoreError::DuplicateTrunk(t.name.clone()));
        }
        tx.execute(
            &format!("INSERT INTO trunks ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)"),
            params![
                t.name,
                t.enabled,
                t.registrar,
                t.domain,
                t.proxy,
                t.user,
                t.auth_user,
                password_sealed,
                t.transport.as_str(),
                t.srtp.as_str(),
                t.register_secs,
                t.max_calls,
                by.now_unix
            ],
        )?;
        super::audit::insert(&tx, by, "trunk.add", &detail(t))?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces a trunk's settings; with `password_sealed`, its password too. Audited as
    /// `trunk.set` (the detail says whether the password changed, never what it is).
    pub fn update_trunk(
        &mut self,
        by: &AuditCtx<'_>,
        t: &TrunkAccount,
        password_sealed: Option<&str>,
    ) -> Result<(), StoreError> {
        validate_trunk(t)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE trunks SET enabled = ?2, registrar = ?3, domain = ?4, proxy = ?5,
                 sip_user = ?6, auth_user = ?7, password_sealed = COALESCE(?8, password_sealed),
                 transport = ?9, srtp = ?10, register_secs = ?11, max_calls = ?12,
                 updated_at = MAX(?13, updated_at + 1)
             WHERE name = ?1",
            params![
                t.name,
                t.enabled,
                t.registrar,
                t.domain,
                t.proxy,
                t.user,
                t.auth_user,
                password_sealed,
                t.transport.as_str(),
                t.srtp.as_str(),
                t.register_secs,
                t.max_calls,
                by.now_unix
            ],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownTrunk(t.name.clone()));
        }
        let pw = if password_sealed.is_some() {
            " password=changed"
        } else {
            ""
        };
        super::audit::insert(&tx, by, "trunk.set", &format!("{}{pw}", detail(t)))?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a trunk and its status. Audited as `trunk.remove`.
    pub fn remove_trunk(&mut self, by: &AuditCtx<'_>, name: &str) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute("DELETE FROM trunks WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(StoreError::UnknownTrunk(name.to_owned()));
        }
        tx.execute("DELETE FROM trunk_status WHERE name = ?1", [name])?;
        super::audit::insert(&tx, by, "trunk.remove", &format!("name={name}"))?;
        tx.commit()?;
        Ok(())
    }

    /// One trunk by name.
    pub fn get_trunk(&self, name: &str) -> Result<Option<StoredTrunk>, StoreError> {
        let row = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM trunks WHERE name = ?1"))?
            .query_row([name], from_row)
            .optional()?;
        row.map(finish).transpose()
    }

    /// All trunks, by name.
    pub fn list_trunks(&self) -> Result<Vec<StoredTrunk>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM trunks ORDER BY name"))?;
        let rows = stmt.query_map([], from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(finish(row?)?);
        }
        Ok(out)
    }

    /// A fingerprint of the trunk configuration (names and change times; an update
    /// always advances `updated_at`), cheap enough for the daemon to poll every few seconds.
    pub fn trunks_version(&self) -> Result<String, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT COALESCE(group_concat(name || ':' || updated_at, ','), '')
                 FROM (SELECT name, updated_at FROM trunks ORDER BY name)",
            )?
            .query_row([], |row| row.get(0))?)
    }

    /// Writes a trunk's registration status (pbxd's registration client; not audited:
    /// it is state, not configuration).
    pub fn set_trunk_status(&mut self, s: &TrunkStatusRow) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO trunk_status
                 (name, state, reason, registered_until, public_addr, since, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                s.name,
                s.state,
                s.reason,
                s.registered_until,
                s.public_addr,
                s.since,
                s.updated_at
            ])?;
        Ok(())
    }

    /// The status rows pbxd wrote, by name.
    pub fn trunk_statuses(&self) -> Result<Vec<TrunkStatusRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, state, reason, registered_until, public_addr, since, updated_at
             FROM trunk_status ORDER BY name",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(TrunkStatusRow {
                name: row.get(0)?,
                state: row.get(1)?,
                reason: row.get(2)?,
                registered_until: row.get(3)?,
                public_addr: row.get(4)?,
                since: row.get(5)?,
                updated_at: row.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str) -> TrunkAccount {
        TrunkAccount {
            name: name.into(),
            enabled: true,
            registrar: "sipconnect.example.net".into(),
            domain: "sipconnect.example.net".into(),
            proxy: None,
            user: "4930123".into(),
            auth_user: "4930123".into(),
            transport: TrunkTransport::Udp,
            srtp: SrtpMode::Off,
            register_secs: DEFAULT_REGISTER_SECS,
            max_calls: DEFAULT_MAX_CALLS,
        }
    }

    const BY: AuditCtx<'static> = AuditCtx {
        actor: "test",
        source: "unit",
        now_unix: 1_700_000_000,
    };

    #[test]
    fn hosts_are_checked_and_split() {
        struct Case {
            input: &'static str,
            ok: Option<(&'static str, Option<u16>)>,
        }
        let cases = [
            Case {
                input: "sip.example.net",
                ok: Some(("sip.example.net", None)),
            },
            Case {
                input: "SIP.Example.net:5080",
                ok: Some(("sip.example.net", Some(5080))),
            },
            Case {
                input: "192.0.2.1",
                ok: Some(("192.0.2.1", None)),
            },
            Case {
                input: "192.0.2.1:5062",
                ok: Some(("192.0.2.1", Some(5062))),
            },
            Case {
                input: "[2001:db8::1]:5061",
                ok: Some(("[2001:db8::1]", Some(5061))),
            },
            Case {
                input: "2001:db8::1",
                ok: Some(("[2001:db8::1]", None)),
            },
            Case {
                input: "",
                ok: None,
            },
            Case {
                input: "sip example",
                ok: None,
            },
            Case {
                input: "host:0",
                ok: None,
            },
            Case {
                input: "host:99999",
                ok: None,
            },
            Case {
                input: "-bad.example",
                ok: None,
            },
            Case {
                input: "300.1.1.1",
                ok: None,
            },
            Case {
                input: "a..b",
                ok: None,
            },
        ];
        for c in cases {
            let got = validate_host("registrar", c.input).ok();
            let want = c.ok.map(|(h, p)| (h.to_owned(), p));
            assert_eq!(got, want, "{}", c.input);
        }
    }

    #[test]
    fn accounts_round_trip_with_sealed_password_and_audit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Store::open(dir.path()).expect("open");
        let mut t = account("main");
        s.add_trunk(&BY, &t, "SEALED-BLOB").expect("add");
        assert_eq!(
            s.add_trunk(&BY, &t, "x"),
            Err(StoreError::DuplicateTrunk("main".into()))
        );
        let got = s.get_trunk("main").expect("get").expect("present");
        assert_eq!(got.account, t);
        assert_eq!(got.password_sealed, "SEALED-BLOB");
        assert!(!format!("{got:?}").contains("SEALED-BLOB"));
        let v1 = s.trunks_version().expect("version");
        t.transport = TrunkTransport::Tls;
        t.proxy = Some("proxy.example.net:5061".into());
        // Same second as the add: the fingerprint still changes.
        s.update_trunk(&BY, &t, None).expect("set");
        let got = s.get_trunk("main").expect("get").expect("present");
        assert_eq!(got.account, t);
        assert_eq!(got.password_sealed, "SEALED-BLOB", "password kept");
        assert_ne!(s.trunks_version().expect("version"), v1);
        s.update_trunk(&BY, &t, Some("NEW-BLOB")).expect("set pw");
        let audit = s.audit_entries(10).expect("audit");
        assert_eq!(audit[0].action, "trunk.set");
        assert!(audit[0].detail.contains("password=changed"));
        assert!(audit.iter().all(|a| !a.detail.contains("BLOB")));
        assert_eq!(s.list_trunks().expect("list").len(), 1);
        s.remove_trunk(&BY, "main").expect("remove");
        assert_eq!(
            s.remove_trunk(&BY, "main"),
            Err(StoreError::UnknownTrunk("main".into()))
        );
        assert_eq!(
            s.update_trunk(&BY, &t, None),
            Err(StoreError::UnknownTrunk("main".into()))
        );
    }

    #[test]
    fn bad_accounts_are_refused_with_the_field_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Store::open(dir.path()).expect("open");
        type Edit = fn(&mut TrunkAccount);
        let cases: [(Edit, &str); 6] = [
            (|t| t.name = "Main Trunk".into(), "trunk name"),
            (|t| t.registrar = "bad host!".into(), "registrar"),
            (|t| t.domain = "example.net:5060".into(), "domain"),
            (|t| t.user = "a b".into(), "SIP user"),
            (|t| t.register_secs = 10, "registration interval"),
            (|t| t.max_calls = 0, "max calls"),
        ];
        for (edit, what) in cases {
            let mut t = account("t1");
            edit(&mut t);
            match s.add_trunk(&BY, &t, "x") {
                Err(StoreError::InvalidValue { what: w, .. }) => assert_eq!(w, what),
                other => panic!("{what}: {other:?}"),
            }
        }
        assert!(s.list_trunks().expect("list").is_empty());
    }

    #[test]
    fn status_rows_are_replaced_and_removed_with_the_trunk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Store::open(dir.path()).expect("open");
        s.add_trunk(&BY, &account("main"), "x").expect("add");
        let mut row = TrunkStatusRow {
            name: "main".into(),
            state: "registering".into(),
            reason: "first REGISTER".into(),
            registered_until: None,
            public_addr: None,
            since: 1,
            updated_at: 1,
        };
        s.set_trunk_status(&row).expect("status");
        row.state = "registered".into();
        row.registered_until = Some(600);
        s.set_trunk_status(&row).expect("status");
        assert_eq!(s.trunk_statuses().expect("read"), vec![row]);
        s.remove_trunk(&BY, "main").expect("remove");
        assert!(s.trunk_statuses().expect("read").is_empty());
    }
}
