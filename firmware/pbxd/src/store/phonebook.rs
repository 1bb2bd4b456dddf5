//! Each web account's personal phonebook: entries with a name and up to
//! [`MAX_NUMBERS`] numbers, seen and changed only by their owner. Numbers are kept as
//! entered (cleaned of spaces and separators); `phonebook_numbers` holds each number as
//! written and in E.164 form (store/number_forms.rs), rebuilt when the site's rules
//! change, so searches and call-log names match a number in any form through an index.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{audit, AuditCtx, Store, StoreError};

/// Most numbers one entry holds.
pub const MAX_NUMBERS: usize = 5;
/// Most entries one account's phonebook holds: bounds the listing and export (sent
/// whole) and the disk. Call-log names are index lookups (no longer the whole phonebook
/// in memory per page), so this is no longer kept small for that.
pub const MAX_ENTRIES: i64 = 10_000;
/// Longest name, in characters.
const MAX_NAME_CHARS: usize = 64;

/// One phonebook entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhonebookEntry {
    /// Row id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Numbers, cleaned (digits, a leading `+`, `*`, `#`).
    pub numbers: Vec<String>,
}

fn invalid(what: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidValue {
        what,
        reason: reason.into(),
    }
}

/// Checks and trims an entry's name.
pub fn validate_contact_name(name: &str) -> Result<String, StoreError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid("name", "at most 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "must not contain control characters"));
    }
    Ok(name.to_owned())
}

/// Cleans one number: drops spaces and the separators `-`, `/`, `.`, `(`, `)`; then it
/// must be 2 to 32 characters of digits, `*`, `#`, with an optional leading `+`.
pub fn clean_contact_number(number: &str) -> Result<String, StoreError> {
    let cleaned: String = number
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '/' | '.' | '(' | ')'))
        .collect();
    let body = cleaned.strip_prefix('+').unwrap_or(&cleaned);
    let ok = (2..=32).contains(&cleaned.len())
        && !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'*' | b'#'));
    if !ok {
        return Err(invalid(
            "number",
            format!(
                "{number:?} is not a phone number (2 to 32 digits, * or #, optional leading +)"
            ),
        ));
    }
    Ok(cleaned)
}

/// Checks an entry's numbers: 1 to [`MAX_NUMBERS`], each cleaned, no duplicates.
pub fn clean_contact_numbers<S: AsRef<str>>(numbers: &[S]) -> Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = Vec::new();
    for n in numbers {
        if n.as_ref().trim().is_empty() {
            continue;
        }
        let c = clean_contact_number(n.as_ref())?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err(invalid("numbers", "at least one number is needed"));
    }
    if out.len() > MAX_NUMBERS {
        return Err(invalid("numbers", "at most 5 numbers per entry"));
    }
    Ok(out)
}

