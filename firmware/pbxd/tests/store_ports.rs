//! Analog port settings and live status in a real SQLite file.
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used)]

use pbxd::line::ports_config::CidMode;
use pbxd::line::Country;
use pbxd::store::{AuditCtx, PortSettings, PortStatusRow, Store, BACKUP_TABLES};

const T0: i64 = 1_763_700_000;

fn ctl(now_unix: i64) -> AuditCtx<'static> {
    AuditCtx {
        actor: "pbxctl",
        source: "cli",
        now_unix,
    }
}

#[test]
fn port_settings_round_trip_through_the_file_and_are_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Store::open(tmp.path()).unwrap();
    assert_eq!(db.port_settings().unwrap(), vec![]);
    assert_eq!(db.port_setting(2).unwrap(), PortSettings::new(2));
    let gb = PortSettings {
        port: 2,
        number: Some("31".into()),
        name: Some("Warehouse".into()),
        country: Some(Country::Gb),
        cid: Some(CidMode::Dtmf),
        call_waiting: false,
    };
    db.set_port_settings(&ctl(T0), &gb).unwrap();
    drop(db);
    // Another connection (pbxd's) sees it.
    let db = Store::open(tmp.path()).unwrap();
    assert_eq!(db.port_settings().unwrap(), vec![gb.clone()]);
    assert_eq!(db.port_setting(2).unwrap(), gb);
    let audit = db.audit_entries(5).unwrap();
    assert_eq!(audit[0].action, "port.set");
    assert!(
        audit[0].detail.contains("country=GB"),
        "{}",
        audit[0].detail
    );
    // Configuration, so part of a backup.
    assert!(BACKUP_TABLES.iter().any(|t| t.name == "ports"));
    assert!(!BACKUP_TABLES.iter().any(|t| t.name == "port_status"));
}

#[test]
fn bad_port_settings_are_refused_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Store::open(tmp.path()).unwrap();
    db.add_extension(&ctl(T0), "101", Some("Reception"), "correct horse battery")
        .unwrap();
    db.set_port_settings(
        &ctl(T0),
        &PortSettings {
            number: Some("21".into()),
            ..PortSettings::new(1)
        },
    )
    .unwrap();
    let cases: &[(PortSettings, &str)] = &[
        (PortSettings::new(0), "0 is not a port number (1 to 64)"),
        (PortSettings::new(65), "65 is not a port number (1 to 64)"),
        (
            PortSettings {
                number: Some("101".into()),
                ..PortSettings::new(2)
            },
            "number 101 is already an extension",
        ),
        (
            PortSettings {
                number: Some("21".into()),
                ..PortSettings::new(2)
            },
            "number 21 is already another port",
        ),
        (
            PortSettings {
                number: Some("2x".into()),
                ..PortSettings::new(2)
            },
            "only digits 0-9 are allowed",
        ),
        (
            PortSettings {
                name: Some(" ".into()),
                ..PortSettings::new(2)
            },
            "must not be empty",
        ),
    ];
    for (s, msg) in cases {
        let e = db.set_port_settings(&ctl(T0), s).unwrap_err();
        assert!(e.to_string().contains(msg), "{s:?}: {e}");
    }
    // Port 1 may keep its own number.
    db.set_port_settings(
        &ctl(T0 + 1),
        &PortSettings {
            number: Some("21".into()),
            country: Some(Country::Us),
            ..PortSettings::new(1)
        },
    )
    .unwrap();
    // A value written behind the store's back is reported, not trusted.
    let raw = rusqlite::Connection::open(Store::db_path(tmp.path())).unwrap();
    let e = raw
        .execute("UPDATE ports SET country = 'XX' WHERE port = 1", [])
        .unwrap_err();
    assert!(e.to_string().contains("CHECK"), "{e}");
}

#[test]
fn port_status_is_replaced_per_port_and_cleared_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut db = Store::open(tmp.path()).unwrap();
    let row = |port: u32, hook: &str, faulty: Option<&str>| PortStatusRow {
        port,
        number: format!("2{port}"),
        hook: hook.into(),
        linefeed: "forward".into(),
        call: "idle".into(),
        faulty: faulty.map(str::to_owned),
        updated_at: T0,
    };
    db.write_port_status(&row(1, "on", None)).unwrap();
    db.write_port_status(&row(2, "on", Some("SLIC ID 0x00, expected 0xc3")))
        .unwrap();
    db.write_port_status(&row(1, "off", None)).unwrap();
    let got = Store::open(tmp.path()).unwrap().port_statuses().unwrap();
    assert_eq!(
        got,
        vec![
            row(1, "off", None),
            row(2, "on", Some("SLIC ID 0x00, expected 0xc3"))
        ]
    );
    db.clear_port_status().unwrap();
    assert_eq!(db.port_statuses().unwrap(), vec![]);
}
