//! `pbxd --hardware board`: a malformed board file or a missing device stops pbxd at
//! start, non-zero, with a message naming the file and line.

use std::process::{Command, Output};

fn pbxd(dir: &std::path::Path, board: &str) -> Output {
    let file = dir.join("test.board");
    std::fs::write(&file, board).expect("write the board file");
    Command::new(env!("CARGO_BIN_EXE_pbxd"))
        .args(["--data-dir"])
        .arg(dir.join("data"))
        .args([
            "--sip-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--https-listen",
            "127.0.0.1:0",
            "--hardware",
            "board",
            "--board-file",
        ])
        .arg(&file)
        .env("PBXD_LOG", "error")
        .output()
        .expect("pbxd runs")
}

#[test]
fn a_board_file_naming_a_missing_spidev_stops_pbxd_naming_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = pbxd(
        dir.path(),
        "# bring-up\nreg 0x0B 0x00\n\
         port 1 spi=/dev/spidev9.9 irq=/dev/gpiochip0:17 reset=/dev/gpiochip0:27\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("test.board, line 3: spi device /dev/spidev9.9: No such file or directory"),
        "{err}"
    );
}

#[test]
fn a_malformed_board_file_stops_pbxd_naming_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("reg 0x0B 0x00\nreg 0x100 1\n", "line 2: register address"),
        (
            "port 1 spi=/dev/null irq=/dev/null reset=/dev/null:1\n",
            "line 1: `irq` must be CHIP:LINE",
        ),
        ("regg 1 2\n", "line 1: unknown command `regg`"),
    ];
    for (text, msg) in cases {
        let out = pbxd(dir.path(), text);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(err.contains(msg), "{text}: {err}");
    }
}

#[test]
fn a_node_that_is_no_spidev_or_a_missing_pcm_line_stops_pbxd_naming_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = "port 1 spi=/dev/null irq=/dev/null:1 reset=/dev/null:2\n";
    let cases = [
        (
            format!("{port}pcm null\n"),
            "test.board, line 1: spi device /dev/null is not a usable spidev: ",
        ),
        (
            port.to_owned(),
            "test.board, line 0: no `pcm` line: the board file names no PCM",
        ),
    ];
    for (text, msg) in cases {
        let out = pbxd(dir.path(), &text);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(err.contains(msg), "{text}: {err}");
    }
}
