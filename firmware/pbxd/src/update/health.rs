//! The health gate after boot, sans-IO: the checks that must pass within a time limit
//! before the booted slot is marked good; otherwise it is marked bad and the box reboots
//! so the bootloader falls back to the other slot.
//!
//! Run loop (the shell in [`super::task`] does this):
//! ```
//! use std::time::{Duration, Instant};
//! use pbxd::update::health::*;
//! let t0 = Instant::now();
//! let mut gate = HealthGate::new(HealthConfig::default(), t0);
//! gate.handle(t0, HealthInput::Check(Check::Database, CheckResult::Passed));
//! gate.handle(t0, HealthInput::Check(Check::SipListening, CheckResult::Passed));
//! assert_eq!(gate.poll_output(), Some(HealthOutput::MarkGood));
//! assert_eq!(gate.poll_output(), None);
//! assert_eq!(gate.poll_timeout(), None); // decided: nothing left to wait for
//! ```

use std::fmt;
use std::time::{Duration, Instant};

/// One health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    /// The database opens and is migrated to this firmware's schema.
    Database,
    /// The SIP sockets are bound and the SIP task has restored its state.
    SipListening,
    /// The analog (FXS) ports are initialised.
    AnalogPorts,
    /// The SIP trunk registered again (only if it was registered before the update).
    TrunkRegistered,
}

impl Check {
    /// Every check, in the order they are reported.
    pub const ALL: [Check; 4] = [
        Check::Database,
        Check::SipListening,
        Check::AnalogPorts,
        Check::TrunkRegistered,
    ];

    /// Short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Check::Database => "database",
            Check::SipListening => "sip-listening",
            Check::AnalogPorts => "analog-ports",
            Check::TrunkRegistered => "trunk-registered",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a check counts on this box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// It must pass.
    Required,
    /// It does not apply (no analog ports configured; no trunk registered before the update).
    NotApplicable,
}

/// The gate's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// Time from start within which every required check must have passed.
    pub limit: Duration,
    /// Analog ports: `Required` when the box has ports (`--hardware sim` today).
    pub analog_ports: Requirement,
    /// Trunk registration: `Required` only if the trunk was registered before.
    pub trunk: Requirement,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            limit: Duration::from_secs(120),
            analog_ports: Requirement::NotApplicable,
            trunk: Requirement::NotApplicable,
        }
    }
}

impl HealthConfig {
    fn requirement(&self, check: Check) -> Requirement {
        match check {
            Check::Database | Check::SipListening => Requirement::Required,
            Check::AnalogPorts => self.analog_ports,
            Check::TrunkRegistered => self.trunk,
        }
    }
}

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// It works.
    Passed,
    /// Not (yet) working; it may still pass before the limit (e.g. the trunk is still
    /// registering).
    Failing(String),
    /// Broken for good (e.g. the database migration failed): no point in waiting.
    Fatal(String),
}

/// Inputs to the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthInput {
    /// A probe reported. A later report replaces an earlier one, except that a passed
    /// check stays passed (a flapping trunk after the verdict is not the gate's business).
    Check(Check, CheckResult),
    /// The timer from [`HealthGate::poll_timeout`] fired (a spurious one is a no-op).
    Timeout,
}

/// A check that had not passed when the verdict was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// Which check.
    pub check: Check,
    /// Its last report, or "no result within the limit".
    pub reason: String,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.check, self.reason)
    }
}

/// Commands for the shell, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthOutput {
    /// Mark the booted slot good (RAUC `Mark("good", "booted")`).
    MarkGood,
    /// Mark the booted slot bad (RAUC `Mark("bad", "booted")`); `Reboot` follows.
    MarkBad {
        /// The checks that had not passed.
        failed: Vec<CheckFailure>,
    },
    /// Reboot so the bootloader falls back to the other slot.
    Reboot,
}

/// The gate's decision once made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every required check passed in time.
    Good,
    /// A required check failed fatally or had not passed by the limit.
    Bad(Vec<CheckFailure>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Pending,
    Passed,
    Failing(String),
}

/// The health gate. Feed it probe results and timeouts; it decides once.
#[derive(Debug)]
pub struct HealthGate {
    config: HealthConfig,
    deadline: Instant,
    status: [Status; 4],
    verdict: Option<Verdict>,
    out: std::collections::VecDeque<HealthOutput>,
}

fn index(check: Check) -> usize {
    match check {
        Check::Database => 0,
        Check::SipListening => 1,
        Check::AnalogPorts => 2,
        Check::TrunkRegistered => 3,
    }
}

