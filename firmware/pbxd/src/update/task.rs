//! The tokio shell of the health gate: feeds probe reports and timeouts to
//! [`HealthGate`], marks the booted slot through an [`Installer`], writes the verdict for
//! systemd (`boot-complete.target`, see `docs/decisions.md`) and asks for a reboot on a
//! bad verdict.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::health::{
    Check, CheckResult, HealthConfig, HealthGate, HealthInput, HealthOutput, Requirement, Verdict,
};
use super::{Installer, MarkState, Marked, SlotRef, UpdateError};
use crate::clock;

/// How often, and how far apart, a failed mark is retried (the RAUC service may still be
/// starting when pbxd is ready).
const MARK_TRIES: u32 = 5;
const MARK_RETRY: Duration = Duration::from_secs(2);

/// What the gate did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateOutcome {
    /// The gate's verdict.
    pub verdict: Verdict,
    /// The answer to the mark (good or bad) of the booted slot.
    pub marked: Result<Marked, UpdateError>,
    /// Whether a reboot was requested.
    pub rebooted: bool,
}

/// Where the shell reports besides the installer.
#[derive(Debug, Clone, Default)]
pub struct GateSinks {
    /// File that receives `good` or `bad: <reasons>` once decided (e.g.
    /// `/run/pbxd/health`), for the unit that `boot-complete.target` requires.
    pub verdict_file: Option<PathBuf>,
}

