//! Command-line configuration of `pbxd`, parsed and checked before anything binds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use pbx_sip::auth::Algorithm;

use crate::registrar::RegistrarConfig;
use crate::sip::GuardConfig;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default on a terminal).
    Human,
    /// One JSON object per line (for log collectors).
    Json,
}

/// `pbxd`: the office PBX daemon.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pbxd",
    version,
    about = "Office PBX daemon: SIP registrar for the office's phones"
)]
pub struct Cli {
    /// Directory holding the database (pbx.db) and other state; created if missing.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// SIP listen address; UDP and TCP on the same port.
    #[arg(long, default_value = "127.0.0.1:5060")]
    pub sip_listen: SocketAddr,
    /// SIP over TLS listen address (off unless given), e.g. 0.0.0.0:5061. The device
    /// certificate is DATA/tls/device.crt (generated at first start; replace it with
    /// your own, with its key in DATA/tls/device.key).
    #[arg(long)]
    pub sip_tls_listen: Option<SocketAddr>,
    /// Plain HTTP listen address: `GET /api/v1/health` for test rigs; every other
    /// request is redirected to HTTPS.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http_listen: SocketAddr,
    /// HTTPS listen address of the web UI and its API (device certificate
    /// DATA/tls/device.crt, the same identity as SIP over TLS).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub https_listen: SocketAddr,
    /// Log format; human by default.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Failed authentications from one address that block it.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_max_failures: u32,
    /// Window (seconds) in which failed authentications are counted.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub auth_failure_window: u64,
    /// How long (seconds) an address stays blocked.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub auth_block_time: u64,
    /// Sustained SIP requests per second allowed from one address (0 = no limit).
    #[arg(long, default_value_t = 200)]
    pub sip_rate_limit: u32,
    /// Shortest registration accepted, seconds (423 Interval Too Brief below it).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub min_expires: u32,
    /// Digest algorithms to offer, most preferred first: md5, sha256 (comma-separated).
    /// MD5 first suits phones that read only the first challenge; `md5` alone serves old
    /// user agents that refuse any SHA-256 challenge.
    #[arg(long, value_delimiter = ',', default_value = "md5,sha256", value_parser = parse_algorithm)]
    pub digest_algorithms: Vec<Algorithm>,
    /// Longest registration granted, seconds.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u32).range(60..))]
    pub max_expires: u32,
    /// How long a called phone may ring before the caller gets 408 (seconds).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub ring_timeout: u64,
    /// UDP port range for relayed RTP, `MIN-MAX` (even/odd pairs: RTP, RTCP).
    #[arg(long, default_value = "10000-20000", value_parser = parse_port_range)]
    pub rtp_ports: (u16, u16),
    /// SRTP (SDES) in the offers the box makes to phones: `off` (plain RTP/AVP),
    /// `optional` (RTP/AVP with a=crypto: SRTP if the phone answers with crypto) or
    /// `mandatory` (RTP/SAVP only; plain offers and answers get 488). A phone offering
    /// SRTP always gets it.
    #[arg(long, default_value = "off", value_parser = clap::builder::ValueParser::new(str::parse::<crate::media::SrtpMode>))]
    pub srtp: crate::media::SrtpMode,
    /// An answered call with no RTP from either phone for this long is ended (seconds).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=3600))]
    pub media_timeout: u64,
    /// Address RTP sockets bind to; defaults to the SIP listen address.
    #[arg(long)]
    pub rtp_bind: Option<std::net::IpAddr>,
    /// Analog port hardware: `sim` runs emulated ports with a virtual phone on each,
    /// scriptable through DATA/sim.sock; `none` runs without analog ports; `board` the
    /// SLICs named in --board-file.
    #[arg(long, value_enum, default_value_t = Hardware::Sim)]
    pub hardware: Hardware,
    /// The board file (bring-up and `port`/`pcm` device lines) for `--hardware board`.
    #[arg(long, value_name = "FILE", required_if_eq("hardware", "board"))]
    pub board_file: Option<PathBuf>,
    /// Test only: emulated ports (1-based) whose chip answers with a wrong ID register.
    #[arg(long, hide = true, value_delimiter = ',')]
    pub sim_wrong_chip_id: Vec<usize>,
    /// The GSM/LTE module's AT-command port, e.g. /dev/ttyUSB2. Without it, `--hardware
    /// sim` runs an emulated Quectel EC25 on a pseudo-terminal and `--hardware none` runs
    /// without a GSM module.
    #[arg(long, value_name = "PATH")]
    pub modem: Option<PathBuf>,
    /// The ALSA PCM wired to the GSM module's voice PCM (8 kHz, 16-bit, e.g.
    /// `hw:CARD=modem` or a name from the board's asound.conf). Without it a real
    /// module's calls connect without audio; with `--hardware sim` it replaces the
    /// emulator's in-memory audio.
    #[arg(long, value_name = "PCM")]
    pub modem_pcm: Option<String>,
    /// Extension numbers of the analog ports, port 1 first (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "21,22")]
    pub port_extensions: Vec<String>,
    /// Firmware update system: `rauc` on the board (health gate after boot, installs
    /// over D-Bus), `none` on development hosts.
    #[arg(long, value_enum, default_value_t = crate::update::UpdateBackend::None)]
    pub update_backend: crate::update::UpdateBackend,
    /// D-Bus address of the RAUC service's bus (default: the system bus).
    #[arg(long, value_name = "ADDRESS")]
    pub rauc_dbus_address: Option<String>,
    /// Daily window (local time) in which updates install without `force`, e.g.
    /// 01:00-05:00 (may span midnight). Default: any time.
    #[arg(long, value_name = "HH:MM-HH:MM")]
    pub maintenance_window: Option<crate::update::MaintenanceWindow>,
    /// Seconds after start within which the health checks must pass, or the booted
    /// slot is marked bad and the box reboots (with --update-backend rauc).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(10..=3600))]
    pub health_limit: u64,
    /// File that receives the health verdict (`good` or `bad: ...`) for the unit that
    /// boot-complete.target requires, e.g. /run/pbxd/health.
    #[arg(long, value_name = "FILE")]
    pub health_file: Option<PathBuf>,
    /// Command run to reboot after a bad health verdict, and to boot an installed update.
    #[arg(long, value_name = "CMD", default_value = "systemctl reboot")]
    pub reboot_command: String,
    /// Seconds without any call before pbxd reboots into an installed update (inside the
    /// maintenance window, if set; never during an emergency call).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub switch_quiet: u64,
    /// Do not reboot into an installed update by ourselves; the next restart boots it.
    #[arg(long)]
    pub no_auto_switch: bool,
    /// hawkBit server to poll for updates (DDI API), e.g. `https://hawkbit.example.com`
    /// (needs --update-backend rauc).
    #[arg(long, value_name = "URL")]
    pub hawkbit_url: Option<String>,
    /// hawkBit tenant.
    #[arg(long, default_value = "DEFAULT")]
    pub hawkbit_tenant: String,
    /// This box's controller id on the hawkBit server.
    #[arg(long, value_name = "ID")]
    pub hawkbit_controller_id: Option<String>,
    /// File holding the hawkBit target token (kept out of the process list).
    #[arg(long, value_name = "FILE")]
    pub hawkbit_token_file: Option<PathBuf>,
    /// CA certificate (PEM) to trust for an https:// hawkBit server besides the system's
    /// roots (a private fleet PKI).
    #[arg(long, value_name = "FILE")]
    pub hawkbit_ca: Option<PathBuf>,
}

