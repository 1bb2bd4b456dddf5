//! Notes and phonebooks against a real SQLite file: they survive a configuration restore
//! (the phonebook is in the backup; notes are not wiped by the restore replacing the
//! accounts), a later account of the same name inherits nothing, and deleting an
//! account or purging call records removes what hangs on them.

use pbxd::secret::DeviceKey;
use pbxd::store::{AuditCtx, CallDirection, CallRecord, Disposition, RestoreOptions, Role, Store};

fn by() -> AuditCtx<'static> {
    AuditCtx {
        actor: "test",
        source: "test",
        now_unix: 1_700_000_000,
    }
}

fn call(start_ms: i64) -> CallRecord {
    CallRecord {
        call_id: format!("c{start_ms}"),
        caller: "101".into(),
        caller_name: None,
        dialled: "102".into(),
        normalised: None,
        destination: Some("102".into()),
        direction: CallDirection::Internal,
        route: None,
        source_ip: None,
        dest_ip: None,
        start_ms,
        answer_ms: None,
        end_ms: start_ms + 1000,
        disposition: Disposition::Busy,
        reason: None,
        sip_status: None,
        hangup: None,
        quality_caller: None,
        quality_callee: None,
        forwarded_by: None,
    }
}

fn names(s: &Store, user: &str) -> Vec<String> {
    s.phonebook(user, None)
        .expect("phonebook")
        .into_iter()
        .map(|e| e.name)
        .collect()
}

#[test]
fn restore_keeps_notes_and_phonebooks_and_deleting_an_account_removes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = DeviceKey::load_or_create(dir.path()).expect("key");
    let mut s = Store::open(dir.path()).expect("store");
    let b = by();
    s.add_first_admin(&b, "root", "$argon2id$x").expect("admin");
    for (u, ext) in [("anna", "101"), ("temp", "102")] {
        s.add_extension(&b, ext, None, "sip-secret-1").expect("ext");
        s.add_web_user(&b, u, "$argon2id$x", Role::User, Some(ext))
            .expect("user");
    }
    let old = s.insert_call_record(&call(1_000)).expect("old call");
    let new = s.insert_call_record(&call(2_000_000)).expect("new call");
    s.add_phonebook_entries(&b, "anna", &[("Berg".into(), vec!["0211".into()])])
        .expect("entry");
    s.set_call_note(&b, "anna", new, "keep me").expect("note");
    s.set_call_note(&b, "anna", old, "old call").expect("note");
    s.set_call_note(&b, "temp", new, "temp's").expect("note");

    let archive = s.create_backup(&b, &key).expect("backup");
    s.add_phonebook_entries(&b, "anna", &[("Later".into(), vec!["0212".into()])])
        .expect("entry");
    s.delete_web_user(&b, "temp").expect("delete temp");
    assert_eq!(
        s.call_note("temp", new).expect("read"),
        None,
        "gone with the account"
    );
    // A backup with temp in it brings temp back, but not temp's deleted note.
    s.restore_backup(&b, &key, &archive, RestoreOptions::default())
        .expect("restore");
    assert_eq!(names(&s, "anna"), ["Berg"], "the phonebook as backed up");
    assert_eq!(
        s.call_note("anna", new).expect("read").as_deref(),
        Some("keep me")
    );
    assert_eq!(s.call_note("temp", new).expect("read"), None);

    // An account missing from the restored backup leaves no notes for a namesake.
    s.add_web_user(&b, "ghost", "$argon2id$x", Role::User, Some("101"))
        .expect("ghost");
    s.set_call_note(&b, "ghost", new, "ghost's").expect("note");
    s.restore_backup(&b, &key, &archive, RestoreOptions::default())
        .expect("restore");
    s.add_web_user(&b, "ghost", "$argon2id$x", Role::User, Some("101"))
        .expect("a new ghost");
    assert_eq!(s.call_note("ghost", new).expect("read"), None);

    // Purging call records drops their notes; deleting anna drops her phonebook.
    assert_eq!(s.purge_call_records(10_000).expect("purge"), 1);
    assert_eq!(s.call_note("anna", old).expect("read"), None);
    s.delete_web_user(&b, "anna").expect("delete anna");
    assert!(names(&s, "anna").is_empty());
    assert_eq!(s.call_note("anna", new).expect("read"), None);
}
