//! When an install may start: a pure function of the calls in progress, an emergency
//! flag and the local time of day, all passed in.

use std::fmt;
use std::str::FromStr;

use time::Time;

/// A daily window `HH:MM-HH:MM` (local time) in which updates may install unforced.
/// `start` is inside, `end` is not; a window whose end is before its start spans midnight
/// (`22:00-04:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceWindow {
    start: Time,
    end: Time,
}

/// A maintenance window that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("maintenance window {given:?}: {reason} (expected HH:MM-HH:MM, e.g. 01:00-05:00)")]
pub struct WindowError {
    /// The text as given.
    pub given: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl MaintenanceWindow {
    /// A window from `start` (inside) to `end` (outside); `None` if they are equal (an
    /// empty or whole-day window is better said by giving no window or `--force`).
    pub fn new(start: Time, end: Time) -> Option<Self> {
        (start != end).then_some(MaintenanceWindow { start, end })
    }

    /// Whether `now` (local time of day) lies inside the window.
    pub fn contains(&self, now: Time) -> bool {
        if self.start < self.end {
            self.start <= now && now < self.end
        } else {
            now >= self.start || now < self.end
        }
    }
}

impl fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start.hour(),
            self.start.minute(),
            self.end.hour(),
            self.end.minute()
        )
    }
}

fn parse_hhmm(s: &str) -> Option<Time> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u8 = h.parse().ok()?;
    let m: u8 = m.parse().ok()?;
    Time::from_hms(h, m, 0).ok()
}

impl FromStr for MaintenanceWindow {
    type Err = WindowError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| WindowError {
            given: s.to_owned(),
            reason,
        };
        let (a, b) = s.split_once('-').ok_or_else(|| err("no '-'"))?;
        let start = parse_hhmm(a).ok_or_else(|| err("bad start time"))?;
        let end = parse_hhmm(b).ok_or_else(|| err("bad end time"))?;
        MaintenanceWindow::new(start, end).ok_or_else(|| err("start equals end"))
    }
}

/// What the daemon knows at the moment an install is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallContext {
    /// Calls in progress (the daemon's `web::Status::calls` counter).
    pub active_calls: usize,
    /// Whether an emergency call is up (call control's count, `web::Status::emergency_calls`;
    /// `pbxctl` reads it from the health reply).
    pub emergency_call: bool,
    /// Local time of day (the shell reads the clock).
    pub local_time: Time,
}

/// Why an install was refused before RAUC was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// An emergency call is up: never interrupted, not even with `force`.
    #[error("an emergency call is in progress; try again when it has ended")]
    EmergencyCall,
    /// Calls are up and the install was not forced.
    #[error("{count} call(s) in progress; try again later or force the install")]
    CallsActive {
        /// Calls in progress.
        count: usize,
    },
    /// Outside the maintenance window and not forced.
    #[error(
        "outside the maintenance window {window} (now {now}); wait for it or force the install"
    )]
    OutsideWindow {
        /// The configured window.
        window: MaintenanceWindow,
        /// The local time of the request, `HH:MM`.
        now: String,
    },
}

/// The rules for starting an install.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstallPolicy {
    /// Unforced installs only inside this window; `None`: at any time.
    pub window: Option<MaintenanceWindow>,
}

impl InstallPolicy {
    /// Whether an install may start now. An emergency call always refuses; `force`
    /// overrides the call count and the window.
    pub fn check(&self, ctx: &InstallContext, force: bool) -> Result<(), Refusal> {
        if ctx.emergency_call {
            return Err(Refusal::EmergencyCall);
        }
        if force {
            return Ok(());
        }
        if ctx.active_calls > 0 {
            return Err(Refusal::CallsActive {
                count: ctx.active_calls,
            });
        }
        match self.window {
            Some(window) if !window.contains(ctx.local_time) => Err(Refusal::OutsideWindow {
                window,
                now: format!(
                    "{:02}:{:02}",
                    ctx.local_time.hour(),
                    ctx.local_time.minute()
                ),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u8, m: u8) -> Time {
        Time::from_hms(h, m, 0).expect("valid test time")
    }

    fn window(s: &str) -> MaintenanceWindow {
        s.parse().expect("valid test window")
    }

    #[test]
    fn windows_parse_and_print() {
        assert_eq!(window("01:00-05:30").to_string(), "01:00-05:30");
        assert_eq!(window(" 1:00 - 5:30 ").to_string(), "01:00-05:30");
        for (bad, reason) in [
            ("01:00 05:00", "no '-'"),
            ("25:00-05:00", "bad start time"),
            ("01:00-05:60", "bad end time"),
            ("01:00-01:00", "start equals end"),
            ("1:0-5:00", "bad start time"),
            ("-05:00", "bad start time"),
        ] {
            assert_eq!(
                bad.parse::<MaintenanceWindow>().expect_err(bad).reason,
                reason,
                "{bad}"
            );
        }
    }

    #[test]
    fn window_edges_and_midnight() {
        let w = window("01:00-05:00");
        assert!(!w.contains(t(0, 59)));
        assert!(w.contains(t(1, 0)));
        assert!(w.contains(t(4, 59)));
        assert!(!w.contains(t(5, 0)));
        let night = window("22:00-04:00");
        assert!(night.contains(t(22, 0)));
        assert!(night.contains(t(23, 59)));
        assert!(night.contains(t(0, 0)));
        assert!(night.contains(t(3, 59)));
        assert!(!night.contains(t(4, 0)));
        assert!(!night.contains(t(12, 0)));
    }

    #[test]
    fn policy_table() {
        struct Case {
            calls: usize,
            emergency: bool,
            at: Time,
            force: bool,
            want: Result<(), Refusal>,
            msg: &'static str,
        }
        let policy = InstallPolicy {
            window: Some(window("02:00-04:00")),
        };
        let outside = Err(Refusal::OutsideWindow {
            window: window("02:00-04:00"),
            now: "12:30".to_owned(),
        });
        let cases = [
            Case {
                calls: 0,
                emergency: false,
                at: t(3, 0),
                force: false,
                want: Ok(()),
                msg: "quiet, in window",
            },
            Case {
                calls: 0,
                emergency: false,
                at: t(12, 30),
                force: false,
                want: outside,
                msg: "quiet, outside window",
            },
            Case {
                calls: 0,
                emergency: false,
                at: t(12, 30),
                force: true,
                want: Ok(()),
                msg: "force overrides the window",
            },
            Case {
                calls: 2,
                emergency: false,
                at: t(3, 0),
                force: false,
                want: Err(Refusal::CallsActive { count: 2 }),
                msg: "calls up",
            },
            Case {
                calls: 2,
                emergency: false,
                at: t(3, 0),
                force: true,
                want: Ok(()),
                msg: "force overrides calls",
            },
            Case {
                calls: 1,
                emergency: true,
                at: t(3, 0),
                force: false,
                want: Err(Refusal::EmergencyCall),
                msg: "emergency",
            },
            Case {
                calls: 1,
                emergency: true,
                at: t(3, 0),
                force: true,
                want: Err(Refusal::EmergencyCall),
                msg: "emergency beats force",
            },
        ];
        for c in cases {
            let ctx = InstallContext {
                active_calls: c.calls,
                emergency_call: c.emergency,
                local_time: c.at,
            };
            assert_eq!(policy.check(&ctx, c.force), c.want, "{}", c.msg);
        }
        // No window: any time of day.
        let ctx = InstallContext {
            active_calls: 0,
            emergency_call: false,
            local_time: t(12, 30),
        };
        assert_eq!(InstallPolicy::default().check(&ctx, false), Ok(()));
    }
}
