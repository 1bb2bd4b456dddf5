//! The store against real SQLite files in temporary directories.
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use pbx_sip::auth::{ha1, Algorithm};
use pbxd::store::{
    validate_number, validate_password, AuditCtx, Binding, Store, StoreError, DEFAULT_REALM,
    SCHEMA_VERSION,
};

const T0: i64 = 1_763_700_000;

fn ctl(now_unix: i64) -> AuditCtx<'static> {
    AuditCtx {
        actor: "pbxctl",
        source: "cli",
        now_unix,
    }
}

fn raw(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(Store::db_path(dir)).unwrap()
}

fn binding(aor: &str, contact: &str, expires_at: i64) -> Binding {
    Binding {
        aor: aor.into(),
        contact: contact.into(),
        instance: Some("<urn:uuid:00000000-0000-1000-8000-000a95a0e128>".into()),
        call_id: "a84b4c76e66710@pc33".into(),
        cseq: 7,
        expires_at,
        transport: "udp".into(),
        source: "192.0.2.10:5062".parse().unwrap(),
        user_agent: Some("Yealink T46U".into()),
        q_milli: Some(500),
    }
}

#[test]
fn migrates_an_empty_directory_and_sets_pragmas() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested/data");
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.path(), dir.join("pbx.db"));

    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    // HA1s are password equivalents: only the owner may read the files.
    for file in ["pbx.db", "pbx.db-wal", "pbx.db-shm"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }

    let conn = raw(&dir);
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.sort();
    assert_eq!(
        tables,
        [
            "alerts",
            "audit_log",
            "auth_blocks",
            "call_notes",
            "call_records",
            "call_settings",
            "extensions",
            "external_policy",
            "gsm_settings",
            "gsm_status",
            "phonebook",
            "phonebook_numbers",
            "port_status",
            "ports",
            "registrations",
            "ring_group_members",
            "ring_groups",
            "settings",
            "sms",
            "trunk_numbers",
            "trunk_status",
            "trunks",
            "web_users"
        ]
    );
    assert_eq!(store.realm().unwrap(), DEFAULT_REALM);
}

#[test]
fn reopen_keeps_data_and_the_nonce_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = {
        let mut store = Store::open(tmp.path()).unwrap();
        store
            .add_extension(&ctl(T0), "101", Some("Reception"), "correct horse")
            .unwrap();
        store
            .save_binding(&binding(
                "sip:101@pbx.local",
                "sip:101@192.0.2.10:5062",
                T0 + 600,
            ))
            .unwrap();
        store.nonce_secret().unwrap()
    };
    assert_ne!(secret, [0u8; 32]);
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.nonce_secret().unwrap(), secret);
    let ext = store.get_extension("101").unwrap().unwrap();
    assert_eq!(ext.name.as_deref(), Some("Reception"));
    assert_eq!(store.load_bindings(T0).unwrap().len(), 1);

    // A different database gets a different secret.
    let other = tempfile::tempdir().unwrap();
    assert_ne!(
        Store::open(other.path()).unwrap().nonce_secret().unwrap(),
        secret
    );
}

#[test]
fn a_newer_schema_is_refused_with_the_exact_error() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Store::open(tmp.path()).unwrap());
    raw(tmp.path())
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let err = Store::open(tmp.path()).unwrap_err();
    assert_eq!(
        err,
        StoreError::SchemaTooNew {
            found: SCHEMA_VERSION + 1,
            supported: SCHEMA_VERSION
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "database schema version {} is newer than this pbxd ({}); refusing to start",
            SCHEMA_VERSION + 1,
            SCHEMA_VERSION
        )
    );
    // Nothing was changed: the version is still the newer one.
    let v: i64 = raw(tmp.path())
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let path = Store::db_path(tmp.path());
    let junk =
        b"this is a text file, not SQLite, and it is long enough to have a header...".repeat(20);
    std::fs::write(&path, &junk).unwrap();
    let err = Store::open(tmp.path()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { path: p, .. } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains("is corrupt"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        junk,
        "the file must not be touched"
    );
}