/// Where the analog ports come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Hardware {
    /// No analog ports.
    None,
    /// Emulated ports (SLIC emulator and virtual phones).
    Sim,
    /// The board's SLICs on spidev/GPIO/ALSA, as the board file names them.
    Board,
}

/// Parses `MIN-MAX` with at least one even/odd pair in it.
fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("expected MIN-MAX, got {s:?}"))?;
    let min: u16 = a.trim().parse().map_err(|_| format!("bad port {a:?}"))?;
    let max: u16 = b.trim().parse().map_err(|_| format!("bad port {b:?}"))?;
    if min < 1024 || min >= max || max - min < 3 {
        return Err(format!(
            "port range {min}-{max} must be within 1024-65535 with room for two RTP/RTCP pairs"
        ));
    }
    Ok((min, max))
}

/// Checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// State directory.
    pub data_dir: PathBuf,
    /// SIP UDP+TCP address.
    pub sip_listen: SocketAddr,
    /// SIP over TLS address, if enabled.
    pub sip_tls_listen: Option<SocketAddr>,
    /// HTTP address.
    pub http_listen: SocketAddr,
    /// HTTPS address (web UI and API).
    pub https_listen: SocketAddr,
    /// Log format.
    pub log_format: LogFormat,
    /// Registrar settings (the realm is filled from the store).
    pub registrar: RegistrarConfig,
    /// Brute-force and flood protection.
    pub guard: GuardConfig,
    /// Call control settings.
    pub calls: crate::call::CallConfig,
    /// RTP relay settings.
    pub media: crate::media::relay::MediaConfig,
    /// Firmware update settings.
    pub update: crate::update::UpdateConfig,
    /// Analog port hardware.
    pub hardware: Hardware,
    /// The board file, with `Hardware::Board`.
    pub board_file: Option<PathBuf>,
    /// Test only: emulated ports whose chip reports a wrong ID.
    pub sim_wrong_chip_id: Vec<usize>,
    /// The analog ports' extension numbers.
    pub port_extensions: Vec<String>,
    /// The GSM module's serial port (`None`: the emulator with `--hardware sim`).
    pub modem: Option<PathBuf>,
    /// The ALSA PCM of the GSM module's voice audio.
    pub modem_pcm: Option<String>,
}

