//! systemd integration: `READY=1` once pbxd serves, `STOPPING=1` at shutdown, and watchdog
//! pings only while the SIP task answers.
//!
//! A ping that came from a timer alone would keep a daemon "alive" whose SIP loop is stuck;
//! so each round asks the SIP task itself (a message through its event loop, [`Liveness`])
//! and pings systemd only when the answer comes back in time. Without `WatchdogSec=` in the
//! unit nothing runs; without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};

/// Asks an event loop whether it still turns.
#[derive(Debug, Clone)]
pub struct Liveness {
    tx: mpsc::Sender<oneshot::Sender<()>>,
}

/// The event loop's side of [`Liveness`]: answer every request received.
pub type LivenessRequests = mpsc::Receiver<oneshot::Sender<()>>;

impl Liveness {
    /// A pair: the asking side and the loop's receiver.
    pub fn new() -> (Self, LivenessRequests) {
        let (tx, rx) = mpsc::channel(4);
        (Self { tx }, rx)
    }

    /// Whether the loop answers within `within`.
    pub async fn check(&self, within: Duration) -> bool {
        let (reply, answered) = oneshot::channel();
        if self.tx.try_send(reply).is_err() {
            // Earlier requests still unanswered: the loop is not turning.
            return false;
        }
        matches!(tokio::time::timeout(within, answered).await, Ok(Ok(())))
    }
}

/// Tells systemd we serve, with a one-line status.
pub fn ready(status: &str) {
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)]) {
        warn!("cannot notify systemd: {e}");
    }
}

/// Tells systemd we are stopping (so a slow shutdown is not taken for a hang).
pub fn stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
}

/// The watchdog interval systemd asked for (`WATCHDOG_USEC`), if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// Pings systemd's watchdog twice per `interval` while `sip` answers; stops at shutdown.
pub async fn run_watchdog(interval: Duration, sip: Liveness, mut shutdown: watch::Receiver<bool>) {
    let period = interval / 2;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stalled = false;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
        }
        if sip.check(period / 2).await {
            if stalled {
                warn!("SIP task answers again; watchdog pings resumed");
                stalled = false;
            }
            if let Err(e) = sd_notify::notify(&[NotifyState::Watchdog]) {
                debug!("watchdog ping failed: {e}");
            }
        } else if !stalled {
            // systemd restarts us once the interval passes without a ping.
            warn!("SIP task does not answer; withholding watchdog pings");
            stalled = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn liveness_is_confirmed_only_while_the_loop_answers() {
        let (live, mut requests) = Liveness::new();
        let answering = tokio::spawn(async move {
            // Answer two requests, then stop turning (keep the receiver, answer nothing).
            for _ in 0..2 {
                if let Some(reply) = requests.recv().await {
                    let _ = reply.send(());
                }
            }
            requests
        });
        let short = Duration::from_millis(200);
        assert!(live.check(short).await);
        assert!(live.check(short).await);
        let _stuck = answering.await.expect("task");
        assert!(!live.check(short).await);
    }

    #[tokio::test]
    async fn a_loop_that_is_gone_is_not_alive() {
        let (live, requests) = Liveness::new();
        drop(requests);
        assert!(!live.check(Duration::from_millis(50)).await);
    }
}