#[test]
fn damaged_pages_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(tmp.path()).unwrap();
        for n in 200..400 {
            store
                .add_extension(
                    &ctl(T0),
                    &n.to_string(),
                    Some("Someone with a long name"),
                    "password123",
                )
                .unwrap();
        }
    }
    // Fold the WAL into the main file so the damage below hits real data.
    raw(tmp.path())
        .pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
    let path = Store::db_path(tmp.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(
        bytes.len() > 4 * page,
        "need several pages, got {}",
        bytes.len()
    );
    // Scribble over the middle of pages 2.. (keep the header page intact).
    for p in 1..bytes.len() / page {
        for b in &mut bytes[p * page + 8..p * page + 200] {
            *b = 0xA5;
        }
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(tmp.path()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn duplicate_extension_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    store
        .add_extension(&ctl(T0), "101", None, "password-one")
        .unwrap();
    assert_eq!(
        store.add_extension(&ctl(T0), "101", Some("Other"), "password-two"),
        Err(StoreError::DuplicateExtension("101".into()))
    );
    // The first one is unchanged.
    let ext = store.get_extension("101").unwrap().unwrap();
    assert_eq!(ext.name, None);
    assert_eq!(
        ext.ha1_md5,
        ha1(Algorithm::Md5, "101", DEFAULT_REALM, "password-one")
    );
}

#[test]
fn only_ha1s_are_stored_never_the_password() {
    let tmp = tempfile::tempdir().unwrap();
    let password = "Tr0ub4dor&3-unique-marker";
    let new_password = "second-unique-marker-pw";
    {
        let mut store = Store::open(tmp.path()).unwrap();
        store
            .add_extension(&ctl(T0), "2001", Some("Lab"), password)
            .unwrap();
        let ext = store.get_extension("2001").unwrap().unwrap();
        assert_eq!(ext.realm, "pbx.local");
        assert_eq!(
            ext.ha1_md5,
            ha1(Algorithm::Md5, "2001", "pbx.local", password)
        );
        assert_eq!(
            ext.ha1_sha256,
            ha1(Algorithm::Sha256, "2001", "pbx.local", password)
        );
        assert!(ext.enabled);
        store
            .set_password(&ctl(T0 + 1), "2001", new_password)
            .unwrap();
        let ext = store.get_extension("2001").unwrap().unwrap();
        assert_eq!(
            ext.ha1_sha256,
            ha1(Algorithm::Sha256, "2001", "pbx.local", new_password)
        );
    }
    // Checkpoint so everything is in the main file, then look at every byte on disk.
    raw(tmp.path())
        .pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for secret in [password, new_password] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "password found in the database files"
            );
        }
    }
}

#[test]
fn stored_ha1s_are_h_of_number_realm_password() {
    // Expected values from coreutils: printf '%s' '101:pbx.local:Circle Of Life' | md5sum
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    store
        .add_extension(&ctl(T0), "101", None, "Circle Of Life")
        .unwrap();
    let ext = store.get_extension("101").unwrap().unwrap();
    assert_eq!(ext.ha1_md5, "d95e5620939fa093a05bce515f4ad5d4");
    assert_eq!(
        ext.ha1_sha256,
        "43084705b8a5678bfdea5cef224d07f89e845182284874f766837d91e7a60b73"
    );
    assert_eq!(ext.ha1(Algorithm::Md5), ext.ha1_md5);
    assert_eq!(ext.ha1(Algorithm::Sha256), ext.ha1_sha256);
}