/// A configuration that cannot work, found before binding anything.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A port's extension number is not a valid extension number, or repeats.
    #[error("--port-extensions: {0}")]
    PortExtension(String),
    /// The hawkBit settings are incomplete or unusable.
    #[error("hawkBit: {0}")]
    Hawkbit(String),
    /// `--reboot-command` is empty.
    #[error("--reboot-command must not be empty")]
    EmptyRebootCommand,
    /// `--min-expires` above `--max-expires`.
    #[error("--min-expires ({min}) must not exceed --max-expires ({max})")]
    ExpiresRange {
        /// Given minimum.
        min: u32,
        /// Given maximum.
        max: u32,
    },
}

impl Cli {
    /// Checks the arguments and builds the configuration.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        if self.min_expires > self.max_expires {
            return Err(ConfigError::ExpiresRange {
                min: self.min_expires,
                max: self.max_expires,
            });
        }
        // IP literals in a Request-URI are always ours; names must be listed.
        let registrar = RegistrarConfig {
            domains: vec!["localhost".to_owned()],
            min_expires: self.min_expires,
            max_expires: self.max_expires,
            default_expires: self.max_expires.min(3600),
            algorithms: dedup(self.digest_algorithms),
            ..RegistrarConfig::default()
        };
        let guard = GuardConfig {
            max_failures: self.auth_max_failures,
            failure_window: Duration::from_secs(self.auth_failure_window),
            block_time: Duration::from_secs(self.auth_block_time),
            rate_per_sec: self.sip_rate_limit,
            rate_burst: self.sip_rate_limit.saturating_mul(2),
        };
        let calls = crate::call::CallConfig {
            ring_timeout: Duration::from_secs(self.ring_timeout),
            srtp: self.srtp,
            ..crate::call::CallConfig::default()
        };
        let mut seen = Vec::new();
        for n in &self.port_extensions {
            crate::store::validate_number(n)
                .map_err(|e| ConfigError::PortExtension(format!("{n}: {e}")))?;
            if seen.contains(n) {
                return Err(ConfigError::PortExtension(format!("{n} is given twice")));
            }
            seen.push(n.clone());
        }
        let media = crate::media::relay::MediaConfig {
            bind_ip: self.rtp_bind.unwrap_or(self.sip_listen.ip()),
            port_min: self.rtp_ports.0,
            port_max: self.rtp_ports.1,
            timeout: Duration::from_secs(self.media_timeout),
        };
        let reboot_command: Vec<String> = self
            .reboot_command
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if reboot_command.is_empty() {
            return Err(ConfigError::EmptyRebootCommand);
        }
        let hawkbit = match self.hawkbit_url {
            None => None,
            Some(url) => {
                let bad = |m: &str| ConfigError::Hawkbit(m.to_owned());
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(bad("--hawkbit-url must be https://... (or http://...)"));
                }
                let controller_id = self
                    .hawkbit_controller_id
                    .ok_or_else(|| bad("--hawkbit-controller-id is required with --hawkbit-url"))?;
                let token_file = self
                    .hawkbit_token_file
                    .ok_or_else(|| bad("--hawkbit-token-file is required with --hawkbit-url"))?;
                let token = std::fs::read_to_string(&token_file)
                    .map_err(|e| ConfigError::Hawkbit(format!("{}: {e}", token_file.display())))?
                    .trim()
                    .to_owned();
                if token.is_empty() {
                    return Err(bad("the token file is empty"));
                }
                if self.update_backend != crate::update::UpdateBackend::Rauc {
                    return Err(bad("--hawkbit-url needs --update-backend rauc"));
                }
                Some(crate::update::hawkbit::DdiConfig {
                    server: url.trim_end_matches('/').to_owned(),
                    tenant: self.hawkbit_tenant,
                    controller_id,
                    token,
                    ca_file: self.hawkbit_ca,
                })
            }
        };
        let update = crate::update::UpdateConfig {
            backend: self.update_backend,
            bus: match self.rauc_dbus_address {
                Some(a) => crate::update::rauc::Bus::Address(a),
                None => crate::update::rauc::Bus::System,
            },
            policy: crate::update::InstallPolicy {
                window: self.maintenance_window,
            },
            health_limit: Duration::from_secs(self.health_limit),
            verdict_file: self.health_file,
            reboot_command,
            hawkbit,
            switch: (!self.no_auto_switch).then(|| crate::update::switch::SwitchConfig {
                quiet: Duration::from_secs(self.switch_quiet),
                window: self.maintenance_window,
            }),
        };
        Ok(Config {
            update,
            calls,
            media,
            data_dir: self.data_dir,
            sip_listen: self.sip_listen,
            sip_tls_listen: self.sip_tls_listen,
            http_listen: self.http_listen,
            https_listen: self.https_listen,
            log_format: self.log_format,
            registrar,
            guard,
            hardware: self.hardware,
            board_file: self.board_file,
            sim_wrong_chip_id: self.sim_wrong_chip_id,
            modem: self.modem,
            modem_pcm: self.modem_pcm,
            port_extensions: self.port_extensions,
        })
    }
}

fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "md5" => Ok(Algorithm::Md5),
        "sha256" | "sha-256" => Ok(Algorithm::Sha256),
        other => Err(format!(
            "unknown digest algorithm {other:?} (use md5, sha256)"
        )),
    }
}

/// Keeps the first occurrence of each algorithm, in order.
fn dedup(list: Vec<Algorithm>) -> Vec<Algorithm> {
    let mut out = Vec::with_capacity(list.len());
    for a in list {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let cli = Cli::try_parse_from(["pbxd"]).expect("defaults parse");
        assert_eq!(cli.data_dir, PathBuf::from("./data"));
        assert_eq!(cli.sip_listen, "127.0.0.1:5060".parse().expect("addr"));
        assert_eq!(cli.http_listen, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(cli.https_listen, "127.0.0.1:8443".parse().expect("addr"));
        let cfg = cli.into_config().expect("valid");
        assert_eq!(cfg.guard.max_failures, 5);
        assert_eq!(cfg.guard.failure_window, Duration::from_secs(600));
        assert_eq!(
            cfg.registrar.algorithms,
            vec![Algorithm::Md5, Algorithm::Sha256]
        );
    }

    #[test]
    fn digest_algorithms_are_chosen_in_order() {
        let cli = Cli::try_parse_from(["pbxd", "--digest-algorithms", "sha256,md5,sha256"])
            .expect("parses");
        let cfg = cli.into_config().expect("valid");
        assert_eq!(
            cfg.registrar.algorithms,
            vec![Algorithm::Sha256, Algorithm::Md5]
        );
        let cli = Cli::try_parse_from(["pbxd", "--digest-algorithms", "md5"]).expect("parses");
        assert_eq!(
            cli.into_config().expect("valid").registrar.algorithms,
            vec![Algorithm::Md5]
        );
        assert!(Cli::try_parse_from(["pbxd", "--digest-algorithms", "sha512"]).is_err());
        assert!(Cli::try_parse_from(["pbxd", "--digest-algorithms", ""]).is_err());
    }

    #[test]
    fn update_flags() {
        use crate::update::{rauc::Bus, UpdateBackend};
        let cfg = Cli::try_parse_from(["pbxd"])
            .expect("parses")
            .into_config()
            .expect("valid");
        assert_eq!(cfg.update, crate::update::UpdateConfig::default());
        let cfg = Cli::try_parse_from([
            "pbxd",
            "--update-backend",
            "rauc",
            "--rauc-dbus-address",
            "unix:path=/tmp/bus",
            "--maintenance-window",
            "22:00-04:00",
            "--health-limit",
            "60",
            "--health-file",
            "/run/pbxd/health",
            "--reboot-command",
            "/sbin/reboot -f",
        ])
        .expect("parses")
        .into_config()
        .expect("valid");
        assert_eq!(cfg.update.backend, UpdateBackend::Rauc);
        assert_eq!(cfg.update.bus, Bus::Address("unix:path=/tmp/bus".into()));
        assert_eq!(
            cfg.update.policy.window.map(|w| w.to_string()).as_deref(),
            Some("22:00-04:00")
        );
        assert_eq!(cfg.update.health_limit, Duration::from_secs(60));
        assert_eq!(cfg.update.reboot_command, vec!["/sbin/reboot", "-f"]);
        assert!(Cli::try_parse_from(["pbxd", "--maintenance-window", "2-4"]).is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").expect("write");
        let token = token.to_str().expect("utf8");
        let hb = |extra: &[&str]| {
            let mut args = vec![
                "pbxd",
                "--update-backend",
                "rauc",
                "--hawkbit-url",
                "http://hb:8080/",
            ];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).expect("parses").into_config()
        };
        let cfg = hb(&[
            "--hawkbit-controller-id",
            "pbx-1",
            "--hawkbit-token-file",
            token,
        ])
        .expect("valid");
        let ddi = cfg.update.hawkbit.expect("hawkbit on");
        assert_eq!(ddi.base_url(), "http://hb:8080/DEFAULT/controller/v1/pbx-1");
        assert_eq!(ddi.token, "s3cret");
        assert!(
            matches!(hb(&["--hawkbit-token-file", token]), Err(ConfigError::Hawkbit(m)) if m.contains("controller-id"))
        );
        assert!(Cli::try_parse_from(["pbxd", "--health-limit", "5"]).is_err());
        assert_eq!(
            Cli::try_parse_from(["pbxd", "--reboot-command", " "])
                .expect("parses")
                .into_config()
                .expect_err("empty"),
            ConfigError::EmptyRebootCommand
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(Cli::try_parse_from(["pbxd", "--sip-listen", "nonsense"]).is_err());
        assert!(Cli::try_parse_from(["pbxd", "--auth-max-failures", "0"]).is_err());
        // The board needs its board file.
        assert!(Cli::try_parse_from(["pbxd", "--hardware", "board"]).is_err());
        assert!(Cli::try_parse_from(["pbxd", "--hardware", "board", "--board-file", "b"]).is_ok());
        for bad in ["1", "21,21", "2a", "11"] {
            let cli = Cli::try_parse_from(["pbxd", "--port-extensions", bad]).expect("parses");
            assert!(
                matches!(cli.into_config(), Err(ConfigError::PortExtension(_))),
                "{bad}"
            );
        }
        let cli = Cli::try_parse_from(["pbxd", "--min-expires", "600", "--max-expires", "300"])
            .expect("parses");
        assert_eq!(
            cli.into_config().expect_err("range"),
            ConfigError::ExpiresRange { min: 600, max: 300 }
        );
    }
}
