//! When to boot into a freshly installed slot: at a quiet moment.
//!
//! RAUC makes the new slot primary after an install, but pbxd keeps running the old one
//! until a reboot. The planner reboots only when no call has been up for `quiet` (a short
//! lull between calls is not enough: someone may be about to call back), never during an
//! emergency call, and inside the maintenance window when one is set. Sans-IO: the shell
//! polls the installer's status and feeds the planner with `now`.

use std::time::{Duration, Instant};

use time::Time;

use super::{BootStatus, MaintenanceWindow, UpdateStatus};

/// The planner's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchConfig {
    /// How long there must have been no call before rebooting.
    pub quiet: Duration,
    /// Reboot only inside this window; `None`: whenever it is quiet.
    pub window: Option<MaintenanceWindow>,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        Self {
            quiet: Duration::from_secs(120),
            window: None,
        }
    }
}

/// What the planner is told each round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchInputs {
    /// The installed slot waiting to be booted ([`pending_slot`]), if any.
    pub pending: Option<String>,
    /// Calls in progress.
    pub active_calls: usize,
    /// Whether an emergency call is in progress.
    pub emergency_call: bool,
    /// Local wall-clock time.
    pub local_time: Time,
}

/// Why the switch waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    /// An emergency call is up.
    EmergencyCall,
    /// Calls are up.
    CallsActive(usize),
    /// No call now, but not yet for long enough.
    Settling(Duration),
    /// Outside the maintenance window.
    OutsideWindow(MaintenanceWindow),
}

/// The planner's verdict for this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchDecision {
    /// Nothing installed waits to be booted.
    Idle,
    /// A slot waits; not now.
    Wait {
        /// The slot.
        slot: String,
        /// Why not now.
        why: WaitReason,
    },
    /// Reboot into `slot` now.
    Switch {
        /// The slot.
        slot: String,
    },
}

/// Decides when to reboot into an installed slot.
#[derive(Debug)]
pub struct SwitchPlanner {
    cfg: SwitchConfig,
    quiet_since: Option<Instant>,
}

impl SwitchPlanner {
    /// A planner; the first round starts the quiet period if no call is up.
    pub fn new(cfg: SwitchConfig) -> Self {
        Self {
            cfg,
            quiet_since: None,
        }
    }

    /// This round's verdict.
    pub fn decide(&mut self, now: Instant, inputs: &SwitchInputs) -> SwitchDecision {
        // The quiet period counts from the last time a call was seen, pending or not.
        if inputs.active_calls > 0 || inputs.emergency_call {
            self.quiet_since = None;
        } else if self.quiet_since.is_none() {
            self.quiet_since = Some(now);
        }
        let Some(slot) = inputs.pending.clone() else {
            return SwitchDecision::Idle;
        };
        let why = if inputs.emergency_call {
            WaitReason::EmergencyCall
        } else if inputs.active_calls > 0 {
            WaitReason::CallsActive(inputs.active_calls)
        } else {
            let quiet_for = self
                .quiet_since
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            if quiet_for < self.cfg.quiet {
                WaitReason::Settling(self.cfg.quiet - quiet_for)
            } else {
                match self.cfg.window {
                    Some(w) if !w.contains(inputs.local_time) => WaitReason::OutsideWindow(w),
                    _ => return SwitchDecision::Switch { slot },
                }
            }
        };
        SwitchDecision::Wait { slot, why }
    }
}

