//! Supervision: a failed or panicked task is logged and restarted with back-off;
//! the daemon never exits on a recoverable error.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info, Instrument};

/// Back-off after a failure: doubles from 100 ms to 30 s; a task that ran for a
/// minute is considered healthy again.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// How long a task may take to stop after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Runs `make()` until `shutdown` turns true, restarting it whenever it returns an
/// error, panics, or ends on its own.
pub async fn supervise<F, Fut>(name: &'static str, mut shutdown: watch::Receiver<bool>, make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let started = tokio::time::Instant::now();
        let span = tracing::info_span!("task", name);
        let mut handle = tokio::spawn(make().instrument(span));
        let outcome = tokio::select! {
            r = &mut handle => Some(r),
            _ = shutdown.changed() => None,
        };
        match outcome {
            None => {
                // The task sees the same signal; give it time to finish, then stop it.
                if tokio::time::timeout(SHUTDOWN_GRACE, &mut handle)
                    .await
                    .is_err()
                {
                    handle.abort();
                }
                return;
            }
            Some(Ok(Ok(()))) if *shutdown.borrow() => return,
            Some(Ok(Ok(()))) => info!(task = name, "task ended; restarting"),
            Some(Ok(Err(e))) => error!(task = name, "task failed: {e:#}; restarting"),
            Some(Err(e)) => error!(task = name, "task panicked: {e}; restarting"),
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff = FIRST_BACKOFF;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