async fn mark_with_retries<I: Installer>(
    installer: &I,
    state: MarkState,
) -> Result<Marked, UpdateError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match installer.mark(state, SlotRef::Booted).await {
            Ok(m) => return Ok(m),
            Err(e) if tries < MARK_TRIES => {
                warn!("marking the booted slot {state:?} failed ({e}); retrying");
                tokio::time::sleep(MARK_RETRY).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn write_verdict(sinks: &GateSinks, verdict: &Verdict) {
    let Some(path) = &sinks.verdict_file else {
        return;
    };
    let text = match verdict {
        Verdict::Good => "good\n".to_owned(),
        Verdict::Bad(failed) => {
            let reasons: Vec<String> = failed.iter().map(ToString::to_string).collect();
            format!("bad: {}\n", reasons.join("; "))
        }
    };
    // Written whole then renamed, so the unit waiting for it never reads half a line.
    let tmp = path.with_extension("tmp");
    let res = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        error!("cannot write the health verdict to {}: {e}", path.display());
    }
}

/// Runs the health gate to its verdict: probe reports arrive on `reports` (the senders
/// may be dropped once everything has reported); on `Good` the booted slot is marked
/// good; on `Bad` it is marked bad and `reboot` is called (after the verdict file is
/// written, so the reason survives in the journal and the file).
pub async fn run_health_gate<I: Installer>(
    installer: &I,
    config: HealthConfig,
    mut reports: mpsc::Receiver<(Check, CheckResult)>,
    sinks: GateSinks,
    reboot: impl FnOnce(),
) -> GateOutcome {
    let mut gate = HealthGate::new(config, clock::now());
    let mut open = true;
    let mut marked = None;
    let mut reboot = Some(reboot);
    let mut rebooted = false;
    loop {
        while let Some(out) = gate.poll_output() {
            match out {
                HealthOutput::MarkGood => {
                    info!("health gate passed; marking the booted slot good");
                    marked = Some(mark_with_retries(installer, MarkState::Good).await);
                }
                HealthOutput::MarkBad { failed } => {
                    let reasons: Vec<String> = failed.iter().map(ToString::to_string).collect();
                    error!(
                        "health gate failed ({}); marking the booted slot bad",
                        reasons.join("; ")
                    );
                    marked = Some(mark_with_retries(installer, MarkState::Bad).await);
                }
                HealthOutput::Reboot => {
                    if let Some(v) = gate.verdict() {
                        write_verdict(&sinks, v);
                    }
                    if let Some(f) = reboot.take() {
                        error!("rebooting so the bootloader falls back to the other slot");
                        f();
                        rebooted = true;
                    }
                }
            }
        }
        if let Some(verdict) = gate.verdict().cloned() {
            if verdict == Verdict::Good {
                write_verdict(&sinks, &verdict);
            }
            if let Some(Err(e)) = &marked {
                error!("could not mark the booted slot: {e}");
            }
            return GateOutcome {
                verdict,
                // Both verdicts emit their mark before anything else, so `marked` is set.
                marked: marked.unwrap_or(Err(UpdateError::Disabled)),
                rebooted,
            };
        }
        let Some(deadline) = gate.poll_timeout() else {
            continue;
        };
        let sleep = tokio::time::sleep_until(deadline.into());
        tokio::select! {
            r = reports.recv(), if open => match r {
                Some((check, result)) => {
                    info!(check = check.name(), ?result, "health check reported");
                    gate.handle(clock::now(), HealthInput::Check(check, result));
                }
                None => open = false,
            },
            () = sleep => gate.handle(clock::now(), HealthInput::Timeout),
        }
    }
}

/// The daemon's health gate at start (with `--update-backend rauc`): the database has
/// opened and migrated before this is called; SIP counts once `sip_ready` turns true;
/// the analog ports when the box has them (`analog`); the trunk when it was registered
/// before this boot (`trunk`). Runs once, to its verdict.
pub async fn boot_gate(
    cfg: super::UpdateConfig,
    mut sip_ready: tokio::sync::watch::Receiver<bool>,
    analog: Option<tokio::sync::oneshot::Receiver<crate::line::sim::PortsHealth>>,
    trunk: Option<super::trunk_check::TrunkProbe>,
) {
    let installer = match super::rauc::RaucInstaller::connect(&cfg.bus).await {
        Ok(i) => i,
        Err(e) => {
            // Without the bus nothing can be marked: the bootloader's attempt counter
            // still falls back if this slot keeps failing to boot.
            error!("health gate: {e}; the booted slot is not marked");
            return;
        }
    };
    let (tx, rx) = mpsc::channel(4);
    // The caller opened and migrated the store before starting the gate.
    let _ = tx.try_send((Check::Database, CheckResult::Passed));
    let sip_tx = tx.clone();
    tokio::spawn(async move {
        let tx = sip_tx;
        if sip_ready.wait_for(|r| *r).await.is_ok() {
            let _ = tx.send((Check::SipListening, CheckResult::Passed)).await;
        }
    });
    let analog_ports = match analog {
        None => Requirement::NotApplicable,
        Some(report) => {
            let tx = tx.clone();
            tokio::spawn(async move {
                let result = match report.await {
                    Ok(h) => analog_result(&h),
                    Err(_) => CheckResult::Fatal("the analog ports' thread ended".into()),
                };
                let _ = tx.send((Check::AnalogPorts, result)).await;
            });
            Requirement::Required
        }
    };
    let trunk = match trunk {
        None => Requirement::NotApplicable,
        Some(probe) => {
            tokio::spawn(probe.run(tx.clone()));
            Requirement::Required
        }
    };
    let config = HealthConfig {
        limit: cfg.health_limit,
        analog_ports,
        trunk,
    };
    let command = cfg.reboot_command.clone();
    let sinks = GateSinks {
        verdict_file: cfg.verdict_file.clone(),
    };
    run_health_gate(&installer, config, rx, sinks, move || reboot(&command)).await;
}

/// The analog ports pass when at least one came up: a port whose chip does not answer is
/// marked faulty and the rest work (a broken chip must not roll back every update), but
/// no port at all means the new firmware cannot drive the hardware.
pub fn analog_result(h: &crate::line::sim::PortsHealth) -> CheckResult {
    if h.up > 0 {
        for (port, why) in &h.faulty {
            warn!(port, "analog port faulty: {why}");
        }
        CheckResult::Passed
    } else {
        let why: Vec<String> = h
            .faulty
            .iter()
            .map(|(p, w)| format!("port {p}: {w}"))
            .collect();
        CheckResult::Fatal(format!("no analog port came up ({})", why.join("; ")))
    }
}

/// With `--update-backend rauc`: reboots into an installed update at a quiet moment
/// ([`run_switch`], status polled every 30 s), unless `--no-auto-switch`.
pub async fn switch_when_quiet(
    cfg: super::UpdateConfig,
    calls: super::CallsUp,
    utc_offset: time::UtcOffset,
) {
    let Some(switch) = cfg.switch else {
        return;
    };
    let installer = match super::rauc::RaucInstaller::connect(&cfg.bus).await {
        Ok(i) => i,
        Err(e) => {
            warn!("update switch: {e}; installed updates boot at the next restart");
            return;
        }
    };
    let command = cfg.reboot_command.clone();
    run_switch(
        &installer,
        switch,
        Duration::from_secs(30),
        calls,
        utc_offset,
        move || reboot(&command),
    )
    .await;
}

/// Starts the reboot command without waiting for it (it ends this process).
fn reboot(command: &[String]) {
    let Some((program, args)) = command.split_first() else {
        error!("no reboot command configured");
        return;
    };
    if let Err(e) = std::process::Command::new(program).args(args).spawn() {
        error!("cannot run the reboot command {program}: {e}");
    }
}

/// The hawkBit poll loop: one [`super::hawkbit_client::DdiClient::poll_cycle`] at each time
/// the [`super::hawkbit::PollSchedule`] names (the server's sleep, or a back-off after a failure). Calls come
/// from the SIP shell's counter; local time from the wall clock at `utc_offset` (read
/// once at start, before the runtime's threads exist).
pub async fn run_hawkbit<I: Installer>(
    client: super::hawkbit_client::DdiClient,
    installer: I,
    policy: super::InstallPolicy,
    download_dir: PathBuf,
    calls: super::CallsUp,
    utc_offset: time::UtcOffset,
) -> anyhow::Result<()> {
    use super::hawkbit::PollSchedule;
    let mut schedule = PollSchedule::new(clock::now());
    let attributes = std::collections::BTreeMap::from([(
        "pbxd.version".to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
    )]);
    loop {
        tokio::time::sleep_until(schedule.poll_timeout().into()).await;
        let local_time = local_time(utc_offset);
        let ctx = super::hawkbit_client::CycleContext {
            download_dir: download_dir.clone(),
            attributes: attributes.clone(),
            policy,
            install: super::InstallContext {
                active_calls: calls.count(),
                emergency_call: calls.emergency(),
                local_time,
            },
        };
        match client.poll_cycle(&installer, &ctx).await {
            Ok((reply, done)) => {
                for outcome in done {
                    info!(?outcome, "hawkBit");
                }
                schedule.handle_reply(clock::now(), &reply);
            }
            Err(e) => {
                warn!("hawkBit poll failed: {e}");
                schedule.handle_failure(clock::now());
            }
        }
    }
}

/// Watches for an installed slot waiting to be booted (whoever installed it: hawkBit,
/// `pbxctl update install`, the web UI) and calls `reboot` once the planner finds a quiet
/// moment. Returns the slot it switched to. Status errors are logged and retried.
pub async fn run_switch<I: Installer>(
    installer: &I,
    cfg: super::switch::SwitchConfig,
    poll: std::time::Duration,
    calls: super::CallsUp,
    utc_offset: time::UtcOffset,
    reboot: impl FnOnce(),
) -> String {
    use super::switch::{pending_slot, SwitchDecision, SwitchInputs, SwitchPlanner};
    let mut planner = SwitchPlanner::new(cfg);
    let mut last: Option<SwitchDecision> = None;
    let mut status_failed = false;
    loop {
        let pending = match installer.status().await {
            Ok(status) => {
                status_failed = false;
                pending_slot(&status)
            }
            Err(e) => {
                if !status_failed {
                    warn!("cannot read the update status: {e}");
                    status_failed = true;
                }
                tokio::time::sleep(poll).await;
                continue;
            }
        };
        let inputs = SwitchInputs {
            pending,
            active_calls: calls.count(),
            emergency_call: calls.emergency(),
            local_time: local_time(utc_offset),
        };
        let decision = planner.decide(clock::now(), &inputs);
        // Log changes of kind, not every round of a countdown.
        let kind = |d: &SwitchDecision| std::mem::discriminant(d);
        let why = |d: &SwitchDecision| match d {
            SwitchDecision::Wait { why, .. } => Some(std::mem::discriminant(why)),
            _ => None,
        };
        if last
            .as_ref()
            .is_none_or(|l| kind(l) != kind(&decision) || why(l) != why(&decision))
        {
            match &decision {
                SwitchDecision::Idle => {}
                SwitchDecision::Wait { slot, why } => {
                    info!(
                        slot,
                        ?why,
                        "update installed; waiting for a quiet moment to boot it"
                    )
                }
                SwitchDecision::Switch { .. } => {}
            }
        }
        if let SwitchDecision::Switch { slot } = &decision {
            info!(
                slot,
                "no calls for a while: rebooting into the installed update"
            );
            reboot();
            return slot.clone();
        }
        last = Some(decision);
        tokio::time::sleep(poll).await;
    }
}

/// Local wall-clock time at `utc_offset`.
fn local_time(utc_offset: time::UtcOffset) -> time::Time {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(clock::unix_now()).unwrap_or(0))
        .map(|t| t.to_offset(utc_offset).time())
        .unwrap_or(time::Time::MIDNIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::sim::PortsHealth;

    #[test]
    fn analog_ports_pass_with_one_port_up_and_fail_for_good_with_none() {
        let all = PortsHealth {
            up: 2,
            faulty: vec![],
        };
        assert_eq!(analog_result(&all), CheckResult::Passed);
        let one_broken = PortsHealth {
            up: 1,
            faulty: vec![(2, "SLIC does not come up".into())],
        };
        assert_eq!(analog_result(&one_broken), CheckResult::Passed);
        let none = PortsHealth {
            up: 0,
            faulty: vec![(1, "x".into()), (2, "y".into())],
        };
        assert!(
            matches!(analog_result(&none), CheckResult::Fatal(m) if m.contains("port 1: x; port 2: y"))
        );
    }
}