impl HealthGate {
    /// A gate started at `now`; the verdict is due by `now + config.limit`.
    pub fn new(config: HealthConfig, now: Instant) -> Self {
        let mut gate = HealthGate {
            deadline: now + config.limit,
            config,
            status: [
                Status::Pending,
                Status::Pending,
                Status::Pending,
                Status::Pending,
            ],
            verdict: None,
            out: Default::default(),
        };
        // A gate with nothing required (impossible today: database and SIP always are)
        // would still decide only when told; keep the rule in one place.
        gate.decide_if_all_passed();
        gate
    }

    /// Feeds one input at `now`.
    pub fn handle(&mut self, now: Instant, input: HealthInput) {
        if self.verdict.is_some() {
            return;
        }
        match input {
            HealthInput::Check(check, result) => {
                let slot = &mut self.status[index(check)];
                if *slot == Status::Passed {
                    return;
                }
                let fatal = matches!(result, CheckResult::Fatal(_));
                *slot = match result {
                    CheckResult::Passed => Status::Passed,
                    CheckResult::Failing(reason) | CheckResult::Fatal(reason) => {
                        Status::Failing(reason)
                    }
                };
                if fatal && self.config.requirement(check) == Requirement::Required {
                    self.decide_bad();
                    return;
                }
                if now >= self.deadline {
                    self.decide_on_deadline();
                } else {
                    self.decide_if_all_passed();
                }
            }
            HealthInput::Timeout => {
                if now >= self.deadline {
                    self.decide_on_deadline();
                }
            }
        }
    }