#[test]
fn numbering_rule() {
    struct Case {
        number: &'static str,
        ok: bool,
        msg: &'static str,
    }
    let cases = [
        Case {
            number: "10",
            ok: true,
            msg: "two digits",
        },
        Case {
            number: "101",
            ok: true,
            msg: "three digits",
        },
        Case {
            number: "999999",
            ok: true,
            msg: "six digits",
        },
        Case {
            number: "113",
            ok: true,
            msg: "near but not an emergency number",
        },
        Case {
            number: "1",
            ok: false,
            msg: "too short",
        },
        Case {
            number: "1234567",
            ok: false,
            msg: "too long",
        },
        Case {
            number: "",
            ok: false,
            msg: "empty",
        },
        Case {
            number: "0101",
            ok: false,
            msg: "leading 0 is the outside line",
        },
        Case {
            number: "10a",
            ok: false,
            msg: "letters",
        },
        Case {
            number: "+49",
            ok: false,
            msg: "plus",
        },
        Case {
            number: "１０１",
            ok: false,
            msg: "non-ASCII digits",
        },
        Case {
            number: "110",
            ok: false,
            msg: "police",
        },
        Case {
            number: "112",
            ok: false,
            msg: "fire and ambulance",
        },
        Case {
            number: "124124",
            ok: false,
            msg: "sea rescue",
        },
        Case {
            number: "11",
            ok: false,
            msg: "prefix of 110/112",
        },
        Case {
            number: "12",
            ok: false,
            msg: "prefix of 124124",
        },
        Case {
            number: "12412",
            ok: false,
            msg: "prefix of 124124",
        },
        Case {
            number: "1100",
            ok: false,
            msg: "starts with 110",
        },
        Case {
            number: "11234",
            ok: false,
            msg: "starts with 112",
        },
    ];
    for c in cases {
        assert_eq!(
            validate_number(c.number).is_ok(),
            c.ok,
            "{}: {}",
            c.number,
            c.msg
        );
    }
}

#[test]
fn bad_values_are_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let by = ctl(T0);
    assert_eq!(
        store.add_extension(&by, "112", None, "password123"),
        Err(StoreError::InvalidNumber {
            number: "112".into(),
            reason: "overlaps an emergency number (110, 112, 124124)"
        })
    );
    assert_eq!(
        store.add_extension(&by, "101", None, "short"),
        Err(StoreError::InvalidPassword("shorter than 8 characters"))
    );
    assert_eq!(
        store.add_extension(&by, "12345678", None, "12345678"),
        Err(StoreError::InvalidNumber {
            number: "12345678".into(),
            reason: "must have 2 to 6 digits"
        })
    );
    assert_eq!(
        store.add_extension(&by, "123456", None, "123456"),
        Err(StoreError::InvalidPassword("shorter than 8 characters"))
    );
    assert_eq!(
        store.add_extension(&by, "101", Some("tab\there"), "password123"),
        Err(StoreError::InvalidName("contains control characters"))
    );
    assert_eq!(
        store.add_extension(&by, "101", Some(&"x".repeat(65)), "password123"),
        Err(StoreError::InvalidName("longer than 64 characters"))
    );
    assert_eq!(
        store.add_extension(&by, "101", None, "pass\nword123"),
        Err(StoreError::InvalidPassword("contains control characters"))
    );
    store
        .add_extension(&by, "101", Some(&"ü".repeat(64)), "password123")
        .unwrap();
    assert_eq!(store.list_extensions().unwrap().len(), 1);
    assert_eq!(store.audit_entries(100).unwrap().len(), 1);
}

#[test]
fn password_equal_to_number_is_refused() {
    // Numbers have at most 6 digits, so the length rule already catches "101"/"101";
    // the equality rule is checked on its own so it survives a change of either limit.
    assert_eq!(
        validate_password("101", "101"),
        Err(StoreError::InvalidPassword("shorter than 8 characters"))
    );
    assert_eq!(
        validate_password("12345678", "12345678"),
        Err(StoreError::InvalidPassword(
            "must not be the extension number"
        ))
    );
    assert_eq!(validate_password("101", "101-and-more"), Ok(()));
}

