//! The store's call side: schema V2 migration, call records, CSV export, per-extension call
//! settings, ring groups and site settings, against real SQLite files.
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::Path;

use pbxd::store::{
    cdr_csv_header, to_csv_row, AuditCtx, CallDirection, CallRecord, CallSettings, CdrQuery,
    Disposition, ForwardTarget, HangupSide, LegQuality, OutboundClass, RingGroup, RingStrategy,
    SiteSettings, Store, StoreError, StoredCallRecord, SCHEMA_VERSION,
};

const T0: i64 = 1_763_700_000;
/// 2025-11-21T04:40:00Z in milliseconds.
const MS0: i64 = T0 * 1000;

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

/// A store with extensions 101, 102 and 103.
fn store_with_extensions(dir: &Path) -> Store {
    let mut store = Store::open(dir).unwrap();
    for n in ["101", "102", "103"] {
        store
            .add_extension(&ctl(T0), n, None, &format!("password-{n}"))
            .unwrap();
    }
    store
}

fn record(start_ms: i64) -> CallRecord {
    CallRecord {
        call_id: format!("call-{start_ms}@192.0.2.10"),
        caller: "101".into(),
        caller_name: Some("Reception".into()),
        dialled: "102".into(),
        normalised: None,
        destination: Some("102".into()),
        direction: CallDirection::Internal,
        route: Some("internal".into()),
        source_ip: Some("192.0.2.10".parse().unwrap()),
        dest_ip: Some("2001:db8::7".parse().unwrap()),
        start_ms,
        answer_ms: Some(start_ms + 4_000),
        end_ms: start_ms + 65_000,
        disposition: Disposition::Answered,
        reason: None,
        sip_status: None,
        hangup: Some(HangupSide::Callee),
        quality_caller: Some(LegQuality {
            loss_pct: 0.5,
            jitter_ms: 3.25,
            rtt_ms: Some(12.0),
            mos: 4.25,
        }),
        quality_callee: Some(LegQuality {
            loss_pct: 0.0,
            jitter_ms: 1.5,
            rtt_ms: None,
            mos: 4.5,
        }),
        forwarded_by: None,
    }
}

fn unanswered(start_ms: i64, disposition: Disposition) -> CallRecord {
    CallRecord {
        answer_ms: None,
        end_ms: start_ms + 12_000,
        disposition,
        hangup: Some(HangupSide::Caller),
        quality_caller: None,
        quality_callee: None,
        ..record(start_ms)
    }
}

/// Version 1 of the schema, verbatim from the released firmware (src/store/schema.rs),
/// so that the migration to V2 is tested on a database as it exists in the field.
const V1: &str = "
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE extensions (
    number     TEXT PRIMARY KEY NOT NULL
               CHECK (length(number) BETWEEN 2 AND 6 AND number NOT GLOB '*[^0-9]*'),
    name       TEXT CHECK (name IS NULL OR length(name) BETWEEN 1 AND 64),
    realm      TEXT NOT NULL,
    ha1_md5    TEXT NOT NULL CHECK (length(ha1_md5) = 32),
    ha1_sha256 TEXT NOT NULL CHECK (length(ha1_sha256) = 64),
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE registrations (
    aor        TEXT NOT NULL,
    contact    TEXT NOT NULL,
    instance   TEXT,
    call_id    TEXT NOT NULL,
    cseq       INTEGER NOT NULL CHECK (cseq >= 0),
    expires_at INTEGER NOT NULL,
    transport  TEXT NOT NULL,
    source     TEXT NOT NULL,
    user_agent TEXT,
    q_milli    INTEGER CHECK (q_milli IS NULL OR q_milli BETWEEN 0 AND 1000),
    PRIMARY KEY (aor, contact)
) WITHOUT ROWID;
CREATE INDEX registrations_expires_at ON registrations (expires_at);
CREATE TABLE auth_blocks (
    ip            TEXT PRIMARY KEY NOT NULL,
    reason        TEXT NOT NULL,
    blocked_at    INTEGER NOT NULL,
    blocked_until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
PRAGMA user_version = 1;
";

#[test]
fn migration_from_v1_keeps_extensions_and_registrations() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let conn = raw(dir);
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO settings VALUES ('sip_realm', 'pbx.local'), ('nonce_secret', '{}');
             INSERT INTO extensions VALUES
                 ('101', 'Reception', 'pbx.local', '{}', '{}', 1, {T0}, {T0});
             INSERT INTO registrations VALUES ('sip:101@pbx.local', 'sip:101@192.0.2.10:5062',
                 NULL, 'abc@pc33', 7, {}, 'udp', '192.0.2.10:5062', 'Yealink', 500);
             INSERT INTO audit_log (at, actor, action, detail, source)
                 VALUES ({T0}, 'pbxctl', 'extension.add', 'number=101', 'cli');",
            "ab".repeat(32),
            "a".repeat(32),
            "b".repeat(64),
            T0 + 600,
        ))
        .unwrap();
    }

    let mut store = Store::open(dir).unwrap();
    let v: i64 = raw(dir)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    const { assert!(SCHEMA_VERSION >= 2) };
    let ext = store.get_extension("101").unwrap().unwrap();
    assert_eq!(ext.name.as_deref(), Some("Reception"));
    assert_eq!(ext.ha1_md5, "a".repeat(32));
    let bindings = store.load_bindings(T0).unwrap();
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].contact, "sip:101@192.0.2.10:5062");
    assert_eq!(store.nonce_secret().unwrap(), [0xab; 32]);
    assert_eq!(store.audit_entries(10).unwrap().len(), 1);

    // The new tables work on the migrated file.
    assert_eq!(store.call_settings("101").unwrap(), CallSettings::default());
    assert_eq!(store.site_settings().unwrap(), SiteSettings::default());
    store
        .add_ring_group(&ctl(T0), &RingGroup::new("600", vec!["101".into()]))
        .unwrap();
    assert_eq!(store.insert_call_record(&record(MS0)).unwrap(), 1);
    drop(store);
    // Reopening does not migrate again.
    let store = Store::open(dir).unwrap();
    assert_eq!(store.ring_groups_of("101").unwrap(), ["600"]);
}

