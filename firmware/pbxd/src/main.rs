//! `pbxd`: parse the configuration, open the store, bind, spawn supervised tasks,
//! announce readiness, and drain on SIGTERM/SIGINT.

use std::process::ExitCode;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::sync::watch;
use tracing::{error, info, warn};

use pbxd::config::{Cli, Config, Hardware, LogFormat};
use pbxd::persist::Persister;
use pbxd::sip::{SipShell, SipSockets};
use pbxd::store::Store;
use pbxd::supervise::supervise;
use pbxd::web;

/// How long start-up waits for the SIP task before announcing readiness anyway.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match cli.into_config() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("pbxd: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(cfg.log_format);
    // Only sound while single-threaded: read before the runtime starts (hawkBit's
    // maintenance window is in local time).
    let utc_offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cfg, utc_offset)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            eprintln!("pbxd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // `PBXD_LOG` takes `level` or `target=level` directives (`info,pbxd::sip=debug`).
    // `Targets` rather than `EnvFilter`: the latter's regex engine costs ~0.5 MB of firmware.
    let info = || tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO);
    let filter = match std::env::var("PBXD_LOG") {
        Err(_) => info(),
        Ok(v) => v.parse().unwrap_or_else(|e| {
            eprintln!("pbxd: PBXD_LOG={v:?} not understood ({e}); logging at info");
            info()
        }),
    };
    // Besides stderr, the last lines stay in memory for the support bundle.
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(pbxd::diag::log_tail::LogTail);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Json => registry.with(fmt.json()).init(),
        LogFormat::Human => registry
            .with(fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())))
            .init(),
    }
}