    /// The next command for the shell.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<HealthOutput> {
        self.out.pop_front()
    }

    /// When to call `handle(.., Timeout)`: the limit, until the verdict is made.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.verdict.is_none().then_some(self.deadline)
    }

    /// The verdict, once made.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    fn required(&self) -> impl Iterator<Item = Check> + '_ {
        Check::ALL
            .into_iter()
            .filter(|c| self.config.requirement(*c) == Requirement::Required)
    }

    fn decide_if_all_passed(&mut self) {
        if self
            .required()
            .all(|c| self.status[index(c)] == Status::Passed)
        {
            self.verdict = Some(Verdict::Good);
            self.out.push_back(HealthOutput::MarkGood);
        }
    }

    fn decide_on_deadline(&mut self) {
        self.decide_if_all_passed();
        if self.verdict.is_none() {
            self.decide_bad();
        }
    }

    fn decide_bad(&mut self) {
        let failed: Vec<CheckFailure> = self
            .required()
            .filter_map(|check| match &self.status[index(check)] {
                Status::Passed => None,
                Status::Pending => Some(CheckFailure {
                    check,
                    reason: "no result within the limit".to_owned(),
                }),
                Status::Failing(reason) => Some(CheckFailure {
                    check,
                    reason: reason.clone(),
                }),
            })
            .collect();
        self.verdict = Some(Verdict::Bad(failed.clone()));
        self.out.push_back(HealthOutput::MarkBad { failed });
        self.out.push_back(HealthOutput::Reboot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(120);

    /// Any instant will do: the tests own time from here on.
    #[allow(clippy::disallowed_methods)]
    fn start() -> Instant {
        Instant::now()
    }

    fn cfg(trunk: Requirement) -> HealthConfig {
        HealthConfig {
            limit: LIMIT,
            analog_ports: Requirement::NotApplicable,
            trunk,
        }
    }

    fn drain(gate: &mut HealthGate) -> Vec<HealthOutput> {
        std::iter::from_fn(|| gate.poll_output()).collect()
    }

    fn pass(check: Check) -> HealthInput {
        HealthInput::Check(check, CheckResult::Passed)
    }

    #[test]
    fn all_required_pass_in_time_marks_good_once() {
        let t0 = start();
        let mut gate = HealthGate::new(cfg(Requirement::Required), t0);
        assert_eq!(gate.poll_timeout(), Some(t0 + LIMIT));
        gate.handle(t0, pass(Check::Database));
        gate.handle(t0 + Duration::from_secs(1), pass(Check::SipListening));
        assert_eq!(drain(&mut gate), vec![], "trunk still required");
        gate.handle(
            t0 + Duration::from_secs(30),
            HealthInput::Check(
                Check::TrunkRegistered,
                CheckResult::Failing("401 from registrar".into()),
            ),
        );
        assert_eq!(drain(&mut gate), vec![]);
        gate.handle(t0 + Duration::from_secs(60), pass(Check::TrunkRegistered));
        assert_eq!(drain(&mut gate), vec![HealthOutput::MarkGood]);
        assert_eq!(gate.verdict(), Some(&Verdict::Good));
        assert_eq!(gate.poll_timeout(), None);
        // Late inputs change nothing.
        gate.handle(t0 + LIMIT, HealthInput::Timeout);
        gate.handle(
            t0 + LIMIT,
            HealthInput::Check(Check::Database, CheckResult::Fatal("x".into())),
        );
        assert_eq!(drain(&mut gate), vec![]);
        assert_eq!(gate.verdict(), Some(&Verdict::Good));
    }

    #[test]
    fn not_applicable_checks_are_not_waited_for() {
        let t0 = start();
        let mut gate = HealthGate::new(cfg(Requirement::NotApplicable), t0);
        gate.handle(t0, pass(Check::Database));
        gate.handle(t0, pass(Check::SipListening));
        assert_eq!(drain(&mut gate), vec![HealthOutput::MarkGood]);
        // And a fatal report from a check that does not apply does not fail the gate.
        let mut gate = HealthGate::new(cfg(Requirement::NotApplicable), t0);
        gate.handle(
            t0,
            HealthInput::Check(Check::AnalogPorts, CheckResult::Fatal("no SLIC".into())),
        );
        assert_eq!(drain(&mut gate), vec![]);
        assert_eq!(gate.verdict(), None);
    }

    #[test]
    fn limit_passes_with_a_check_missing_marks_bad_then_reboots() {
        let t0 = start();
        let mut gate = HealthGate::new(cfg(Requirement::Required), t0);
        gate.handle(t0, pass(Check::Database));
        gate.handle(t0, pass(Check::SipListening));
        gate.handle(
            t0 + Duration::from_secs(5),
            HealthInput::Check(
                Check::TrunkRegistered,
                CheckResult::Failing("timeout".into()),
            ),
        );
        // A spurious early timeout is a no-op.
        gate.handle(t0 + Duration::from_secs(119), HealthInput::Timeout);
        assert_eq!(drain(&mut gate), vec![]);
        gate.handle(t0 + LIMIT, HealthInput::Timeout);
        let failed = vec![CheckFailure {
            check: Check::TrunkRegistered,
            reason: "timeout".into(),
        }];
        assert_eq!(
            drain(&mut gate),
            vec![
                HealthOutput::MarkBad {
                    failed: failed.clone()
                },
                HealthOutput::Reboot
            ]
        );
        assert_eq!(gate.verdict(), Some(&Verdict::Bad(failed)));
        assert_eq!(gate.poll_timeout(), None);
    }

    #[test]
    fn silence_until_the_limit_names_every_missing_check() {
        let t0 = start();
        let mut gate = HealthGate::new(cfg(Requirement::NotApplicable), t0);
        gate.handle(t0 + LIMIT, HealthInput::Timeout);
        let missing = |check| CheckFailure {
            check,
            reason: "no result within the limit".into(),
        };
        assert_eq!(
            drain(&mut gate),
            vec![
                HealthOutput::MarkBad {
                    failed: vec![missing(Check::Database), missing(Check::SipListening)]
                },
                HealthOutput::Reboot
            ]
        );
    }

    #[test]
    fn a_fatal_required_check_decides_at_once() {
        let t0 = start();
        let mut gate = HealthGate::new(cfg(Requirement::NotApplicable), t0);
        gate.handle(t0, pass(Check::SipListening));
        gate.handle(
            t0 + Duration::from_secs(2),
            HealthInput::Check(
                Check::Database,
                CheckResult::Fatal("schema version 9 is newer than 7".into()),
            ),
        );
        assert_eq!(
            drain(&mut gate),
            vec![
                HealthOutput::MarkBad {
                    failed: vec![CheckFailure {
                        check: Check::Database,
                        reason: "schema version 9 is newer than 7".into()
                    }]
                },
                HealthOutput::Reboot
            ]
        );
    }

    #[test]
    fn a_passed_check_stays_passed_and_a_late_pass_at_the_limit_counts() {
        let t0 = start();
        let mut gate = HealthGate::new(cfg(Requirement::NotApplicable), t0);
        gate.handle(t0, pass(Check::Database));
        gate.handle(
            t0,
            HealthInput::Check(Check::Database, CheckResult::Failing("busy".into())),
        );
        // The last check arrives exactly at the limit, before the timer is handled.
        gate.handle(t0 + LIMIT, pass(Check::SipListening));
        assert_eq!(drain(&mut gate), vec![HealthOutput::MarkGood]);
    }
}