#[test]
fn billable_seconds() {
    struct Case {
        answer_after_ms: Option<i64>,
        talk_ms: i64,
        duration: u64,
        billable: u64,
        billed_60: u64,
        msg: &'static str,
    }
    let cases = [
        Case {
            answer_after_ms: None,
            talk_ms: 0,
            duration: 12,
            billable: 0,
            billed_60: 0,
            msg: "unanswered: nothing to bill",
        },
        Case {
            answer_after_ms: Some(2_000),
            talk_ms: 0,
            duration: 2,
            billable: 1,
            billed_60: 60,
            msg: "answered and hung up at once counts 1 s",
        },
        Case {
            answer_after_ms: Some(2_000),
            talk_ms: 300,
            duration: 3,
            billable: 1,
            billed_60: 60,
            msg: "0.3 s counts 1 s",
        },
        Case {
            answer_after_ms: Some(2_000),
            talk_ms: 59_100,
            duration: 62,
            billable: 60,
            billed_60: 60,
            msg: "59.1 s rounds up to 60",
        },
        Case {
            answer_after_ms: Some(1_000),
            talk_ms: 60_000,
            duration: 61,
            billable: 60,
            billed_60: 60,
            msg: "exactly one tick",
        },
        Case {
            answer_after_ms: Some(500),
            talk_ms: 61_000,
            duration: 62,
            billable: 61,
            billed_60: 120,
            msg: "61 s is two started minutes",
        },
        Case {
            answer_after_ms: Some(0),
            talk_ms: 3_600_001,
            duration: 3601,
            billable: 3601,
            billed_60: 3660,
            msg: "long call",
        },
    ];
    for c in cases {
        let mut r = record(MS0);
        match c.answer_after_ms {
            Some(a) => {
                r.answer_ms = Some(MS0 + a);
                r.end_ms = MS0 + a + c.talk_ms;
            }
            None => r = unanswered(MS0, Disposition::NoAnswer),
        }
        assert_eq!(r.duration_secs(), c.duration, "{}", c.msg);
        assert_eq!(r.billable_secs(), c.billable, "{}", c.msg);
        assert_eq!(r.billed_secs(60), c.billed_60, "{}", c.msg);
        assert_eq!(r.billed_secs(1), c.billable, "{}: tick 1", c.msg);
        assert_eq!(r.billed_secs(0), c.billable, "{}: tick 0 is 1", c.msg);
    }
    let mut r = record(MS0);
    r.answer_ms = Some(MS0);
    r.end_ms = MS0 + 61_000;
    assert_eq!(r.billed_secs(10), 70);
}