#[test]
fn list_remove_set_password_and_unknown_extensions() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    for (n, name) in [("30", Some("Kitchen")), ("101", None), ("20", Some("Boss"))] {
        store
            .add_extension(&ctl(T0), n, name, "password123")
            .unwrap();
    }
    let numbers: Vec<String> = store
        .list_extensions()
        .unwrap()
        .into_iter()
        .map(|e| e.number)
        .collect();
    assert_eq!(numbers, ["101", "20", "30"]);

    store.remove_extension(&ctl(T0), "20").unwrap();
    assert_eq!(store.get_extension("20").unwrap(), None);
    assert_eq!(
        store.remove_extension(&ctl(T0), "20"),
        Err(StoreError::UnknownExtension("20".into()))
    );
    assert_eq!(
        store.set_password(&ctl(T0), "20", "password123"),
        Err(StoreError::UnknownExtension("20".into()))
    );
    store.set_extension_enabled(&ctl(T0), "30", false).unwrap();
    assert!(!store.get_extension("30").unwrap().unwrap().enabled);
}

#[test]
fn bindings_round_trip_and_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let a = binding("sip:101@pbx.local", "sip:101@192.0.2.10:5062", T0 + 3600);
    let mut b = binding(
        "sip:101@pbx.local",
        "sip:101@[2001:db8::1]:5060;transport=tcp",
        T0 + 60,
    );
    b.source = "[2001:db8::1]:40000".parse::<SocketAddr>().unwrap();
    b.transport = "tcp".into();
    b.instance = None;
    b.user_agent = None;
    b.q_milli = None;
    let c = binding("sip:102@pbx.local", "sip:102@192.0.2.11", T0 + 10);
    for x in [&a, &b, &c] {
        store.save_binding(x).unwrap();
    }
    assert_eq!(
        store.load_bindings(T0).unwrap(),
        vec![a.clone(), b.clone(), c.clone()]
    );

    // A refresh replaces the row with the same (aor, contact).
    let mut a2 = a.clone();
    a2.cseq = 8;
    a2.expires_at = T0 + 7200;
    store.save_binding(&a2).unwrap();
    assert_eq!(
        store.load_bindings(T0).unwrap(),
        vec![a2.clone(), b.clone(), c.clone()]
    );

    // Expired at exactly expires_at.
    assert_eq!(
        store.load_bindings(T0 + 10).unwrap(),
        vec![a2.clone(), b.clone()]
    );
    assert_eq!(store.load_bindings(T0 + 60).unwrap(), vec![a2.clone()]);
    assert_eq!(store.delete_expired(T0 + 60).unwrap(), 2);
    assert_eq!(store.load_bindings(T0).unwrap(), vec![a2.clone()]);

    assert!(store.delete_binding(&a2.aor, &a2.contact).unwrap());
    assert!(!store.delete_binding(&a2.aor, &a2.contact).unwrap());
    store.save_binding(&a).unwrap();
    store.save_binding(&b).unwrap();
    assert_eq!(store.delete_bindings_for("sip:101@pbx.local").unwrap(), 2);
    assert!(store.load_bindings(T0).unwrap().is_empty());
}

#[test]
fn blocks_lapse_and_can_be_lifted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let v4: IpAddr = "198.51.100.7".parse().unwrap();
    let v6: IpAddr = "2001:db8::7".parse().unwrap();
    let pbxd = AuditCtx {
        actor: "pbxd",
        source: "sip",
        now_unix: T0,
    };
    store
        .add_block(&pbxd, v4, "10 failed REGISTERs", T0 + 300)
        .unwrap();
    store
        .add_block(&pbxd, v6, "bad nonce flood", T0 + 60)
        .unwrap();
    let active = store.active_blocks(T0).unwrap();
    assert_eq!(active.len(), 2);
    assert_eq!(active[1].ip, v6, "ordered by address text");
    assert_eq!(active[0].ip, v4);
    assert_eq!(active[0].reason, "10 failed REGISTERs");
    assert_eq!(active[0].blocked_at, T0);
    assert_eq!(active[0].until, T0 + 300);

    // An IPv4-mapped IPv6 source is the same host.
    let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
    assert!(store.is_blocked(mapped, T0).unwrap());
    assert!(!store.is_blocked(v6, T0 + 60).unwrap(), "lapsed at until");
    assert_eq!(store.active_blocks(T0 + 60).unwrap().len(), 1);
    assert_eq!(store.delete_expired_blocks(T0 + 60).unwrap(), 1);

    assert!(store.remove_block(&ctl(T0 + 1), v4).unwrap());
    assert!(!store.remove_block(&ctl(T0 + 1), v4).unwrap());
    assert!(!store.is_blocked(v4, T0 + 2).unwrap());
}

