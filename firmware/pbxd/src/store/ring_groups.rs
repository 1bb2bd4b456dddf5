//! Ring groups ("channels"): one number that rings several extensions, all at once or one
//! after the other, with its own no-answer target.
//!
//! A ring group number follows the extension numbering rule and is never also an
//! extension (checked here and by schema triggers). Removing an extension removes it from
//! every group (the group keeps ringing the others); a group may end up with no members,
//! and then goes straight to its no-answer target.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use super::call_settings::{check_target, stored_target, ForwardTarget};
use super::extensions::{validate_name, validate_number};
use super::{AuditCtx, Store, StoreError};

/// Default ringing time, seconds.
pub const DEFAULT_RING_SECS: u32 = 20;
/// Accepted ringing times, seconds.
pub const RING_SECS_RANGE: std::ops::RangeInclusive<u32> = 5..=300;
/// Most members in one group.
pub const MAX_MEMBERS: usize = 32;

/// How a ring group rings its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RingStrategy {
    /// All members at once for `ring_secs` in total.
    #[default]
    Simultaneous,
    /// One member after the other, `ring_secs` each, in list order.
    Ordered,
}

impl RingStrategy {
    /// The name used in the database and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            RingStrategy::Simultaneous => "simultaneous",
            RingStrategy::Ordered => "ordered",
        }
    }
}

impl fmt::Display for RingStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RingStrategy {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "simultaneous" => Ok(RingStrategy::Simultaneous),
            "ordered" => Ok(RingStrategy::Ordered),
            _ => Err(StoreError::InvalidValue {
                what: "ring strategy",
                reason: format!("{s:?} is not simultaneous or ordered"),
            }),
        }
    }
}

/// A ring group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingGroup {
    /// The group's number (extension numbering rule).
    pub number: String,
    /// Display name, if any.
    pub name: Option<String>,
    /// How members are rung.
    pub strategy: RingStrategy,
    /// Seconds per member (ordered) or in total (simultaneous), 5 to 300.
    pub ring_secs: u32,
    /// Where an unanswered call goes; `None`: the call ends with 480.
    pub noanswer_target: Option<ForwardTarget>,
    /// Member extensions, in ringing order.
    pub members: Vec<String>,
}

impl RingGroup {
    /// A group with the default strategy and ring time and no no-answer target.
    pub fn new(number: &str, members: Vec<String>) -> Self {
        RingGroup {
            number: number.to_owned(),
            name: None,
            strategy: RingStrategy::default(),
            ring_secs: DEFAULT_RING_SECS,
            noanswer_target: None,
            members,
        }
    }
}

/// Checks what needs no database: number and name rules, ring time, at most 32 distinct
/// valid member numbers, no no-answer target pointing at the group itself.
pub fn validate_ring_group(g: &RingGroup) -> Result<(), StoreError> {
    validate_number(&g.number)?;
    if let Some(name) = &g.name {
        validate_name(name)?;
    }
    if !RING_SECS_RANGE.contains(&g.ring_secs) {
        return Err(StoreError::InvalidValue {
            what: "ring time",
            reason: format!("{} s is not 5 to 300 s", g.ring_secs),
        });
    }
    if g.members.len() > MAX_MEMBERS {
        return Err(StoreError::InvalidValue {
            what: "ring group members",
            reason: format!("{} members, at most {MAX_MEMBERS}", g.members.len()),
        });
    }
    let mut seen = HashSet::new();
    for m in &g.members {
        validate_number(m)?;
        if !seen.insert(m.as_str()) {
            return Err(StoreError::InvalidValue {
                what: "ring group members",
                reason: format!("{m} is listed twice"),
            });
        }
    }
    if g.noanswer_target.as_ref().map(ForwardTarget::as_str) == Some(g.number.as_str()) {
        return Err(StoreError::InvalidValue {
            what: "no-answer target",
            reason: format!("ring group {} cannot forward to itself", g.number),
        });
    }
    Ok(())
}

const SELECT: &str = "SELECT number, name, strategy, ring_secs, noanswer_target FROM ring_groups";

fn row_to_group(row: &Row<'_>) -> rusqlite::Result<(RingGroup, String, Option<String>)> {
    Ok((
        RingGroup {
            number: row.get(0)?,
            name: row.get(1)?,
            strategy: RingStrategy::Simultaneous, // replaced from the text below
            ring_secs: row.get(3)?,
            noanswer_target: None, // replaced from the text below
            members: Vec::new(),
        },
        row.get(2)?,
        row.get(4)?,
    ))
}

fn complete(
    conn: &Connection,
    (mut g, strategy, target): (RingGroup, String, Option<String>),
) -> Result<RingGroup, StoreError> {
    g.strategy = strategy
        .parse()
        .map_err(|e: StoreError| StoreError::BadValue {
            what: "ring_groups.strategy",
            detail: e.to_string(),
        })?;
    g.noanswer_target = stored_target("ring_groups.noanswer_target", target)?;
    let mut stmt = conn.prepare_cached(
        "SELECT extension FROM ring_group_members WHERE group_number = ?1 ORDER BY position",
    )?;
    g.members = stmt
        .query_map([&g.number], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(g)
}

/// Checks the members and the no-answer target against the database, then writes the
/// members (replacing any) in list order.
fn write_members_checked(tx: &Transaction<'_>, g: &RingGroup) -> Result<(), StoreError> {
    if let Some(t) = &g.noanswer_target {
        check_target(tx, t)?;
    }
    tx.execute(
        "DELETE FROM ring_group_members WHERE group_number = ?1",
        [&g.number],
    )?;
    let mut exists =
        tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM extensions WHERE number = ?1)")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO ring_group_members (group_number, position, extension) VALUES (?1, ?2, ?3)",
    )?;
    for (position, m) in g.members.iter().enumerate() {
        if !exists.query_row([m], |row| row.get::<_, bool>(0))? {
            return Err(StoreError::UnknownExtension(m.clone()));
        }
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        insert.execute(params![g.number, position, m])?;
    }
    Ok(())
}