#[test]
fn call_records_round_trip_and_query() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();

    let full = record(MS0);
    let id = store.insert_call_record(&full).unwrap();
    let got = store.call_records(&CdrQuery::default()).unwrap();
    assert_eq!(got, [StoredCallRecord { id, record: full }]);

    // An outbound call to a blocked range, with peer text that needs cleaning.
    let blocked = CallRecord {
        caller_name: Some("Evil\r\nName\u{7}".into()),
        dialled: "0900123456".into(),
        normalised: Some("+49900123456".into()),
        destination: None,
        direction: CallDirection::Outbound,
        route: None,
        dest_ip: None,
        reason: Some("blocked range 0900".into()),
        sip_status: Some(403),
        hangup: Some(HangupSide::System),
        ..unanswered(MS0 + 1_000, Disposition::Blocked)
    };
    let id2 = store.insert_call_record(&blocked).unwrap();
    assert!(id2 > id);
    let got = store
        .call_records(&CdrQuery {
            since_ms: Some(MS0 + 1),
            ..CdrQuery::default()
        })
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].record.caller_name.as_deref(), Some("Evil  Name "));
    assert_eq!(
        got[0].record,
        CallRecord {
            caller_name: Some("Evil  Name ".into()),
            ..blocked
        }
    );

    // A reason longer than 256 characters is cut, not refused.
    let long = CallRecord {
        reason: Some("x".repeat(1000)),
        ..unanswered(MS0 + 2_000, Disposition::Failed)
    };
    store.insert_call_record(&long).unwrap();
    let got = store
        .call_records(&CdrQuery {
            limit: 1,
            ..CdrQuery::default()
        })
        .unwrap();
    assert_eq!(got[0].record.reason.as_deref().unwrap().len(), 256);

    // A NaN from a broken RTCP report leaves the quality unknown and keeps the record.
    let nan = CallRecord {
        quality_caller: Some(LegQuality {
            loss_pct: f32::NAN,
            jitter_ms: 1.0,
            rtt_ms: None,
            mos: 4.0,
        }),
        ..record(MS0 + 3_000)
    };
    store.insert_call_record(&nan).unwrap();
    let got = store
        .call_records(&CdrQuery {
            limit: 1,
            ..CdrQuery::default()
        })
        .unwrap();
    assert_eq!(got[0].record.quality_caller, None);
    assert_eq!(got[0].record.quality_callee, nan.quality_callee);
}

#[test]
fn a_burst_of_call_records_is_one_transaction_that_skips_invalid_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let mut burst: Vec<CallRecord> = (0..50).map(|i| record(MS0 + i * 1000)).collect();
    burst[7].call_id = String::new();
    let refused = store.insert_call_records(&burst).unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, 7);
    let rows = store
        .call_records(&CdrQuery {
            limit: 1000,
            ..CdrQuery::default()
        })
        .unwrap();
    assert_eq!(rows.len(), 49, "the other 49 are stored");
}

#[test]
fn invalid_call_records_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let cases: [(CallRecord, &str); 6] = [
        (
            CallRecord {
                call_id: String::new(),
                ..record(MS0)
            },
            "empty call id",
        ),
        (
            CallRecord {
                end_ms: MS0 - 1,
                answer_ms: None,
                disposition: Disposition::Failed,
                ..record(MS0)
            },
            "ends before it starts",
        ),
        (
            CallRecord {
                answer_ms: Some(MS0 + 70_000),
                ..record(MS0)
            },
            "answer time outside the call",
        ),
        (
            CallRecord {
                answer_ms: None,
                ..record(MS0)
            },
            "an answer time goes with disposition answered, and only with it",
        ),
        (
            CallRecord {
                disposition: Disposition::Busy,
                ..record(MS0)
            },
            "an answer time goes with disposition answered, and only with it",
        ),
        (
            CallRecord {
                sip_status: Some(99),
                ..record(MS0)
            },
            "SIP status outside 100..=699",
        ),
    ];
    for (r, why) in cases {
        assert_eq!(
            store.insert_call_record(&r),
            Err(StoreError::InvalidCallRecord(why))
        );
    }
    assert_eq!(store.call_records(&CdrQuery::default()).unwrap(), []);
}

