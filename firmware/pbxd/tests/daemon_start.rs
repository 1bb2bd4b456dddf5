//! pbxd refuses to start, with a clear message and a non-zero exit, when it cannot work:
//! bad arguments, an unusable data directory, a database from a newer pbxd, a file that
//! is not a database, a port already in use. It never starts on top of data it would lose.

use std::process::{Command, Output};

fn pbxd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbxd"))
        .args(args)
        .env("PBXD_LOG", "error")
        .output()
        .expect("pbxd runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const LOOPBACK: [&str; 6] = [
    "--sip-listen",
    "127.0.0.1:0",
    "--http-listen",
    "127.0.0.1:0",
    "--https-listen",
    "127.0.0.1:0",
];

#[test]
fn bad_arguments_exit_2_with_the_reason() {
    let out = pbxd(&["--sip-listen", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--sip-listen"), "{}", stderr(&out));

    let out = pbxd(&["--min-expires", "900", "--max-expires", "600"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--min-expires (900) must not exceed --max-expires (600)"));

    let out = pbxd(&["--digest-algorithms", "sha1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown digest algorithm"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_file_as_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let mut args = vec!["--data-dir", file.to_str().expect("utf8 path")];
    args.extend(LOOPBACK);
    let out = pbxd(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot use data directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("pbx.db");
    {
        let conn = rusqlite::Connection::open(&db).expect("create db");
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 999;")
            .expect("future schema");
    }
    let before = std::fs::read(&db).expect("read");
    let mut args = vec!["--data-dir", dir.path().to_str().expect("utf8 path")];
    args.extend(LOOPBACK);
    let out = pbxd(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("database schema version 999 is newer than this pbxd"),
        "{}",
        stderr(&out)
    );
    assert!(
        std::fs::read(&db).expect("read") == before,
        "database must not be touched"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("pbx.db");
    let junk = vec![0x5a_u8; 8192];
    std::fs::write(&db, &junk).expect("write");
    let mut args = vec!["--data-dir", dir.path().to_str().expect("utf8 path")];
    args.extend(LOOPBACK);
    let out = pbxd(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).to_lowercase().contains("database"),
        "{}",
        stderr(&out)
    );
    assert!(
        std::fs::read(&db).expect("read") == junk,
        "file must not be touched"
    );
}

#[test]
fn a_sip_port_in_use_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    // TCP is bound first on the same port; take both so either bind fails.
    let _tcp = std::net::TcpListener::bind(&addr).ok();
    let out = pbxd(&[
        "--data-dir",
        dir.path().to_str().expect("utf8 path"),
        "--sip-listen",
        &addr,
        "--http-listen",
        "127.0.0.1:0",
        "--https-listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("cannot listen for SIP on {addr}")),
        "{}",
        stderr(&out)
    );
}