#[test]
fn changes_are_audited_without_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    store
        .add_extension(&ctl(T0), "101", Some("Reception"), "password-secret-1")
        .unwrap();
    store
        .set_password(&ctl(T0 + 1), "101", "password-secret-2")
        .unwrap();
    store.remove_extension(&ctl(T0 + 2), "101").unwrap();
    let web = AuditCtx {
        actor: "web:alice",
        source: "192.0.2.5",
        now_unix: T0 + 3,
    };
    store.audit(&web, "login", "role=admin").unwrap();

    let entries = store.audit_entries(10).unwrap();
    let summary: Vec<(i64, &str, &str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e.at,
                e.actor.as_str(),
                e.action.as_str(),
                e.detail.as_str(),
                e.source.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (T0 + 3, "web:alice", "login", "role=admin", "192.0.2.5"),
            (T0 + 2, "pbxctl", "extension.remove", "number=101", "cli"),
            (
                T0 + 1,
                "pbxctl",
                "extension.set_password",
                "number=101",
                "cli"
            ),
            (
                T0,
                "pbxctl",
                "extension.add",
                "number=101 name=\"Reception\"",
                "cli"
            ),
        ]
    );
    assert_eq!(store.audit_entries(2).unwrap().len(), 2);
    for e in &entries {
        assert!(!e.detail.contains("secret"), "{e:?}");
    }
    assert_eq!(store.prune_audit(T0 + 2).unwrap(), 2);
    assert_eq!(store.audit_entries(10).unwrap().len(), 2);
}

#[test]
fn a_data_dir_that_is_a_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("data");
    std::fs::write(&file, b"x").unwrap();
    assert_eq!(
        Store::open(&file).unwrap_err(),
        StoreError::DataDir {
            path: file.clone(),
            reason: "not a directory".into()
        }
    );
    let below = file.join("sub");
    let err = Store::open(&below).unwrap_err();
    assert!(
        matches!(&err, StoreError::DataDir { path, .. } if *path == below),
        "{err:?}"
    );
}

#[test]
fn two_connections_see_each_others_writes() {
    // pbxd and pbxctl hold the file open at the same time.
    let tmp = tempfile::tempdir().unwrap();
    let mut daemon = Store::open(tmp.path()).unwrap();
    let mut ctl_store = Store::open(tmp.path()).unwrap();
    ctl_store
        .add_extension(&ctl(T0), "101", None, "password123")
        .unwrap();
    assert!(daemon.get_extension("101").unwrap().is_some());
    daemon
        .save_binding(&binding("sip:101@pbx.local", "sip:101@192.0.2.10", T0 + 60))
        .unwrap();
    assert_eq!(ctl_store.load_bindings(T0).unwrap().len(), 1);
    ctl_store.remove_extension(&ctl(T0), "101").unwrap();
    assert_eq!(daemon.get_extension("101").unwrap(), None);
}

#[test]
fn concurrent_first_opens_migrate_once_and_share_one_secret() {
    // pbxd starting while an installer runs pbxctl on a fresh data directory.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let secrets: Vec<[u8; 32]> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| Store::open(&dir).unwrap().nonce_secret().unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        secrets.iter().all(|s| *s == secrets[0]),
        "one secret for all"
    );
    let v: i64 = raw(&dir)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
}
