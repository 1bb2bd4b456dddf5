//! The SIP task's end of the GSM module: call events from the modem task go to the
//! module's leg ([`super::legs::GsmLegs`] inside `SipCalls`), and that leg's outputs go to
//! the modem task (ATD/ATA/ATH through the [`GsmLink`]) and to the audio bridge (the relay
//! port the module's audio must reach).

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch};
use tracing::{info, warn};

use super::core::GsmCallEvent;
use super::legs::GsmOutput;
use super::GsmLink;
use crate::call::LegId;
use crate::clock;
use crate::sip::Endpoint;

/// Something for the SIP task from the module.
#[derive(Debug)]
pub(crate) enum GsmInput {
    /// A call event.
    Call(GsmCallEvent),
    /// The module refused to dial for this leg.
    DialFailed(LegId, String),
}

/// The SIP task's link to the modem task and the module's audio bridge.
#[derive(Debug)]
pub(crate) struct GsmShell {
    events: broadcast::Receiver<GsmCallEvent>,
    /// Commands for the modem task, carried out in order by one worker.
    commands: mpsc::UnboundedSender<GsmOutput>,
    dial_rx: mpsc::UnboundedReceiver<(LegId, String)>,
    media: Arc<watch::Sender<Option<u16>>>,
}

/// Sends the leg's commands to the modem task one after another (a hang-up never
/// overtakes its dial); a refused dial comes back on `failed`.
async fn forward(
    link: GsmLink,
    mut commands: mpsc::UnboundedReceiver<GsmOutput>,
    failed: mpsc::UnboundedSender<(LegId, String)>,
) {
    while let Some(cmd) = commands.recv().await {
        match cmd {
            GsmOutput::Dial {
                leg,
                number,
                emergency,
            } => {
                if let Err(e) = link.dial(&number, emergency).await {
                    warn!(%number, "GSM dial refused: {e}");
                    let _ = failed.send((leg, e.to_string()));
                }
            }
            GsmOutput::Answer => link.answer().await,
            GsmOutput::HangUp => link.hang_up().await,
            GsmOutput::Media(_) => {}
        }
    }
}

impl GsmShell {
    /// Over `link`; `media` tells the audio bridge the relay port (`None`: no call).
    pub(crate) fn new(link: GsmLink, media: Arc<watch::Sender<Option<u16>>>) -> Self {
        let (dial_tx, dial_rx) = mpsc::unbounded_channel();
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(forward(link.clone(), rx, dial_tx));
        GsmShell {
            events: link.call_events(),
            commands,
            dial_rx,
            media,
        }
    }

    /// The next input (pending forever when none comes).
    pub(crate) async fn next(&mut self) -> GsmInput {
        loop {
            tokio::select! {
                r = self.events.recv() => match r {
                    Ok(ev) => return GsmInput::Call(ev),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(missed = n, "GSM call events lost");
                    }
                    // The link outlives the modem task; a closed channel never yields.
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                },
                Some((leg, why)) = self.dial_rx.recv() => return GsmInput::DialFailed(leg, why),
            }
        }
    }

    /// Hands `input` to the calls; inbound calls ring the stored GSM destination.
    pub(crate) fn handle(
        &mut self,
        input: GsmInput,
        endpoint: &mut Endpoint,
        services: &mut crate::sip::StoreServices,
    ) {
        match input {
            GsmInput::Call(ev) => {
                let dest = services
                    .store
                    .gsm_settings()
                    .map_err(|e| warn!("GSM settings unreadable: {e}"))
                    .ok()
                    .and_then(|s| s.inbound_destination);
                if matches!(ev, GsmCallEvent::Incoming { .. }) && dest.is_none() {
                    warn!("GSM call refused: no destination (pbxctl gsm route --inbound N)");
                }
                endpoint.handle_gsm_event(clock::now(), ev, dest.as_deref(), services);
            }
            GsmInput::DialFailed(leg, why) => {
                endpoint.handle_gsm_dial_failed(clock::now(), leg, &why, services);
            }
        }
    }

    /// Carries out the module leg's outputs.
    pub(crate) fn carry_out(&self, endpoint: &mut Endpoint) {
        while let Some(out) = endpoint.poll_gsm_output() {
            match out {
                GsmOutput::Media(port) => {
                    self.media.send_replace(port);
                }
                other => {
                    if let GsmOutput::Dial {
                        leg,
                        number,
                        emergency,
                    } = &other
                    {
                        info!(leg, %number, emergency, "dialling over GSM");
                    }
                    let _ = self.commands.send(other);
                }
            }
        }
    }
}