/// The slot RAUC will boot next when it is not the one running and not marked bad.
pub fn pending_slot(status: &UpdateStatus) -> Option<String> {
    let primary = status.primary.as_deref()?;
    let slot = status.slots.iter().find(|s| s.name == primary)?;
    let waiting = slot.state != "booted" && slot.boot_status != Some(BootStatus::Bad);
    waiting.then(|| primary.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::{Progress, SlotStatus};

    #[allow(clippy::disallowed_methods)] // tests own their clock; this is the epoch
    fn epoch() -> Instant {
        Instant::now()
    }

    fn at(h: u8, m: u8) -> Time {
        Time::from_hms(h, m, 0).expect("valid time")
    }

    fn inputs(calls: usize, emergency: bool, time: Time) -> SwitchInputs {
        SwitchInputs {
            pending: Some("rootfs.1".into()),
            active_calls: calls,
            emergency_call: emergency,
            local_time: time,
        }
    }

    #[test]
    fn reboots_only_after_a_quiet_period_without_calls() {
        let t0 = epoch();
        let mut p = SwitchPlanner::new(SwitchConfig::default());
        let s = |d| t0 + Duration::from_secs(d);
        assert!(matches!(
            p.decide(s(0), &inputs(2, false, at(12, 0))),
            SwitchDecision::Wait {
                why: WaitReason::CallsActive(2),
                ..
            }
        ));
        assert_eq!(
            p.decide(s(10), &inputs(0, false, at(12, 0))),
            SwitchDecision::Wait {
                slot: "rootfs.1".into(),
                why: WaitReason::Settling(Duration::from_secs(120))
            }
        );
        // A call in between restarts the quiet period.
        assert!(matches!(
            p.decide(s(100), &inputs(1, false, at(12, 0))),
            SwitchDecision::Wait { .. }
        ));
        assert!(matches!(
            p.decide(s(200), &inputs(0, false, at(12, 0))),
            SwitchDecision::Wait {
                why: WaitReason::Settling(_),
                ..
            }
        ));
        assert_eq!(
            p.decide(s(320), &inputs(0, false, at(12, 0))),
            SwitchDecision::Switch {
                slot: "rootfs.1".into()
            }
        );
    }

    #[test]
    fn never_during_an_emergency_call_and_only_inside_the_window() {
        let t0 = epoch();
        let window: MaintenanceWindow = "02:00-04:00".parse().expect("window");
        let mut p = SwitchPlanner::new(SwitchConfig {
            quiet: Duration::ZERO,
            window: Some(window),
        });
        assert!(matches!(
            p.decide(t0, &inputs(0, true, at(3, 0))),
            SwitchDecision::Wait {
                why: WaitReason::EmergencyCall,
                ..
            }
        ));
        assert!(matches!(
            p.decide(t0, &inputs(0, false, at(12, 0))),
            SwitchDecision::Wait {
                why: WaitReason::OutsideWindow(_),
                ..
            }
        ));
        assert!(matches!(
            p.decide(t0, &inputs(0, false, at(3, 0))),
            SwitchDecision::Switch { .. }
        ));
        let idle = SwitchInputs {
            pending: None,
            ..inputs(0, false, at(3, 0))
        };
        assert_eq!(p.decide(t0, &idle), SwitchDecision::Idle);
    }

    fn status(primary: Option<&str>, slot1: (&str, Option<BootStatus>)) -> UpdateStatus {
        let slot = |name: &str, state: &str, boot_status| SlotStatus {
            name: name.into(),
            class: "rootfs".into(),
            device: String::new(),
            bootname: None,
            state: state.into(),
            boot_status,
            bundle_version: None,
            installed_at: None,
            sha256: None,
        };
        UpdateStatus {
            operation: "idle".into(),
            progress: Progress {
                percent: 100,
                message: String::new(),
                depth: 1,
            },
            last_error: None,
            compatible: "pbx".into(),
            boot_slot: "A".into(),
            primary: primary.map(str::to_owned),
            slots: vec![
                slot("rootfs.0", "booted", Some(BootStatus::Good)),
                slot("rootfs.1", slot1.0, slot1.1),
            ],
        }
    }

    #[test]
    fn a_slot_is_pending_when_primary_not_booted_and_not_bad() {
        let good = Some(BootStatus::Good);
        assert_eq!(
            pending_slot(&status(Some("rootfs.1"), ("inactive", good))).as_deref(),
            Some("rootfs.1")
        );
        assert_eq!(
            pending_slot(&status(Some("rootfs.0"), ("inactive", good))),
            None
        );
        assert_eq!(
            pending_slot(&status(
                Some("rootfs.1"),
                ("inactive", Some(BootStatus::Bad))
            )),
            None
        );
        assert_eq!(pending_slot(&status(None, ("inactive", good))), None);
        assert_eq!(
            pending_slot(&status(Some("rootfs.9"), ("inactive", good))),
            None
        );
    }
}
