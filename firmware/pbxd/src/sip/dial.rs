//! Click-to-dial requests from the web side to the SIP task, which owns the calls:
//! a [`Dialer`] sends one request and waits for the call core's verdict (refused
//! numbers come back with their reason before any phone rings).

use tokio::sync::{mpsc, oneshot};

use crate::call::{CallId, Cause};

/// Requests queued at most; more wait in [`Dialer::dial`].
const QUEUE: usize = 16;

/// One click-to-dial request.
#[derive(Debug)]
pub(crate) struct DialRequest {
    /// The user's extension, rung first.
    pub(crate) extension: String,
    /// The number dialled for it once it answers.
    pub(crate) number: String,
    /// The call core's verdict.
    pub(crate) reply: oneshot::Sender<Result<CallId, Cause>>,
}

/// Why a click-to-dial request did not start a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// The call core refused it (blocked number, no phone reachable, ...).
    #[error("{}", .0.detail.as_deref().unwrap_or("refused"))]
    Refused(Cause),
    /// The SIP task is not running (restarting); try again.
    #[error("the telephony service is not running; try again")]
    NotRunning,
}

/// The web side's handle for click-to-dial requests to the SIP task.
#[derive(Debug, Clone)]
pub struct Dialer {
    tx: mpsc::Sender<DialRequest>,
}

impl Dialer {
    /// A dialer and the receiving end for the SIP task.
    pub(crate) fn channel() -> (Self, mpsc::Receiver<DialRequest>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self { tx }, rx)
    }

    /// Rings `extension`; once it answers, calls `number` for it.
    pub async fn dial(&self, extension: &str, number: &str) -> Result<CallId, DialError> {
        let (reply, answer) = oneshot::channel();
        let req = DialRequest {
            extension: extension.to_owned(),
            number: number.to_owned(),
            reply,
        };
        self.tx.send(req).await.map_err(|_| DialError::NotRunning)?;
        // Dropped unanswered when the task restarts mid-request.
        match answer.await {
            Ok(r) => r.map_err(DialError::Refused),
            Err(_) => Err(DialError::NotRunning),
        }
    }
}