#[test]
fn call_records_paging_filters_and_purge() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    // 10 calls a minute apart; odd ones from 103 to an external number.
    for i in 0..10 {
        let mut r = record(MS0 + i * 60_000);
        if i % 2 == 1 {
            r.caller = "103".into();
            r.dialled = "0211123456".into();
            r.normalised = Some("+49211123456".into());
            r.destination = None;
            r.direction = CallDirection::Outbound;
        }
        store.insert_call_record(&r).unwrap();
    }
    let starts = |store: &Store, q: CdrQuery| -> Vec<i64> {
        store
            .call_records(&q)
            .unwrap()
            .iter()
            .map(|s| (s.record.start_ms - MS0) / 60_000)
            .collect()
    };
    assert_eq!(
        starts(&store, CdrQuery::default()),
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
        "newest first"
    );
    let page = |offset| CdrQuery {
        limit: 4,
        offset,
        ..CdrQuery::default()
    };
    assert_eq!(starts(&store, page(0)), [9, 8, 7, 6]);
    assert_eq!(starts(&store, page(4)), [5, 4, 3, 2]);
    assert_eq!(starts(&store, page(8)), [1, 0]);
    assert_eq!(starts(&store, page(12)), Vec::<i64>::new());
    assert_eq!(
        starts(
            &store,
            CdrQuery {
                since_ms: Some(MS0 + 3 * 60_000),
                until_ms: Some(MS0 + 7 * 60_000),
                ..CdrQuery::default()
            }
        ),
        [6, 5, 4, 3],
        "since inclusive, until exclusive"
    );
    assert_eq!(
        starts(
            &store,
            CdrQuery {
                extension: Some("103".into()),
                ..CdrQuery::default()
            }
        ),
        [9, 7, 5, 3, 1],
        "caller"
    );
    assert_eq!(
        starts(
            &store,
            CdrQuery {
                extension: Some("102".into()),
                since_ms: Some(MS0 + 4 * 60_000),
                limit: 2,
                ..CdrQuery::default()
            }
        ),
        [8, 6],
        "destination, with since and limit"
    );
    assert_eq!(store.purge_call_records(MS0 + 4 * 60_000).unwrap(), 4);
    assert_eq!(starts(&store, CdrQuery::default()), [9, 8, 7, 6, 5, 4]);
    assert_eq!(store.purge_call_records(MS0).unwrap(), 0);
}

/// A minimal RFC 4180 reader for one line, to check what a CSV consumer gets back.
fn parse_csv_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        let field = fields.last_mut().unwrap();
        match (quoted, c) {
            (false, '"') if field.is_empty() => quoted = true,
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, ',') => fields.push(String::new()),
            (_, c) => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quote in {line:?}");
    fields
}

#[test]
fn csv_rows() {
    let header = cdr_csv_header();
    assert_eq!(header.split(',').count(), 30);

    let full = StoredCallRecord {
        id: 7,
        record: CallRecord {
            start_ms: MS0 + 123,
            answer_ms: Some(MS0 + 4_000),
            end_ms: MS0 + 65_500,
            ..record(MS0 + 123)
        },
    };
    assert_eq!(
        to_csv_row(&full, 60),
        "7,call-1763700000123@192.0.2.10,2025-11-21T04:40:00.123Z,2025-11-21T04:40:04.000Z,\
         2025-11-21T04:41:05.500Z,66,62,120,internal,101,Reception,102,,102,internal,\
         192.0.2.10,2001:db8::7,answered,,,callee,0.50,3.2,12.0,4.25,0.00,1.5,,4.50,"
    );
    assert_eq!(
        parse_csv_line(&to_csv_row(&full, 60))[7],
        "120",
        "billed with the tick given"
    );
    assert_eq!(parse_csv_line(&to_csv_row(&full, 1))[7], "62");

    // Quoting (RFC 4180) and the formula guard (a leading apostrophe).
    let hostile = StoredCallRecord {
        id: 8,
        record: CallRecord {
            caller: "+4917612345678".into(),
            caller_name: Some("=HYPERLINK(\"http://x\",\"click\")".into()),
            dialled: "-1+1".into(),
            normalised: Some("@SUM(A1)".into()),
            destination: Some("\tTAB".into()),
            route: Some("trunk, \"main\"".into()),
            reason: Some("line one\r\nline two".into()),
            ..unanswered(MS0, Disposition::Failed)
        },
    };
    let line = to_csv_row(&hostile, 60);
    let fields = parse_csv_line(&line);
    let names: Vec<&str> = header.split(',').collect();
    assert_eq!(fields.len(), names.len(), "{line}");
    let field = |name: &str| fields[names.iter().position(|n| *n == name).unwrap()].as_str();
    assert_eq!(field("caller"), "'+4917612345678");
    assert_eq!(field("caller_name"), "'=HYPERLINK(\"http://x\",\"click\")");
    assert_eq!(field("dialled"), "'-1+1");
    assert_eq!(field("normalised"), "'@SUM(A1)");
    assert_eq!(field("destination"), "'\tTAB");
    assert_eq!(field("route"), "trunk, \"main\"");
    assert_eq!(field("reason"), "line one\r\nline two");
    assert_eq!(field("answer"), "");
    assert_eq!(field("billable_secs"), "0");
    assert!(
        line.contains(",\"'=HYPERLINK(\"\"http://x\"\",\"\"click\"\")\","),
        "{line}"
    );
    assert!(line.contains(",\"trunk, \"\"main\"\"\","), "{line}");
    // No field of the line starts a formula once a spreadsheet has unquoted it.
    for f in &fields {
        assert!(!f.starts_with(['=', '+', '-', '@', '\t', '\r']), "{f:?}");
    }
}