async fn run(cfg: Config, utc_offset: time::UtcOffset) -> anyhow::Result<()> {
    // Open (create, migrate) the store first: a bad data dir or database stops us here
    // with a clear message, before anything listens.
    let store = Store::open(&cfg.data_dir)
        .with_context(|| format!("cannot use data directory {}", cfg.data_dir.display()))?;
    let realm = store.realm()?;
    // Before the SIP task writes this boot's trunk status: was a trunk registered in the
    // previous one? Then the health gate requires it to register again.
    let trunk_probe = pbxd::update::trunk_check::TrunkProbe::if_registered_before(
        &store,
        cfg.data_dir.clone(),
        i64::try_from(pbxd::clock::unix_now()).unwrap_or(i64::MAX),
    );
    drop(store);
    let (persister, writer) = Persister::start(cfg.data_dir.clone())?;

    let mut sockets = SipSockets::bind(cfg.sip_listen)
        .await
        .with_context(|| format!("cannot listen for SIP on {}", cfg.sip_listen))?;
    let sip_addr = sockets.local_addr()?;
    // One device identity for HTTPS and SIP over TLS: a certificate uploaded on the web
    // page is served by both to new connections at once.
    let mut hostnames = vec![cfg.https_listen.ip().to_string()];
    if let Some(addr) = cfg.sip_tls_listen {
        hostnames.extend([addr.ip().to_string(), sip_addr.ip().to_string()]);
    }
    hostnames.dedup();
    let device_cert = web::device_cert::DeviceCert::load(&cfg.data_dir, &hostnames)
        .context("cannot set up the TLS certificate")?;
    let mut tls_note = String::new();
    if let Some(addr) = cfg.sip_tls_listen {
        let tls_cfg = device_cert
            .sip_server_config()
            .context("cannot set up SIP over TLS")?;
        let bound = sockets
            .bind_tls(addr, tls_cfg)
            .await
            .with_context(|| format!("cannot listen for SIP over TLS on {addr}"))?;
        tls_note = format!(" sips={bound}");
    }
    let http = Arc::new(
        tokio::net::TcpListener::bind(cfg.http_listen)
            .await
            .with_context(|| format!("cannot listen for HTTP on {}", cfg.http_listen))?,
    );
    let http_addr = http.local_addr()?;
    // The web UI is not worth stopping telephony for: a busy HTTPS port is logged and
    // retried by the task's supervisor (existing rigs start several pbxd on one host).
    let https = match tokio::net::TcpListener::bind(cfg.https_listen).await {
        Ok(l) => Some(Arc::new(l)),
        Err(e) => {
            error!(
                "cannot listen for HTTPS on {}: {e}; retrying",
                cfg.https_listen
            );
            None
        }
    };
    let https_addr = https
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .unwrap_or(cfg.https_listen);
    let https_tls = device_cert.server_config().context("cannot set up HTTPS")?;
    let https_cert = device_cert;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut shell = SipShell::new(cfg.clone(), sockets, persister);
    let mut ports_health = None;
    if cfg.hardware == Hardware::Board {
        // A bad board file or a missing device stops us here, naming the line.
        let path = cfg
            .board_file
            .as_deref()
            .context("--hardware board needs --board-file")?;
        let board = pbxd::line::board::open(path)?;
        let sync = pbxd::line::ports_sync::start(&cfg.data_dir, cfg.port_extensions.len())
            .context("cannot read the analog ports' settings")?;
        let numbers = {
            let store = Store::open(&cfg.data_dir)?;
            pbxd::line::ports_sync::numbers(&cfg.port_extensions, &store.port_settings()?)
        };
        // A device that does not open stops us too; a chip that does not answer makes
        // its port faulty (the health gate and `pbxctl ports` show it).
        let mut ports =
            pbxd::line::board::spawn(path, &board, &numbers, cfg.media.bind_ip, Some(sync))?;
        ports_health = ports.health.take();
        shell = shell.with_ports(ports);
    }
    if cfg.hardware == Hardware::Sim && !cfg.port_extensions.is_empty() {
        let control = cfg.data_dir.join("sim.sock");
        // Per-port settings (pbxctl port set) and live status for pbxctl ports.
        let sync = pbxd::line::ports_sync::start(&cfg.data_dir, cfg.port_extensions.len())
            .context("cannot read the analog ports' settings")?;
        let numbers = {
            let store = Store::open(&cfg.data_dir)?;
            pbxd::line::ports_sync::numbers(&cfg.port_extensions, &store.port_settings()?)
        };
        match pbxd::line::sim::spawn(
            &numbers,
            cfg.media.bind_ip,
            control,
            Some(sync),
            &cfg.sim_wrong_chip_id,
        ) {
            Ok(mut ports) => {
                ports_health = ports.health.take();
                shell = shell.with_ports(ports);
            }
            // Telephony goes on without the analog ports.
            Err(e) => warn!("simulated analog ports unavailable: {e}"),
        }
    }
    let status = web::Status {
        sip: sip_addr,
        bindings: shell.bindings.clone(),
        calls: shell.calls.clone(),
        emergency_calls: shell.emergency_calls.clone(),
    };
    let web_state = {
        let (dir, status) = (cfg.data_dir.clone(), status.clone());
        tokio::task::spawn_blocking(move || web::api::WebState::new(&dir, status))
            .await
            .context("web set-up task")?
            .context("cannot set up the web API")?
    };
    // The GSM module: a real port (--modem), or the EC25 emulator on a pty with
    // --hardware sim (scripted through DATA/modem.sock); the emulator lives as long as
    // the daemon. Its calls are legs of the SIP task's calls, its audio goes through the
    // audio bridge (the emulator's in-memory PCM; none yet for a real module).
    let gsm_link = pbxd::gsm::GsmLink::default();
    let gsm_emulator = match (&cfg.modem, cfg.hardware) {
        (None, Hardware::Sim) => {
            use pbx_hal::modem::emulator::{Ec25, Ec25Config, PtyModem};
            match PtyModem::spawn(Ec25::new(Ec25Config::default())) {
                Ok(m) => Some(m),
                Err(e) => {
                    warn!("emulated GSM module unavailable: {e}");
                    None
                }
            }
        }
        _ => None,
    };
    let gsm_port = pbxd::gsm::task::device_path(cfg.modem.as_deref(), gsm_emulator.as_ref());
    // Recovery's last step, power-cycling the module (gsm/power.rs).
    let gsm_power = match (&gsm_emulator, cfg.hardware, cfg.board_file.as_deref()) {
        (Some(m), _, _) => Some(pbxd::gsm::power::emulator(m)),
        (None, Hardware::Board, Some(f)) if cfg.modem.is_some() => pbxd::gsm::power::board(f)?,
        _ => None,
    };
    if gsm_port.is_some() {
        if let Some(m) = &gsm_emulator {
            let control = cfg.data_dir.join("modem.sock");
            if let Err(e) = pbxd::gsm::sim::spawn_control(&control, m.handle()) {
                warn!("modem control socket unavailable: {e}");
            }
        }
        let bridge = match (&cfg.modem_pcm, &gsm_emulator) {
            (Some(name), _) => gsm_alsa_bridge(cfg.media.bind_ip, name).await,
            (None, Some(m)) => pbxd::gsm::audio::spawn(cfg.media.bind_ip, m.handle()).await,
            (None, None) => {
                pbxd::gsm::audio::spawn(cfg.media.bind_ip, pbxd::gsm::audio::NoPcm).await
            }
        }
        .context("cannot start the GSM audio bridge")?;
        shell = shell.with_gsm(gsm_link.clone(), bridge.addr, bridge.media);
    }
    web_state.configure_certificate(https_cert);
    web_state.configure_dialer(shell.dialer());
    web_state.configure_firmware(web::api_firmware::FirmwareSettings {
        backend: cfg.update.backend,
        bus: cfg.update.bus.clone(),
        policy: cfg.update.policy,
        utc_offset: Some(utc_offset),
    });
    let mut tasks = tokio::task::JoinSet::new();
    {
        let shell = shell.clone();
        let rx = shutdown_rx.clone();
        tasks.spawn(supervise("sip", shutdown_rx.clone(), move || {
            shell.clone().run(rx.clone())
        }));
    }
    // One connection budget shared by TCP and TLS.
    let open = Arc::new(AtomicUsize::new(0));
    {
        let shell = shell.clone();
        let open = open.clone();
        tasks.spawn(supervise(
            "sip-tcp-accept",
            shutdown_rx.clone(),
            move || shell.clone().run_tcp_accept(open.clone()),
        ));
    }
    if shell.has_tls() {
        let shell = shell.clone();
        tasks.spawn(supervise(
            "sip-tls-accept",
            shutdown_rx.clone(),
            move || shell.clone().run_tls_accept(open.clone()),
        ));
    }
    tasks.spawn(supervise("http", shutdown_rx.clone(), move || {
        web::serve_http(http.clone(), status.clone(), https_addr.port())
    }));
    tasks.spawn(supervise("https", shutdown_rx.clone(), move || {
        web::serve_https(
            https.clone(),
            https_addr,
            https_tls.clone(),
            web_state.clone(),
        )
    }));
    if let Some(port) = gsm_port {
        let (dir, link, rx) = (cfg.data_dir.clone(), gsm_link.clone(), shutdown_rx.clone());
        tasks.spawn(supervise("gsm", shutdown_rx.clone(), move || {
            let power = gsm_power.as_ref().and_then(|f| f());
            pbxd::gsm::task::run_with_power(
                dir.clone(),
                port.clone(),
                link.clone(),
                power,
                rx.clone(),
            )
        }));
    }
    drop(gsm_link);
    let mut sip_ready = shell.ready();
    if cfg.update.backend == pbxd::update::UpdateBackend::Rauc {
        // Once per start: mark the booted slot good, or bad and reboot (update/task.rs).
        tokio::spawn(pbxd::update::task::boot_gate(
            cfg.update.clone(),
            shell.ready(),
            ports_health.take(),
            trunk_probe,
        ));
        tokio::spawn(pbxd::update::task::switch_when_quiet(
            cfg.update.clone(),
            calls_up(&shell),
            utc_offset,
        ));
    }
    if let Some(ddi) = cfg.update.hawkbit.clone() {
        let (update, calls, dir) = (cfg.update.clone(), calls_up(&shell), cfg.data_dir.clone());
        tasks.spawn(supervise("hawkbit", shutdown_rx.clone(), move || {
            let (ddi, update, calls, dir) =
                (ddi.clone(), update.clone(), calls.clone(), dir.clone());
            async move {
                let installer = pbxd::update::rauc::RaucInstaller::connect(&update.bus).await?;
                pbxd::update::task::run_hawkbit(
                    pbxd::update::hawkbit_client::DdiClient::new(ddi),
                    installer,
                    update.policy,
                    dir,
                    calls,
                    utc_offset,
                )
                .await
            }
        }));
    }
    if let Some(interval) = pbxd::notify::watchdog_interval() {
        let sip = shell.liveness();
        info!(
            "systemd watchdog: pinging every {:?} while SIP answers",
            interval / 2
        );
        tasks.spawn(pbxd::notify::run_watchdog(
            interval,
            sip,
            shutdown_rx.clone(),
        ));
    }
    drop(shell);

    // "ready" means ready: the SIP task has restored the stored bindings and blocks.
    let waited = tokio::time::timeout(READY_TIMEOUT, sip_ready.wait_for(|r| *r)).await;
    if !matches!(waited, Ok(Ok(_))) {
        warn!("SIP task not ready after {READY_TIMEOUT:?}; its supervisor keeps trying");
    }
    let ready_line = format!("ready: sip={sip_addr} http={http_addr} https={https_addr}{tls_note}");
    info!(%realm, "{ready_line}");
    pbxd::notify::ready(&ready_line);
    wait_for_signal().await?;
    info!("shutting down");
    pbxd::notify::stopping();
    let _ = shutdown_tx.send(true);
    while tasks.join_next().await.is_some() {}
    // Every sender of the writer's queue is gone once the tasks have ended: the writer
    // drains what is queued and stops.
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    info!("stopped");
    Ok(())
}

/// The SIP task's call counts for the update tasks.
fn calls_up(shell: &SipShell) -> pbxd::update::CallsUp {
    pbxd::update::CallsUp {
        all: shell.calls.clone(),
        emergency: shell.emergency_calls.clone(),
    }
}

/// The GSM audio bridge over the module's ALSA PCM (`--modem-pcm`).
#[cfg(feature = "alsa")]
async fn gsm_alsa_bridge(
    relay_ip: std::net::IpAddr,
    name: &str,
) -> std::io::Result<pbxd::gsm::audio::AudioBridge> {
    let pcm = pbxd::gsm::alsa_pcm::AlsaPcm::start(name)?;
    pbxd::gsm::audio::spawn(relay_ip, pcm).await
}

/// Without ALSA the module's PCM cannot be opened: calls connect without audio.
#[cfg(not(feature = "alsa"))]
async fn gsm_alsa_bridge(
    relay_ip: std::net::IpAddr,
    name: &str,
) -> std::io::Result<pbxd::gsm::audio::AudioBridge> {
    warn!("--modem-pcm {name}: this pbxd is built without ALSA (feature `alsa`); GSM calls have no audio");
    pbxd::gsm::audio::spawn(relay_ip, pbxd::gsm::audio::NoPcm).await
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
