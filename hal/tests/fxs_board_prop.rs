//! Property tests of the board file parser: it never panics, and what it parses is what
//! was written.

use pbx_hal::fxs::board_file::{BoardCommand, BoardEntry, BoardFile};
use proptest::prelude::*;

fn command() -> impl Strategy<Value = BoardCommand> {
    prop_oneof![
        (any::<u8>(), any::<u8>()).prop_map(|(addr, value)| BoardCommand::Reg { addr, value }),
        (any::<u16>(), any::<u32>()).prop_map(|(addr, value)| BoardCommand::Ram { addr, value }),
        (0u32..=10_000).prop_map(|ms| BoardCommand::Delay { ms }),
    ]
}

fn render(cmd: &BoardCommand, hex: bool) -> String {
    match (cmd, hex) {
        (BoardCommand::Reg { addr, value }, true) => format!("reg {addr:#x} {value:#X}"),
        (BoardCommand::Reg { addr, value }, false) => format!("reg {addr} {value}"),
        (BoardCommand::Ram { addr, value }, true) => format!("ram {addr:#06x} {value:#010x}"),
        (BoardCommand::Ram { addr, value }, false) => format!("ram {addr} {value}"),
        (BoardCommand::Delay { ms }, _) => format!("delay {ms}"),
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = BoardFile::parse(&text);
    }

    #[test]
    fn arbitrary_lines_of_words_never_panic(lines in prop::collection::vec("(reg|ram|delay|#|x)( [0-9a-fxX#-]{0,12}){0,4}", 0..20)) {
        if let Err(e) = BoardFile::parse(&lines.join("\n")) {
            prop_assert!(e.line >= 1 && e.line <= lines.len());
        }
    }

    #[test]
    fn written_commands_parse_back(cmds in prop::collection::vec((command(), any::<bool>(), any::<bool>()), 0..30)) {
        let mut text = String::new();
        let mut expected = Vec::new();
        let mut line = 0;
        for (cmd, hex, comment) in &cmds {
            if *comment {
                text.push_str("# vendor comment\n\n");
                line += 2;
            }
            text.push_str(&render(cmd, *hex));
            text.push_str(if *comment { "  # trailing\n" } else { "\n" });
            line += 1;
            expected.push(BoardEntry { line, command: *cmd });
        }
        let parsed = BoardFile::parse(&text).unwrap();
        prop_assert_eq!(parsed.entries(), &expected[..]);
    }
}