#[test]
fn forward_target_classification() {
    let internal = |n: &str| Ok(ForwardTarget::Internal(n.into()));
    let external = |n: &str| Ok(ForwardTarget::External(n.into()));
    let invalid = |t: &str, reason: &str| {
        Err(StoreError::InvalidValue {
            what: "forward target",
            reason: format!("{t:?}: {reason}"),
        })
    };
    let cases = [
        ("1002", internal("1002")),
        ("20", internal("20")),
        ("+4917612345678", external("+4917612345678")),
        ("017612345678", external("017612345678")),
        ("0211", external("0211")),
        ("1234567", external("1234567")),
        ("+112", external("+112")),
        (
            "112",
            Err(StoreError::InvalidNumber {
                number: "112".into(),
                reason: "overlaps an emergency number (110, 112, 124124)",
            }),
        ),
        (
            "5",
            Err(StoreError::InvalidNumber {
                number: "5".into(),
                reason: "must have 2 to 6 digits",
            }),
        ),
        (
            "+49",
            invalid("+49", "an external number has 3 to 20 digits"),
        ),
        (
            "012345678901234567890",
            invalid(
                "012345678901234567890",
                "an external number has 3 to 20 digits",
            ),
        ),
        (
            "",
            invalid(
                "",
                "must be an internal number or an external number ([+]digits)",
            ),
        ),
        (
            "+",
            invalid(
                "+",
                "must be an internal number or an external number ([+]digits)",
            ),
        ),
        (
            "10 01",
            invalid(
                "10 01",
                "must be an internal number or an external number ([+]digits)",
            ),
        ),
        (
            "sip:x@y",
            invalid(
                "sip:x@y",
                "must be an internal number or an external number ([+]digits)",
            ),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(ForwardTarget::parse(text), want, "{text:?}");
    }
}

#[test]
fn call_settings_defaults_validation_and_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = store_with_extensions(tmp.path());
    assert_eq!(
        store.call_settings("101").unwrap(),
        CallSettings {
            outbound_class: OutboundClass::National,
            clir: false,
            dnd: false,
            forward_always: None,
            forward_busy: None,
            forward_noanswer: None,
            forward_noanswer_secs: 20,
            pickup_group: None,
        }
    );
    assert_eq!(
        store.call_settings("199"),
        Err(StoreError::UnknownExtension("199".into()))
    );

    let s = CallSettings {
        outbound_class: OutboundClass::Local,
        clir: true,
        dnd: true,
        forward_always: None,
        forward_busy: Some(ForwardTarget::Internal("102".into())),
        forward_noanswer: Some(ForwardTarget::Internal("103".into())),
        forward_noanswer_secs: 15,
        pickup_group: Some(3),
    };
    store.set_call_settings(&ctl(T0 + 1), "101", &s).unwrap();
    assert_eq!(store.call_settings("101").unwrap(), s);
    assert_eq!(store.call_settings("102").unwrap(), CallSettings::default());
    let entry = &store.audit_entries(1).unwrap()[0];
    assert_eq!(entry.action, "extension.call_settings");
    assert_eq!(
        entry.detail,
        "number=101 class=local clir=on dnd=on forward_always=off forward_busy=102 \
         forward_noanswer=103 noanswer_secs=15 pickup_group=3"
    );

    let refused = |store: &mut Store, s: CallSettings| store.set_call_settings(&ctl(T0), "101", &s);
    let invalid = |what, reason: &str| {
        Err(StoreError::InvalidValue {
            what,
            reason: reason.into(),
        })
    };
    for (secs, ok) in [(4, false), (5, true), (120, true), (121, false)] {
        let r = refused(
            &mut store,
            CallSettings {
                forward_noanswer_secs: secs,
                ..s.clone()
            },
        );
        if ok {
            assert_eq!(r, Ok(()), "{secs}");
        } else {
            assert_eq!(
                r,
                invalid("no-answer time", &format!("{secs} s is not 5 to 120 s"))
            );
        }
    }
    assert_eq!(
        refused(
            &mut store,
            CallSettings {
                pickup_group: Some(0),
                ..s.clone()
            }
        ),
        invalid("pickup group", "0 is not 1 to 99")
    );
    assert_eq!(
        refused(
            &mut store,
            CallSettings {
                forward_always: Some(ForwardTarget::Internal("101".into())),
                ..s.clone()
            }
        ),
        invalid("forward target", "101 cannot forward to itself")
    );
    assert_eq!(
        refused(
            &mut store,
            CallSettings {
                forward_always: Some(ForwardTarget::Internal("150".into())),
                ..s.clone()
            }
        ),
        invalid(
            "forward target",
            "150 is neither an extension nor a ring group"
        )
    );
    assert_eq!(
        store.set_call_settings(&ctl(T0), "199", &s),
        Err(StoreError::UnknownExtension("199".into()))
    );

    // External targets need the site's permission.
    let external = CallSettings {
        forward_always: Some(ForwardTarget::External("+4917612345678".into())),
        ..s.clone()
    };
    assert_eq!(
        refused(&mut store, external.clone()),
        Err(StoreError::ExternalForwardingDisabled(
            "+4917612345678".into()
        ))
    );
    let site = SiteSettings {
        allow_external_forwarding: true,
        ..SiteSettings::default()
    };
    store.set_site_settings(&ctl(T0), &site).unwrap();
    store.set_call_settings(&ctl(T0), "101", &external).unwrap();
    assert_eq!(store.call_settings("101").unwrap(), external);

    // A ring group is a valid internal target.
    store
        .add_ring_group(&ctl(T0), &RingGroup::new("600", vec!["102".into()]))
        .unwrap();
    let to_group = CallSettings {
        forward_always: Some(ForwardTarget::Internal("600".into())),
        ..s.clone()
    };
    store.set_call_settings(&ctl(T0), "101", &to_group).unwrap();

    // Removing the extension removes its settings row.
    store.remove_extension(&ctl(T0), "101").unwrap();
    let rows: i64 = raw(tmp.path())
        .query_row("SELECT count(*) FROM call_settings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

#[test]
fn ring_groups_and_numbering() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = store_with_extensions(tmp.path());
    let sales = RingGroup {
        number: "600".into(),
        name: Some("Sales".into()),
        strategy: RingStrategy::Ordered,
        ring_secs: 15,
        noanswer_target: Some(ForwardTarget::Internal("101".into())),
        members: vec!["103".into(), "101".into(), "102".into()],
    };
    store.add_ring_group(&ctl(T0), &sales).unwrap();
    assert_eq!(store.ring_group("600").unwrap(), Some(sales.clone()));
    assert_eq!(store.ring_group("601").unwrap(), None);
    assert_eq!(store.ring_groups_of("101").unwrap(), ["600"]);

    // A number is either an extension or a ring group, whichever API is used.
    assert_eq!(
        store.add_ring_group(&ctl(T0), &RingGroup::new("101", vec!["102".into()])),
        Err(StoreError::NumberInUse {
            number: "101".into(),
            used_by: "an extension"
        })
    );
    assert_eq!(
        store.add_extension(&ctl(T0), "600", None, "password-600"),
        Err(StoreError::NumberInUse {
            number: "600".into(),
            used_by: "a ring group"
        })
    );
    assert_eq!(
        store.add_ring_group(&ctl(T0), &sales),
        Err(StoreError::DuplicateRingGroup("600".into()))
    );
    // The schema refuses it too (another writer, a future API).
    let err = raw(tmp.path())
        .execute(
            "INSERT INTO ring_groups (number, strategy, created_at, updated_at)
             VALUES ('102', 'ordered', 0, 0)",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("number is an extension"), "{err}");

    // Members must be extensions; nothing is written when one is not.
    assert_eq!(
        store.add_ring_group(
            &ctl(T0),
            &RingGroup::new("601", vec!["101".into(), "150".into()])
        ),
        Err(StoreError::UnknownExtension("150".into()))
    );
    assert_eq!(store.ring_group("601").unwrap(), None);
    let invalid = |what, reason: &str| {
        Err(StoreError::InvalidValue {
            what,
            reason: reason.into(),
        })
    };
    assert_eq!(
        store.add_ring_group(
            &ctl(T0),
            &RingGroup::new("601", vec!["101".into(), "101".into()])
        ),
        invalid("ring group members", "101 is listed twice")
    );
    assert_eq!(
        store.add_ring_group(
            &ctl(T0),
            &RingGroup {
                ring_secs: 4,
                ..RingGroup::new("601", vec![])
            }
        ),
        invalid("ring time", "4 s is not 5 to 300 s")
    );
    assert_eq!(
        store.add_ring_group(
            &ctl(T0),
            &RingGroup {
                noanswer_target: Some(ForwardTarget::Internal("601".into())),
                ..RingGroup::new("601", vec![])
            }
        ),
        invalid(
            "no-answer target",
            "ring group 601 cannot forward to itself"
        )
    );
    assert_eq!(
        store.add_ring_group(
            &ctl(T0),
            &RingGroup {
                noanswer_target: Some(ForwardTarget::External("+49211123456".into())),
                ..RingGroup::new("601", vec![])
            }
        ),
        Err(StoreError::ExternalForwardingDisabled(
            "+49211123456".into()
        ))
    );
    assert!(matches!(
        store.add_ring_group(&ctl(T0), &RingGroup::new("112", vec![])),
        Err(StoreError::InvalidNumber { .. })
    ));

    // Prefixes of internal numbers (the dial plan waits for more digits after them).
    for (prefix, want) in [
        ("1", true),
        ("10", true),
        ("101", false),
        ("6", true),
        ("60", true),
        ("600", false),
        ("2", false),
        ("", true),
    ] {
        assert_eq!(
            store.is_prefix_of_internal_number(prefix).unwrap(),
            want,
            "{prefix:?}"
        );
    }

    // Removing an extension takes it out of its groups, keeping the others' order.
    store.remove_extension(&ctl(T0), "101").unwrap();
    assert_eq!(
        store.ring_group("600").unwrap().unwrap().members,
        ["103", "102"]
    );

    // Update replaces everything, including the member order.
    let changed = RingGroup {
        name: None,
        strategy: RingStrategy::Simultaneous,
        ring_secs: 30,
        noanswer_target: None,
        members: vec!["102".into(), "103".into()],
        ..sales.clone()
    };
    store.update_ring_group(&ctl(T0 + 1), &changed).unwrap();
    assert_eq!(
        store.list_ring_groups().unwrap(),
        std::slice::from_ref(&changed)
    );
    assert_eq!(
        store.update_ring_group(
            &ctl(T0),
            &RingGroup {
                number: "601".into(),
                ..changed
            }
        ),
        Err(StoreError::UnknownRingGroup("601".into()))
    );

    store.remove_ring_group(&ctl(T0 + 2), "600").unwrap();
    assert_eq!(store.list_ring_groups().unwrap(), []);
    assert_eq!(
        store.remove_ring_group(&ctl(T0), "600"),
        Err(StoreError::UnknownRingGroup("600".into()))
    );
    let members: i64 = raw(tmp.path())
        .query_row("SELECT count(*) FROM ring_group_members", [], |r| r.get(0))
        .unwrap();
    assert_eq!(members, 0);
    // The number is free for an extension again.
    store
        .add_extension(&ctl(T0), "600", None, "password-600")
        .unwrap();

    let actions: Vec<(String, String)> = store
        .audit_entries(20)
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("ring_group"))
        .map(|e| (e.action, e.detail))
        .collect();
    assert_eq!(
        actions,
        [
            ("ring_group.remove".into(), "number=600".into()),
            (
                "ring_group.set".into(),
                "number=600 name=\"\" strategy=simultaneous ring_secs=30 noanswer=off \
                 members=102,103"
                    .into()
            ),
            (
                "ring_group.add".into(),
                "number=600 name=\"Sales\" strategy=ordered ring_secs=15 noanswer=101 \
                 members=103,101,102"
                    .into()
            ),
        ]
    );
}

#[test]
fn site_settings_validation_and_storage() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    assert_eq!(
        store.site_settings().unwrap(),
        SiteSettings {
            country_code: "49".into(),
            area_code: String::new(),
            outside_prefix: None,
            billing_tick_secs: 60,
            allow_external_forwarding: false,
        }
    );
    let dus = SiteSettings {
        country_code: "49".into(),
        area_code: "211".into(),
        outside_prefix: Some("0".into()),
        billing_tick_secs: 1,
        allow_external_forwarding: true,
    };
    store.set_site_settings(&ctl(T0), &dus).unwrap();
    assert_eq!(
        Store::open(tmp.path()).unwrap().site_settings().unwrap(),
        dus
    );
    assert_eq!(
        store.audit_entries(1).unwrap()[0].detail,
        "country_code=49 area_code=211 outside_prefix=0 billing_tick=1 \
         allow_external_forwarding=on"
    );

    let bad = |what, reason: &str| {
        Err(StoreError::InvalidValue {
            what,
            reason: reason.into(),
        })
    };
    let cases: [(SiteSettings, Result<(), StoreError>); 10] = [
        (
            SiteSettings {
                country_code: "049".into(),
                ..dus.clone()
            },
            bad(
                "country code",
                "must not start with 0 (give it without 00 or +)",
            ),
        ),
        (
            SiteSettings {
                country_code: "1234".into(),
                ..dus.clone()
            },
            bad("country code", "must be 1 to 3 digits, e.g. 49"),
        ),
        (
            SiteSettings {
                country_code: "+49".into(),
                ..dus.clone()
            },
            bad("country code", "must be 1 to 3 digits, e.g. 49"),
        ),
        (
            SiteSettings {
                country_code: String::new(),
                ..dus.clone()
            },
            bad("country code", "must be 1 to 3 digits, e.g. 49"),
        ),
        (
            SiteSettings {
                area_code: "0211".into(),
                ..dus.clone()
            },
            bad(
                "area code",
                "must be given without the leading 0 (211, not 0211)",
            ),
        ),
        (
            SiteSettings {
                area_code: "123456".into(),
                ..dus.clone()
            },
            bad("area code", "must be 1 to 5 digits, e.g. 211"),
        ),
        (
            SiteSettings {
                outside_prefix: Some("9".into()),
                ..dus.clone()
            },
            bad("outside-line prefix", "must be none or 0"),
        ),
        (
            SiteSettings {
                billing_tick_secs: 0,
                ..dus.clone()
            },
            bad("billing tick", "must be 1 to 3600 seconds"),
        ),
        (
            SiteSettings {
                billing_tick_secs: 3601,
                ..dus.clone()
            },
            bad("billing tick", "must be 1 to 3600 seconds"),
        ),
        (
            SiteSettings {
                area_code: String::new(),
                outside_prefix: None,
                country_code: "1".into(),
                ..dus.clone()
            },
            Ok(()),
        ),
    ];
    for (s, want) in cases {
        assert_eq!(store.set_site_settings(&ctl(T0), &s), want, "{s:?}");
    }

    // A damaged stored value is reported, not guessed.
    raw(tmp.path())
        .execute(
            "UPDATE settings SET value = 'x' WHERE key = 'site.billing_tick_secs'",
            [],
        )
        .unwrap();
    assert!(matches!(
        store.site_settings(),
        Err(StoreError::BadValue {
            what: "site.billing_tick_secs",
            ..
        })
    ));
}

