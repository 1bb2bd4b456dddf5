//! `pbxctl backup` and `pbxctl alerts` as an installer runs them: the real binary on a
//! fresh data directory.

use std::process::{Command, Output};

use pbxd::store::{Severity, Store};

fn pbxctl(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pbxctl"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("pbxctl runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn backup_create_and_restore_round_trip_and_refuse_bad_files() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let file = dir.path().join("box.pbxbackup");
    let file_s = file.to_str().expect("utf-8 path");
    let o = pbxctl(&data, &["backup", "create", file_s]);
    assert_eq!(o.status.code(), Some(5), "no database yet: {}", text(&o));
    let o = pbxctl(
        &data,
        &["extension", "add", "101", "--password", "secret-101"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = pbxctl(&data, &["backup", "create", file_s]);
    assert!(o.status.success(), "{}", text(&o));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the archive holds hashes");

    let o = pbxctl(&data, &["extension", "remove", "101"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = pbxctl(&data, &["backup", "restore", file_s]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("extensions=1"), "{}", text(&o));
    let o = pbxctl(&data, &["extension", "show", "101"]);
    assert!(o.status.success(), "restored: {}", text(&o));

    let archive = std::fs::read(&file).expect("read");
    let cut = dir.path().join("cut.pbxbackup");
    std::fs::write(&cut, &archive[..archive.len() - 10]).expect("write");
    let o = pbxctl(&data, &["backup", "restore", cut.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("damaged or incomplete"), "{}", text(&o));

    // Another box (its own device key) refuses it unless --allow-foreign.
    let other = dir.path().join("other");
    let o = pbxctl(&other, &["backup", "restore", file_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--allow-foreign"), "{}", text(&o));
    let o = pbxctl(&other, &["backup", "restore", file_s, "--allow-foreign"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("from another box"), "{}", text(&o));
}

#[test]
fn alerts_lists_open_alerts_most_severe_first_and_all_with_history() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let mut s = Store::open(dir.path()).expect("store");
        s.raise_alert(
            "trunk:main:balance",
            Severity::Warning,
            "balance used up",
            100,
        )
        .expect("raise");
        s.raise_alert("gsm:no-sim", Severity::Critical, "no SIM", 200)
            .expect("raise");
        s.raise_alert("old", Severity::Info, "gone", 50)
            .expect("raise");
        s.clear_alert("old", 60).expect("clear");
    }
    let o = pbxctl(dir.path(), &["alerts"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with("critical") && lines[1].contains("gsm:no-sim"),
        "{out}"
    );
    assert!(lines[2].starts_with("warning"), "{out}");
    assert!(!out.contains("gone"));
    let all = text(&pbxctl(dir.path(), &["alerts", "--all"]));
    assert!(all.contains("cleared") && all.contains("gone"), "{all}");
}