fn audit_detail(g: &RingGroup) -> String {
    format!(
        "number={} name={:?} strategy={} ring_secs={} noanswer={} members={}",
        g.number,
        g.name.as_deref().unwrap_or(""),
        g.strategy,
        g.ring_secs,
        g.noanswer_target
            .as_ref()
            .map_or("off", ForwardTarget::as_str),
        g.members.join(","),
    )
}

impl Store {
    /// Adds a ring group. Refused if the number is an extension ([`StoreError::NumberInUse`])
    /// or already a group, if a member is not an extension, or if the no-answer target is
    /// not allowed (see [`Store::set_call_settings`]). Audited as `ring_group.add`.
    pub fn add_ring_group(&mut self, by: &AuditCtx<'_>, g: &RingGroup) -> Result<(), StoreError> {
        validate_ring_group(g)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (is_ext, is_group): (bool, bool) = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM extensions WHERE number = ?1),
                        EXISTS (SELECT 1 FROM ring_groups WHERE number = ?1)",
            )?
            .query_row([&g.number], |row| Ok((row.get(0)?, row.get(1)?)))?;
        if is_ext {
            return Err(StoreError::NumberInUse {
                number: g.number.clone(),
                used_by: "an extension",
            });
        }
        if is_group {
            return Err(StoreError::DuplicateRingGroup(g.number.clone()));
        }
        tx.execute(
            "INSERT INTO ring_groups
                 (number, name, strategy, ring_secs, noanswer_target, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![
                g.number,
                g.name,
                g.strategy.as_str(),
                g.ring_secs,
                g.noanswer_target.as_ref().map(ForwardTarget::as_str),
                by.now_unix
            ],
        )?;
        write_members_checked(&tx, g)?;
        super::audit::insert(&tx, by, "ring_group.add", &audit_detail(g))?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces a ring group's name, strategy, ring time, no-answer target and members.
    /// Audited as `ring_group.set`.
    pub fn update_ring_group(
        &mut self,
        by: &AuditCtx<'_>,
        g: &RingGroup,
    ) -> Result<(), StoreError> {
        validate_ring_group(g)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE ring_groups SET name = ?2, strategy = ?3, ring_secs = ?4,
                 noanswer_target = ?5, updated_at = ?6
             WHERE number = ?1",
            params![
                g.number,
                g.name,
                g.strategy.as_str(),
                g.ring_secs,
                g.noanswer_target.as_ref().map(ForwardTarget::as_str),
                by.now_unix
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::UnknownRingGroup(g.number.clone()));
        }
        write_members_checked(&tx, g)?;
        super::audit::insert(&tx, by, "ring_group.set", &audit_detail(g))?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a ring group and its member list. Audited as `ring_group.remove`.
    /// Forwards that point at the group are left as they are (the call fails with 404
    /// there until they are changed), like forwards to a removed extension.
    pub fn remove_ring_group(&mut self, by: &AuditCtx<'_>, number: &str) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute("DELETE FROM ring_groups WHERE number = ?1", [number])? == 0 {
            return Err(StoreError::UnknownRingGroup(number.to_owned()));
        }
        super::audit::insert(&tx, by, "ring_group.remove", &format!("number={number}"))?;
        tx.commit()?;
        Ok(())
    }

    /// One ring group with its members, by number.
    pub fn ring_group(&self, number: &str) -> Result<Option<RingGroup>, StoreError> {
        let raw = self
            .conn
            .prepare_cached(&format!("{SELECT} WHERE number = ?1"))?
            .query_row([number], row_to_group)
            .optional()?;
        raw.map(|raw| complete(&self.conn, raw)).transpose()
    }

    /// All ring groups with their members, ordered by number.
    pub fn list_ring_groups(&self) -> Result<Vec<RingGroup>, StoreError> {
        let raws: Vec<_> = self
            .conn
            .prepare_cached(&format!("{SELECT} ORDER BY number"))?
            .query_map([], row_to_group)?
            .collect::<rusqlite::Result<_>>()?;
        raws.into_iter()
            .map(|raw| complete(&self.conn, raw))
            .collect()
    }

    /// Whether some extension or ring group number is longer than `prefix` and starts with
    /// it (the dial plan waits for more digits then). Two primary-key range probes, cheap
    /// enough per dialled digit: numbers are ASCII digits, and `:` sorts right after `9`.
    pub fn is_prefix_of_internal_number(&self, prefix: &str) -> Result<bool, StoreError> {
        let upper = format!("{prefix}:");
        let found = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM extensions WHERE number > ?1 AND number < ?2)
                     OR EXISTS (SELECT 1 FROM ring_groups WHERE number > ?1 AND number < ?2)",
            )?
            .query_row([prefix, upper.as_str()], |row| row.get(0))?;
        Ok(found)
    }

    /// The numbers of the ring groups an extension belongs to, ordered.
    pub fn ring_groups_of(&self, extension: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT group_number FROM ring_group_members WHERE extension = ?1
             ORDER BY group_number",
        )?;
        let groups = stmt
            .query_map([extension], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(groups)
    }
}
