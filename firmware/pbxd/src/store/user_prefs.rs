//! Web account administration beyond users.rs: deleting an account (never the last
//! enabled administrator) and the per-user UI language.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{audit, AuditCtx, Store, StoreError};

/// A UI language a user can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// English (the default).
    En,
    /// German.
    De,
}

impl Language {
    /// The stored and API spelling (BCP 47).
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
        }
    }

    /// Parses the stored and API spelling.
    pub fn parse(s: &str) -> Result<Language, StoreError> {
        match s {
            "en" => Ok(Language::En),
            "de" => Ok(Language::De),
            _ => Err(StoreError::InvalidValue {
                what: "language",
                reason: "must be \"en\" or \"de\"".into(),
            }),
        }
    }
}

impl Store {
    /// Deletes a web account. Refuses to delete the last enabled administrator.
    pub fn delete_web_user(&mut self, by: &AuditCtx<'_>, username: &str) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, bool)> = tx
            .query_row(
                "SELECT role, disabled FROM web_users WHERE username = ?1",
                [username],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((role, disabled)) = row else {
            return Err(StoreError::UnknownUser(username.to_owned()));
        };
        if role == "admin" && !disabled {
            let others: i64 = tx.query_row(
                "SELECT count(*) FROM web_users
                 WHERE role = 'admin' AND disabled = 0 AND username <> ?1",
                [username],
                |r| r.get(0),
            )?;
            if others == 0 {
                return Err(StoreError::InvalidValue {
                    what: "username",
                    reason: "the last enabled administrator cannot be deleted".into(),
                });
            }
        }
        // Notes are keyed by name without a foreign key (see schema V13): remove them here.
        tx.execute("DELETE FROM call_notes WHERE username = ?1", [username])?;
        tx.execute("DELETE FROM web_users WHERE username = ?1", [username])?;
        audit::insert(&tx, by, "user.delete", &format!("username={username}"))?;
        tx.commit()?;
        Ok(())
    }

    /// The account's UI language (English for an unknown account).
    pub fn web_user_language(&self, username: &str) -> Result<Language, StoreError> {
        let lang: Option<String> = self
            .conn
            .prepare_cached("SELECT language FROM web_users WHERE username = ?1")?
            .query_row([username], |r| r.get(0))
            .optional()?;
        lang.map_or(Ok(Language::En), |l| Language::parse(&l))
    }

    /// Sets the account's UI language.
    pub fn set_web_user_language(
        &mut self,
        by: &AuditCtx<'_>,
        username: &str,
        language: Language,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE web_users SET language = ?2, updated_at = ?3 WHERE username = ?1",
            params![username, language.as_str(), by.now_unix],
        )?;
        if n == 0 {
            return Err(StoreError::UnknownUser(username.to_owned()));
        }
        audit::insert(
            &tx,
            by,
            "user.language",
            &format!("username={username} language={}", language.as_str()),
        )?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Role;

    const BY: AuditCtx<'static> = AuditCtx {
        actor: "test",
        source: "cli",
        now_unix: 1_700_000_000,
    };
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    #[test]
    fn the_last_enabled_administrator_stays_and_languages_are_per_user() {
        let dir = tempfile::tempdir().expect("dir");
        let mut s = Store::open(dir.path()).expect("store");
        s.add_web_user(&BY, "root", HASH, Role::Admin, None)
            .expect("root");
        s.add_web_user(&BY, "bob", HASH, Role::Admin, None)
            .expect("bob");
        s.set_web_user_disabled(&BY, "bob", true).expect("disable");
        let err = s
            .delete_web_user(&BY, "root")
            .expect_err("last enabled admin");
        assert!(
            err.to_string().contains("last enabled administrator"),
            "{err}"
        );
        s.delete_web_user(&BY, "bob")
            .expect("a disabled admin may go");
        assert_eq!(
            s.delete_web_user(&BY, "bob"),
            Err(StoreError::UnknownUser("bob".into()))
        );
        assert_eq!(s.web_user_language("root").expect("lang"), Language::En);
        s.set_web_user_language(&BY, "root", Language::De)
            .expect("set");
        assert_eq!(s.web_user_language("root").expect("lang"), Language::De);
        assert!(Language::parse("fr").is_err());
        let actions: Vec<String> = s
            .audit_entries(3)
            .expect("audit")
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions, ["user.language", "user.delete", "user.disable"]);
    }
}
