//! `pbxctl gsm route` against a real SQLite file: `--inbound N` alone works on the
//! default settings (policy `prefix` without a prefix), what is really invalid is still
//! refused, and `--mobile on` follows the site's country (refused where mobile numbers
//! cannot be told apart).
// Helpers outside #[test] fns: a panic there is a test failure too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

/// Exit code, stdout, stderr.
fn pbxctl(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pbxctl"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status_row(dir: &Path, key: &str) -> String {
    let (code, out, err) = pbxctl(dir, &["gsm", "status"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(key))
        .map(|v| v.trim_start_matches(':').trim().to_owned())
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

#[test]
fn inbound_alone_works_on_the_default_prefix_policy_and_invalid_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The database pbxd creates at its first start.
    drop(pbxd::store::Store::open(d).unwrap());
    assert_eq!(status_row(d, "outbound policy"), "prefix");
    assert_eq!(status_row(d, "outbound prefix"), "-");

    let (code, out, err) = pbxctl(d, &["gsm", "route", "--inbound", "21"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("GSM routing changed"), "{out}");
    assert_eq!(status_row(d, "inbound calls ring"), "21");
    assert_eq!(
        status_row(d, "outbound policy"),
        "prefix",
        "outbound untouched"
    );
    let (code, _, err) = pbxctl(d, &["gsm", "route", "--inbound", "none"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status_row(d, "inbound calls ring"), "-");

    // Really invalid: a destination that is no number, and policy prefix without one.
    let (code, _, err) = pbxctl(d, &["gsm", "route", "--inbound", "21; DROP"]);
    assert_ne!(code, 0);
    assert!(err.contains("inbound"), "{err}");
    let (code, _, err) = pbxctl(d, &["gsm", "route", "--policy", "prefix"]);
    assert_ne!(code, 0);
    assert!(err.contains("policy prefix needs a prefix"), "{err}");
    assert_eq!(status_row(d, "inbound calls ring"), "-");
}

#[test]
fn mobile_on_follows_the_sites_country() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The database pbxd creates at its first start.
    drop(pbxd::store::Store::open(d).unwrap());
    let (code, _, err) = pbxctl(d, &["gsm", "route", "--mobile", "on"]);
    assert_eq!(code, 0, "Germany (the default): {err}");
    assert_eq!(status_row(d, "mobile numbers"), "over GSM");
    pbxctl(d, &["gsm", "route", "--mobile", "off"]);

    for (cc, ok) in [("43", true), ("44", true), ("1", false), ("998", false)] {
        let (code, _, err) = pbxctl(d, &["site", "set", "--country-code", cc]);
        assert_eq!(code, 0, "site set {cc}: {err}");
        let (code, _, err) = pbxctl(d, &["gsm", "route", "--mobile", "on"]);
        if ok {
            assert_eq!(code, 0, "+{cc}: {err}");
            assert_eq!(status_row(d, "mobile numbers"), "over GSM");
            pbxctl(d, &["gsm", "route", "--mobile", "off"]);
        } else {
            assert_eq!(code, 2, "+{cc} is refused as a usage error: {err}");
            assert!(err.contains(&format!("+{cc}")), "{err}");
            assert_eq!(status_row(d, "mobile numbers"), "by the policy");
        }
        if cc == "1" {
            assert!(err.contains("cannot be told apart"), "{err}");
        }
    }
    // Turning it off is always allowed.
    let (code, _, err) = pbxctl(d, &["gsm", "route", "--mobile", "off"]);
    assert_eq!(code, 0, "{err}");
}
