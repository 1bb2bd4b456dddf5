//! Board files: the chip bring-up sequence (patch RAM, calibration, DC-feed and ring
//! presets) exported from the SLIC vendor's tools, as text.
//!
//! # Format
//! One command per line; `#` starts a comment (to the end of the line); blank lines are
//! ignored; words are separated by whitespace. Numbers are decimal or hex with `0x`.
//!
//! ```text
//! reg ADDR VALUE   # write an 8-bit register (ADDR 0..=0xFF, VALUE 0..=0xFF)
//! ram ADDR VALUE   # write a 32-bit indirect RAM word (ADDR 0..=0xFFFF)
//! delay MS         # wait MS milliseconds (0..=10000), e.g. after calibration
//! ```
//! `port` and `pcm` lines name the board's devices ([`crate::fxs::board_devices`]).
//! Commands run in file order. Parsing checks syntax and ranges only; the driver rejects
//! writes to registers it owns at run time (see
//! [`Register::is_driver_owned`](crate::fxs::slic::regs::Register::is_driver_owned)),
//! also naming the line.

use std::str::FromStr;

/// Longest delay a board file may ask for, in milliseconds.
pub const MAX_DELAY_MS: u32 = 10_000;

/// One bring-up step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardCommand {
    /// Write a direct register.
    Reg {
        /// Register address.
        addr: u8,
        /// Value to write.
        value: u8,
    },
    /// Write an indirect RAM word.
    Ram {
        /// RAM address.
        addr: u16,
        /// Value to write.
        value: u32,
    },
    /// Wait.
    Delay {
        /// Milliseconds.
        ms: u32,
    },
}

/// A command and the line (1-based) it came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardEntry {
    /// 1-based line number in the file.
    pub line: usize,
    /// The command.
    pub command: BoardCommand,
}

/// A parsed board file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardFile {
    entries: Vec<BoardEntry>,
}

/// A board file line that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("board file line {line}: {msg}")]
pub struct BoardFileError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

impl BoardFile {
    /// Parse the text format described in the module docs.
    pub fn parse(text: &str) -> Result<Self, BoardFileError> {
        let mut entries = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let content = raw.split('#').next().unwrap_or_default();
            let words: Vec<&str> = content.split_whitespace().collect();
            let Some((&cmd, args)) = words.split_first() else {
                continue;
            };
            let err = |msg: String| BoardFileError { line, msg };
            // Device lines (`port`, `pcm`) are crate::fxs::board_devices's.
            if crate::fxs::board_devices::is_device_keyword(cmd) {
                continue;
            }
            let command = match cmd {
                "reg" => {
                    let [addr, value] = two_args(cmd, args).map_err(err)?;
                    BoardCommand::Reg {
                        addr: number(addr, "register address", 0xFF).map_err(err)? as u8,
                        value: number(value, "register value", 0xFF).map_err(err)? as u8,
                    }
                }
                "ram" => {
                    let [addr, value] = two_args(cmd, args).map_err(err)?;
                    BoardCommand::Ram {
                        addr: number(addr, "RAM address", 0xFFFF).map_err(err)? as u16,
                        value: number(value, "RAM value", u64::from(u32::MAX)).map_err(err)? as u32,
                    }
                }
                "delay" => match args {
                    [ms] => BoardCommand::Delay {
                        ms: number(ms, "delay", u64::from(MAX_DELAY_MS)).map_err(err)? as u32,
                    },
                    _ => {
                        return Err(err(format!(
                            "`delay` takes 1 argument (MS), found {}",
                            args.len()
                        )))
                    }
                },
                other => {
                    return Err(err(format!(
                        "unknown command `{other}` (expected reg, ram or delay)"
                    )))
                }
            };
            entries.push(BoardEntry { line, command });
        }
        Ok(Self { entries })
    }

    /// The commands in file order.
    pub fn entries(&self) -> &[BoardEntry] {
        &self.entries
    }
}

impl FromStr for BoardFile {
    type Err = BoardFileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn two_args<'a>(cmd: &str, args: &[&'a str]) -> Result<[&'a str; 2], String> {
    match args {
        [a, b] => Ok([a, b]),
        _ => Err(format!(
            "`{cmd}` takes 2 arguments (ADDR VALUE), found {}",
            args.len()
        )),
    }
}

/// Parse a decimal or `0x` hex number no larger than `max`; the result fits `max`'s type.
fn number(word: &str, what: &str, max: u64) -> Result<u64, String> {
    let parsed = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => word.parse::<u64>(),
    };
    let value = parsed.map_err(|_| format!("{what} `{word}` is not a number"))?;
    if value > max {
        return Err(format!("{what} {word} out of range (max {max:#x})"));
    }
    Ok(value)
}
