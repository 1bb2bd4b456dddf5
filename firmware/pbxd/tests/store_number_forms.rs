//! Numbers in any form against a real SQLite file: the call log's number filter and the
//! phonebook's search and call names find `0301234567`, `+49301234567`,
//! `030 123 4567` and the local `1234567` alike (schema V14: E.164 columns filled at
//! write time with the site's rules), through indexes; phonebook keys follow a changed
//! area code.

use pbxd::secret::DeviceKey;
use pbxd::store::{
    AuditCtx, CallDirection, CallRecord, CdrFilter, Disposition, RestoreOptions, Role,
    SiteSettings, Store,
};

fn by() -> AuditCtx<'static> {
    AuditCtx {
        actor: "test",
        source: "test",
        now_unix: 1_700_000_000,
    }
}

fn call(id: &str, start_ms: i64, dir: CallDirection, caller: &str, dialled: &str) -> CallRecord {
    CallRecord {
        call_id: id.into(),
        caller: caller.into(),
        caller_name: None,
        dialled: dialled.into(),
        normalised: None,
        destination: (dir != CallDirection::Outbound).then(|| "101".to_owned()),
        direction: dir,
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

fn berlin(s: &mut Store, area: &str) {
    let site = SiteSettings {
        area_code: area.into(),
        ..SiteSettings::default()
    };
    s.set_site_settings(&by(), &site).expect("site");
}

fn ids(s: &Store, f: &CdrFilter) -> Vec<String> {
    s.call_record_page(f, 50, 0)
        .expect("page")
        .records
        .into_iter()
        .map(|r| r.record.call_id)
        .collect()
}

#[test]
fn the_call_log_finds_both_parties_in_any_number_form() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Store::open(dir.path()).expect("store");
    berlin(&mut s, "30");
    let mut out_e164 = call("out-e164", 4, CallDirection::Outbound, "102", "0301234567");
    out_e164.normalised = Some("+49301234567".into());
    for r in [
        call(
            "in-national",
            1,
            CallDirection::Inbound,
            "0301234567",
            "+4930555",
        ),
        call(
            "in-e164",
            2,
            CallDirection::Inbound,
            "+49301234567",
            "+4930555",
        ),
        call("in-local", 3, CallDirection::Inbound, "1234567", "+4930555"),
        out_e164,
        call(
            "out-plain",
            5,
            CallDirection::Outbound,
            "101",
            "030 123 4567",
        ),
        call("other", 6, CallDirection::Inbound, "0301234568", "+4930555"),
        call("internal", 7, CallDirection::Internal, "102", "101"),
    ] {
        s.insert_call_record(&r).expect("insert");
    }
    let all = [
        "out-plain",
        "out-e164",
        "in-local",
        "in-e164",
        "in-national",
    ];
    for form in [
        "0301234567",
        "+49301234567",
        "0049301234567",
        "030 123 4567",
        "1234567",
    ] {
        let f = CdrFilter {
            number: Some(form.into()),
            ..CdrFilter::default()
        };
        assert_eq!(ids(&s, &f), all, "{form}");
    }
    // A user's own list (extension 101): the same number filter, own calls only.
    let own = CdrFilter {
        number: Some("+49301234567".into()),
        own_extension: Some("101".into()),
        ..CdrFilter::default()
    };
    assert_eq!(
        ids(&s, &own),
        ["out-plain", "in-local", "in-e164", "in-national"]
    );
    // The called DID, too, in its national form.
    let did = CdrFilter {
        number: Some("030555".into()),
        ..CdrFilter::default()
    };
    assert_eq!(ids(&s, &did).len(), 4);
    // Extensions are matched as written, never as local numbers.
    let ext = CdrFilter {
        number: Some("102".into()),
        ..CdrFilter::default()
    };
    assert_eq!(ids(&s, &ext), ["internal", "out-e164"]);
    assert_eq!(s.number_search_key("102"), None);
    assert_eq!(
        s.number_search_key("030 123 4567").as_deref(),
        Some("+49301234567")
    );
}

#[test]
fn phonebook_search_and_call_names_match_any_form_and_follow_the_area_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Store::open(dir.path()).expect("store");
    berlin(&mut s, "30");
    s.add_web_user(&by(), "anna", "$argon2id$x", Role::User, None)
        .expect("user");
    let ids = s
        .add_phonebook_entries(
            &by(),
            "anna",
            &[
                ("Berg".into(), vec!["0301234567".into(), "102".into()]),
                ("Local shop".into(), vec!["7654321".into()]),
                ("Mobile".into(), vec!["+491705551234".into()]),
            ],
        )
        .expect("add");
    fn found(s: &Store, q: &str) -> Vec<String> {
        s.phonebook("anna", Some(q))
            .expect("search")
            .into_iter()
            .map(|e| e.name)
            .collect()
    }
    for q in ["+49301234567", "0301234567", "030 123 4567", "0049 30 1234"] {
        assert_eq!(found(&s, q), ["Berg"], "{q}");
    }
    assert_eq!(found(&s, "+49307654321"), ["Local shop"]);
    assert_eq!(found(&s, "0170 555"), ["Mobile"]);
    assert_eq!(found(&s, "berg"), ["Berg"]);
    assert!(found(&s, "+4940").is_empty());

    let names = s
        .phonebook_names_for("anna", ["+49301234567", "1234567", "102", "+49307654321"])
        .expect("names");
    assert_eq!(names.get("+49301234567").map(String::as_str), Some("Berg"));
    assert_eq!(names.get("1234567").map(String::as_str), Some("Berg"));
    assert_eq!(names.get("102").map(String::as_str), Some("Berg"));
    assert_eq!(
        names.get("+49307654321").map(String::as_str),
        Some("Local shop")
    );
    assert!(s
        .phonebook_names_for("bob", ["+49301234567"])
        .expect("names")
        .is_empty());

    // A new area code: the local entry now means a Munich number.
    berlin(&mut s, "89");
    assert_eq!(found(&s, "+49897654321"), ["Local shop"]);
    assert!(found(&s, "+49307654321").is_empty());

    // An update replaces the keys; a delete removes them.
    assert!(s
        .update_phonebook_entry(&by(), "anna", ids[0], "Berg", &["040 99999".into()])
        .expect("update"));
    assert!(found(&s, "0301234567").is_empty());
    assert_eq!(found(&s, "+494099999"), ["Berg"]);
    assert!(s
        .delete_phonebook_entry(&by(), "anna", ids[0])
        .expect("delete"));
    assert!(s
        .phonebook_names_for("anna", ["+494099999"])
        .expect("names")
        .is_empty());
}

/// The number keys are derived data, not in the backup: a restore rebuilds them for the
/// restored phonebook and site.
#[test]
fn a_restore_rebuilds_phonebook_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = DeviceKey::load_or_create(dir.path()).expect("key");
    let mut s = Store::open(dir.path()).expect("store");
    berlin(&mut s, "30");
    s.add_web_user(&by(), "root", "$argon2id$x", Role::Admin, None)
        .expect("admin");
    s.add_web_user(&by(), "anna", "$argon2id$x", Role::User, None)
        .expect("user");
    s.add_phonebook_entries(&by(), "anna", &[("Shop".into(), vec!["7654321".into()])])
        .expect("add");
    let archive = s.create_backup(&by(), &key).expect("backup");
    berlin(&mut s, "89");
    s.restore_backup(&by(), &key, &archive, RestoreOptions::default())
        .expect("restore");
    let names = s
        .phonebook_names_for("anna", ["+49307654321", "+49897654321"])
        .expect("names");
    assert_eq!(names.get("+49307654321").map(String::as_str), Some("Shop"));
    assert_eq!(
        names.len(),
        1,
        "area code 30 again, from the backup: {names:?}"
    );
}