fn row_to_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<PhonebookEntry> {
    let numbers: String = r.get(2)?;
    Ok(PhonebookEntry {
        id: r.get(0)?,
        name: r.get(1)?,
        numbers: numbers.split(',').map(str::to_owned).collect(),
    })
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
fn like_pattern(s: &str) -> String {
    let mut p = String::from("%");
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl Store {
    /// `username`'s entries sorted by name; with `search`, only those whose name or a
    /// number contains it (case-insensitive for ASCII letters), a number also when
    /// written with separators (`030 123`) or in another form (`+4930123` finds
    /// `030123...`, and the other way round: E.164 prefixes are compared).
    pub fn phonebook(
        &self,
        username: &str,
        search: Option<&str>,
    ) -> Result<Vec<PhonebookEntry>, StoreError> {
        let search = search.map(str::trim).filter(|s| !s.is_empty());
        let pattern = search.map(like_pattern);
        let number = search.and_then(|s| clean_contact_number(s).ok());
        let digits = number.as_deref().map(like_pattern);
        let e164 = number.as_deref().and_then(|n| {
            let site = super::number_forms::numbering_site(&self.conn);
            super::number_forms::e164_key(n, &site).map(|k| {
                let mut p = like_pattern(&k);
                p.remove(0); // a prefix, not a substring, of the E.164 form
                p
            })
        });
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name, numbers FROM phonebook
             WHERE username = ?1
               AND (?2 IS NULL OR name LIKE ?2 ESCAPE '\\' OR numbers LIKE ?2 ESCAPE '\\'
                    OR numbers LIKE ?3 ESCAPE '\\'
                    OR EXISTS (SELECT 1 FROM phonebook_numbers k
                               WHERE k.entry = phonebook.id
                                 AND k.number_key LIKE ?4 ESCAPE '\\'))
             ORDER BY name COLLATE NOCASE, id",
        )?;
        let rows = stmt.query_map(params![username, pattern, digits, e164], row_to_entry)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One of `username`'s entries (`None` if it does not exist or is someone else's).
    pub fn phonebook_entry(
        &self,
        username: &str,
        id: i64,
    ) -> Result<Option<PhonebookEntry>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, name, numbers FROM phonebook WHERE id = ?1 AND username = ?2",
            )?
            .query_row(params![id, username], row_to_entry)
            .optional()?)
    }

    /// Adds entries to `username`'s phonebook in one transaction (all or none); returns
    /// their ids. Names and numbers must already be valid ([`validate_contact_name`],
    /// [`clean_contact_numbers`]). Audited once as `phonebook.add` with the count.
    pub fn add_phonebook_entries(
        &mut self,
        by: &AuditCtx<'_>,
        username: &str,
        entries: &[(String, Vec<String>)],
    ) -> Result<Vec<i64>, StoreError> {
        for (name, numbers) in entries {
            validate_contact_name(name)?;
            clean_contact_numbers(numbers)?;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let have: i64 = tx.query_row(
            "SELECT count(*) FROM phonebook WHERE username = ?1",
            [username],
            |r| r.get(0),
        )?;
        let adding = i64::try_from(entries.len()).unwrap_or(i64::MAX);
        if have.saturating_add(adding) > MAX_ENTRIES {
            return Err(invalid(
                "phonebook",
                format!("at most {MAX_ENTRIES} entries (you have {have})"),
            ));
        }
        let mut ids = Vec::with_capacity(entries.len());
        let site = super::number_forms::numbering_site(&tx);
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO phonebook (username, name, numbers, updated_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (name, numbers) in entries {
                ins.execute(params![username, name, numbers.join(","), by.now_unix])?;
                let id = tx.last_insert_rowid();
                super::number_forms::set_entry_keys(&tx, &site, id, username, numbers)?;
                ids.push(id);
            }
        }
        audit::insert(
            &tx,
            by,
            "phonebook.add",
            &format!("username={username} entries={}", entries.len()),
        )?;
        tx.commit()?;
        Ok(ids)
    }

    /// Replaces one of `username`'s entries; false if it is not theirs or gone.
    /// Audited as `phonebook.update`.
    pub fn update_phonebook_entry(
        &mut self,
        by: &AuditCtx<'_>,
        username: &str,
        id: i64,
        name: &str,
        numbers: &[String],
    ) -> Result<bool, StoreError> {
        let name = validate_contact_name(name)?;
        let numbers = clean_contact_numbers(numbers)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE phonebook SET name = ?3, numbers = ?4, updated_at = ?5
             WHERE id = ?1 AND username = ?2",
            params![id, username, name, numbers.join(","), by.now_unix],
        )?;
        if n == 0 {
            return Ok(false);
        }
        let site = super::number_forms::numbering_site(&tx);
        super::number_forms::set_entry_keys(&tx, &site, id, username, &numbers)?;
        audit::insert(
            &tx,
            by,
            "phonebook.update",
            &format!("username={username} id={id}"),
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Deletes one of `username`'s entries; false if it is not theirs or gone.
    /// Audited as `phonebook.delete`.
    pub fn delete_phonebook_entry(
        &mut self,
        by: &AuditCtx<'_>,
        username: &str,
        id: i64,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM phonebook WHERE id = ?1 AND username = ?2",
            params![id, username],
        )?;
        if n == 0 {
            return Ok(false);
        }
        audit::insert(
            &tx,
            by,
            "phonebook.delete",
            &format!("username={username} id={id}"),
        )?;
        tx.commit()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_cleaned_and_checked() {
        struct Case {
            input: &'static str,
            want: Option<&'static str>,
        }
        for c in [
            Case {
                input: "0211 / 123-45 (6)",
                want: Some("0211123456"),
            },
            Case {
                input: "+49 211 1234",
                want: Some("+492111234"),
            },
            Case {
                input: "102",
                want: Some("102"),
            },
            Case {
                input: "*31#",
                want: Some("*31#"),
            },
            Case {
                input: "1",
                want: None,
            },
            Case {
                input: "+",
                want: None,
            },
            Case {
                input: "0211abc",
                want: None,
            },
            Case {
                input: "12+34",
                want: None,
            },
        ] {
            assert_eq!(
                clean_contact_number(c.input).ok().as_deref(),
                c.want,
                "{}",
                c.input
            );
        }
        assert!(clean_contact_numbers(&["", " "]).is_err());
        assert_eq!(
            clean_contact_numbers(&["0211 1", "02111", "102"]).expect("valid"),
            ["02111", "102"]
        );
        assert!(clean_contact_numbers(&["11", "12", "13", "14", "15", "16"]).is_err());
    }

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("5%_\\"), "%5\\%\\_\\\\%");
    }
}
