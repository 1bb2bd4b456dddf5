//! A call forwarded to an external number (issue 5): its record keeps the forwarding
//! party through a real SQLite file, into the CSV export, and into the forwarder's own
//! call list.

use pbxd::store::{
    cdr_csv_header, to_csv_row, CallDirection, CallRecord, CdrQuery, Disposition, Store,
};

const MS0: i64 = 1_763_700_000_000;

fn forwarded() -> CallRecord {
    CallRecord {
        call_id: "in-1@192.0.2.10".into(),
        caller: "030555123".into(),
        caller_name: None,
        dialled: "+4921112345".into(),
        normalised: Some("+49211999888".into()),
        destination: Some("1002".into()),
        direction: CallDirection::Outbound,
        route: Some("cloud".into()),
        source_ip: None,
        dest_ip: None,
        start_ms: MS0,
        answer_ms: Some(MS0 + 2_000),
        end_ms: MS0 + 32_000,
        disposition: Disposition::Answered,
        reason: None,
        sip_status: Some(200),
        hangup: None,
        quality_caller: None,
        quality_callee: None,
        forwarded_by: Some("1002".into()),
    }
}

#[test]
fn a_forwarded_call_keeps_its_forwarder_through_the_file_the_csv_and_the_own_list() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let plain = CallRecord {
        call_id: "out-2@192.0.2.10".into(),
        forwarded_by: None,
        start_ms: MS0 + 40_000,
        answer_ms: Some(MS0 + 41_000),
        end_ms: MS0 + 50_000,
        ..forwarded()
    };
    store.insert_call_record(&forwarded()).unwrap();
    store.insert_call_record(&plain).unwrap();
    drop(store);
    let store = Store::open(tmp.path()).unwrap();
    let got = store.call_records(&CdrQuery::default()).unwrap();
    let kinds: Vec<(&str, Option<&str>)> = got
        .iter()
        .map(|s| (s.record.kind(), s.record.forwarded_by.as_deref()))
        .collect();
    assert_eq!(kinds, [("outbound", None), ("forwarded", Some("1002"))]);
    let names: Vec<&str> = cdr_csv_header().split(',').collect();
    let row = to_csv_row(&got[1], 60);
    let fields: Vec<&str> = row.split(',').collect();
    assert_eq!(fields.len(), names.len(), "{row}");
    let col = |n: &str| names.iter().position(|h| *h == n).unwrap();
    assert_eq!(fields[col("forwarded_by")], "1002");
    assert_eq!(fields[col("caller")], "030555123");
    assert_eq!(fields[col("normalised")], "'+49211999888");
    assert_eq!(fields[col("direction")], "outbound");
    assert_eq!(
        to_csv_row(&got[0], 60).split(',').nth(col("forwarded_by")),
        Some("")
    );
    // The forwarder sees it among its own calls (it is the destination).
    let own = store
        .call_records(&CdrQuery {
            extension: Some("1002".into()),
            ..CdrQuery::default()
        })
        .unwrap();
    assert_eq!(own.len(), 2);
}