#[test]
fn ip_addresses_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let v6: IpAddr = "fe80::1".parse().unwrap();
    let r = CallRecord {
        source_ip: Some(v6),
        dest_ip: None,
        ..record(MS0)
    };
    store.insert_call_record(&r).unwrap();
    let got = &store.call_records(&CdrQuery::default()).unwrap()[0].record;
    assert_eq!((got.source_ip, got.dest_ip), (Some(v6), None));
}

proptest::proptest! {
    /// Whatever text a peer puts in a field, a CSV reader gets it back, with one
    /// apostrophe in front exactly when it would start a formula.
    #[test]
    fn csv_fields_survive_any_text(name in "\\PC*", reason in "(?s).{0,40}", dialled in "[-+=@0-9a-z\t ]{0,12}") {
        let s = StoredCallRecord {
            id: 1,
            record: CallRecord {
                caller_name: Some(name.clone()),
                reason: Some(reason.clone()),
                dialled: dialled.clone(),
                ..unanswered(MS0, Disposition::Failed)
            },
        };
        let fields = parse_csv_line(&to_csv_row(&s, 60));
        proptest::prop_assert_eq!(fields.len(), 30);
        let guarded = |t: &str| {
            if t.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{t}")
            } else {
                t.to_owned()
            }
        };
        proptest::prop_assert_eq!(&fields[10], &guarded(&name));
        proptest::prop_assert_eq!(&fields[11], &guarded(&dialled));
        proptest::prop_assert_eq!(&fields[18], &guarded(&reason));
    }
}
