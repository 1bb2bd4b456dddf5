//! Web UI accounts: user name, argon2id PHC hash (never the password), role, optional
//! linked extension, disabled flag. Hashing itself lives in `web/` (it is slow and runs
//! off the async threads); the store keeps and validates the rows.

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

use super::{audit, AuditCtx, Store, StoreError};

/// Shortest accepted web password, in characters (NIST SP 800-63B asks for at least 8
/// with a throttled login; 10 gives margin for an appliance reachable on the LAN).
pub const MIN_WEB_PASSWORD_LEN: usize = 10;
/// Longest accepted web password, in characters: bounds the hashing work per request.
pub const MAX_WEB_PASSWORD_LEN: usize = 128;
/// Longest user name.
const MAX_USERNAME_LEN: usize = 32;

/// What an account may do (see the domain brief: administrator or user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including account administration.
    Admin,
    /// Own calls and settings only.
    User,
}

impl Role {
    /// The stored and API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    /// Parses the stored and API spelling.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            _ => None,
        }
    }
}

/// A web account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUser {
    /// Login name: lowercase letters, digits, '.', '_', '-'.
    pub username: String,
    /// argon2id PHC string (`$argon2id$v=19$m=...`).
    pub password_hash: String,
    /// What the account may do.
    pub role: Role,
    /// The extension whose calls and settings are "own" for this user, if any.
    pub extension: Option<String>,
    /// A disabled (blocked) account cannot log in; its data is kept.
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Checks a user name: 1 to 32 of `a-z 0-9 . _ -`, starting with a letter or digit,
/// and not `me` (the API's name for the logged-in user).
pub fn validate_username(name: &str) -> Result<(), StoreError> {
    let bad = |reason: &str| {
        Err(StoreError::InvalidValue {
            what: "username",
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() || name.len() > MAX_USERNAME_LEN {
        return bad("must have 1 to 32 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("only lowercase letters a-z, digits and . _ - are allowed");
    }
    if !name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
    {
        return bad("must start with a letter or digit");
    }
    if name == "me" {
        return bad("\"me\" is reserved");
    }
    Ok(())
}

/// The web password policy: 10 to 128 characters, no control characters, not the user
/// name. Length over composition rules, as NIST SP 800-63B recommends.
pub fn validate_web_password(username: &str, password: &str) -> Result<(), StoreError> {
    let len = password.chars().count();
    if len < MIN_WEB_PASSWORD_LEN {
        return Err(StoreError::InvalidPassword("shorter than 10 characters"));
    }
    if len > MAX_WEB_PASSWORD_LEN {
        return Err(StoreError::InvalidPassword("longer than 128 characters"));
    }
    if password.chars().any(char::is_control) {
        return Err(StoreError::InvalidPassword("contains control characters"));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(StoreError::InvalidPassword("must not be the user name"));
    }
    Ok(())
}

fn row_to_user(row: &Row<'_>) -> rusqlite::Result<(WebUser, String)> {
    let role: String = row.get(2)?;
    Ok((
        WebUser {
            username: row.get(0)?,
            password_hash: row.get(1)?,
            role: Role::User, // replaced below once the text is checked
            extension: row.get(3)?,
            disabled: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
        },
        role,
    ))
}

fn with_role((mut user, role): (WebUser, String)) -> Result<WebUser, StoreError> {
    user.role = Role::parse(&role).ok_or_else(|| StoreError::BadValue {
        what: "web_users.role",
        detail: format!("unknown role {role:?}"),
    })?;
    Ok(user)
}

const SELECT: &str = "SELECT username, password_hash, role, extension, disabled, created_at, \
                      updated_at FROM web_users";

impl Store {
    /// How many web accounts exist (0 means first-boot setup is still open).
    pub fn count_web_users(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM web_users")?
            .query_row([], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// One account by name.
    pub fn get_web_user(&self, username: &str) -> Result<Option<WebUser>, StoreError> {
        let row = self
            .conn
            .prepare_cached(&format!("{SELECT} WHERE username = ?1"))?
            .query_row([username], row_to_user)
            .optional()?;
        row.map(with_role).transpose()
    }

    /// All accounts, by name.
    pub fn list_web_users(&self) -> Result<Vec<WebUser>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{SELECT} ORDER BY username"))?;
        let rows = stmt.query_map([], row_to_user)?;
        rows.map(|r| with_role(r?)).collect()
    }

    /// Adds an account. `password_hash` is an argon2id PHC string made by the caller.
    /// Refuses a bad name, a taken name and an extension that does not exist.
    pub fn add_web_user(
        &mut self,
        by: &AuditCtx<'_>,
        username: &str,
        password_hash: &str,
        role: Role,
        extension: Option<&str>,
    ) -> Result<(), StoreError> {
        self.insert_web_user(by, username, password_hash, role, extension, false)
    }

    /// Creates the first administrator, atomically refusing with
    /// [`StoreError::AlreadySetUp`] if any account exists (two set-up requests racing).
    pub fn add_first_admin(
        &mut self,
        by: &AuditCtx<'_>,
        username: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        self.insert_web_user(by, username, password_hash, Role::Admin, None, true)
    }

    fn insert_web_user(
        &mut self,
        by: &AuditCtx<'_>,
        username: &str,
        password_hash: &str,
        role: Role,
        extension: Option<&str>,
        first: bool,
    ) -> Result<(), StoreError> {
        validate_username(username)?;
        if !password_hash.starts_with("$argon2id$") {
            return Err(StoreError::InvalidValue {
                what: "password hash",
                reason: "not an argon2id PHC string".into(),
            });
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if first {
            let n: i64 = tx.query_row("SELECT count(*) FROM web_users", [], |r| r.get(0))?;
            if n > 0 {
                return Err(StoreError::AlreadySetUp);
            }
        }
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM web_users WHERE username = ?1",
                [username],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(StoreError::DuplicateUser(username.to_owned()));
        }
        if let Some(ext) = extension {
            let found: Option<i64> = tx
                .query_row("SELECT 1 FROM extensions WHERE number = ?1", [ext], |r| {
                    r.get(0)
                })
                .optional()?;
            if found.is_none() {
                return Err(StoreError::UnknownExtension(ext.to_owned()));
            }
        }
        tx.execute(
            "INSERT INTO web_users (username, password_hash, role, extension, disabled, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
            params![
                username,
                password_hash,
                role.as_str(),
                extension,
                by.now_unix
            ],
        )?;
        let action = if first { "setup.admin" } else { "user.add" };
        let ext = extension.unwrap_or("-");
        audit::insert(
            &tx,
            by,
            action,
            &format!("username={username} role={} extension={ext}", role.as_str()),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Blocks (`disabled = true`) or unblocks an account.
    pub fn set_web_user_disabled(
        &mut self,
        by: &AuditCtx<'_>,
        username: &str,
        disabled: bool,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE web_users SET disabled = ?2, updated_at = ?3 WHERE username = ?1",
            params![username, disabled, by.now_unix],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownUser(username.to_owned()));
        }
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        audit::insert(&tx, by, action, &format!("username={username}"))?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces an account's password hash (the caller checked the old password).
    pub fn set_web_user_password_hash(
        &mut self,
        by: &AuditCtx<'_>,
        username: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        if !password_hash.starts_with("$argon2id$") {
            return Err(StoreError::InvalidValue {
                what: "password hash",
                reason: "not an argon2id PHC string".into(),
            });
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE web_users SET password_hash = ?2, updated_at = ?3 WHERE username = ?1",
            params![username, password_hash, by.now_unix],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownUser(username.to_owned()));
        }
        audit::insert(&tx, by, "user.password", &format!("username={username}"))?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    fn by(now: i64) -> AuditCtx<'static> {
        AuditCtx {
            actor: "web:root",
            source: "192.0.2.1",
            now_unix: now,
        }
    }

    #[test]
    fn usernames_follow_the_rule() {
        for ok in ["admin", "a", "anna.m", "x_1-2", "0ops"] {
            assert_eq!(validate_username(ok), Ok(()), "{ok}");
        }
        for bad in ["", "Admin", "me", "-x", ".x", "a b", "ä", &"a".repeat(33)] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn password_policy() {
        assert_eq!(
            validate_web_password("anna", "short-pw1"),
            Err(StoreError::InvalidPassword("shorter than 10 characters"))
        );
        assert_eq!(
            validate_web_password("annabelle1", "ANNABELLE1"),
            Err(StoreError::InvalidPassword("must not be the user name"))
        );
        assert!(validate_web_password("anna", "tab\tinside-pw").is_err());
        assert!(validate_web_password("anna", &"x".repeat(129)).is_err());
        assert_eq!(validate_web_password("anna", "ten chars!"), Ok(()));
    }

    #[test]
    fn first_admin_only_once_and_everything_audited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        assert_eq!(store.count_web_users().expect("count"), 0);
        store.add_first_admin(&by(10), "root", HASH).expect("first");
        assert_eq!(
            store.add_first_admin(&by(11), "other", HASH),
            Err(StoreError::AlreadySetUp)
        );
        assert_eq!(
            store.add_web_user(&by(12), "root", HASH, Role::User, None),
            Err(StoreError::DuplicateUser("root".into()))
        );
        assert_eq!(
            store.add_web_user(&by(12), "anna", HASH, Role::User, Some("101")),
            Err(StoreError::UnknownExtension("101".into()))
        );
        assert!(matches!(
            store.add_web_user(&by(12), "anna", "plaintext", Role::User, None),
            Err(StoreError::InvalidValue { .. })
        ));
        let ext_by = AuditCtx {
            actor: "pbxctl",
            source: "cli",
            now_unix: 12,
        };
        store
            .add_extension(&ext_by, "101", None, "correct horse")
            .expect("ext");
        store
            .add_web_user(&by(13), "anna", HASH, Role::User, Some("101"))
            .expect("anna");
        store
            .set_web_user_disabled(&by(14), "anna", true)
            .expect("disable");
        let anna = store.get_web_user("anna").expect("get").expect("exists");
        assert!(anna.disabled);
        assert_eq!(anna.role, Role::User);
        assert_eq!(anna.extension.as_deref(), Some("101"));
        assert_eq!((anna.created_at, anna.updated_at), (13, 14));
        assert_eq!(
            store.set_web_user_disabled(&by(15), "nobody", true),
            Err(StoreError::UnknownUser("nobody".into()))
        );
        let names: Vec<_> = store
            .list_web_users()
            .expect("list")
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(names, ["anna", "root"]);
        let actions: Vec<_> = store
            .audit_entries(10)
            .expect("audit")
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            ["user.disable", "user.add", "extension.add", "setup.admin"]
        );
    }
}
