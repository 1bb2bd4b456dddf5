//! Eclipse hawkBit Direct Device Integration (DDI) API, sans-IO: the resources' JSON
//! parsed into typed values, the feedback and config-data bodies, the polling schedule
//! and an artifact download check (size, SHA-256, resume offset). The HTTP shell is
//! [`super::hawkbit_client`].
//!
//! Endpoints, relative to the server URL (`{t}` tenant, `{c}` controller id):
//! - `GET  /{t}/controller/v1/{c}`: base resource: polling sleep and links
//! - `GET  .../deploymentBase/{action}`: chunks and artifacts with hashes
//! - `POST .../deploymentBase/{action}/feedback`: progress and result
//! - `GET  .../cancelAction/{action}`, `POST .../cancelAction/{action}/feedback`
//! - `PUT  .../configData`: the device's attributes
//!
//! Every request carries `Authorization: TargetToken <token>`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where and who we are on the hawkBit server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdiConfig {
    /// Server URL without a trailing slash, e.g. `https://hawkbit.example.com`.
    pub server: String,
    /// Tenant, e.g. `DEFAULT`.
    pub tenant: String,
    /// This device's controller id.
    pub controller_id: String,
    /// The target security token.
    pub token: String,
    /// A CA certificate (PEM) trusted for `https://` besides the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl DdiConfig {
    /// The base resource's URL.
    pub fn base_url(&self) -> String {
        format!(
            "{}/{}/controller/v1/{}",
            self.server.trim_end_matches('/'),
            self.tenant,
            self.controller_id
        )
    }

    /// The `Authorization` header value.
    pub fn authorization(&self) -> String {
        format!("TargetToken {}", self.token)
    }
}

/// A reply from the server that does not follow the DDI API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DdiError {
    /// The JSON does not parse or misses a required field.
    #[error("hawkBit {resource}: {reason}")]
    BadJson {
        /// Which resource.
        resource: &'static str,
        /// serde's description.
        reason: String,
    },
    /// A download brought more bytes than the artifact's size.
    #[error("artifact {filename}: more than the announced {size} bytes")]
    TooLong {
        /// The artifact.
        filename: String,
        /// Its announced size.
        size: u64,
    },
    /// The downloaded bytes do not match the announced SHA-256.
    #[error("artifact {filename}: SHA-256 {got} does not match the announced {expected}")]
    HashMismatch {
        /// The artifact.
        filename: String,
        /// Announced.
        expected: String,
        /// Computed.
        got: String,
    },
    /// The download ended short of the announced size.
    #[error("artifact {filename}: got {got} of {size} bytes")]
    Incomplete {
        /// The artifact.
        filename: String,
        /// Bytes received.
        got: u64,
        /// Announced size.
        size: u64,
    },
    /// A resumed download was answered with a range that does not continue ours.
    #[error("artifact {filename}: server resumed at {got:?}, we asked for byte {asked}")]
    BadRange {
        /// The artifact.
        filename: String,
        /// The offset asked for.
        asked: u64,
        /// The `Content-Range` the server sent, if any.
        got: Option<String>,
    },
}

fn bad_json(resource: &'static str) -> impl Fn(serde_json::Error) -> DdiError {
    move |e| DdiError::BadJson {
        resource,
        reason: e.to_string(),
    }
}

#[derive(Debug, Deserialize)]
struct Href {
    href: String,
}

#[derive(Debug, Deserialize)]
struct BaseJson {
    config: Option<BaseConfigJson>,
    #[serde(rename = "_links", default)]
    links: BaseLinksJson,
}

#[derive(Debug, Deserialize)]
struct BaseConfigJson {
    polling: Option<PollingJson>,
}

#[derive(Debug, Deserialize)]
struct PollingJson {
    sleep: String,
}

#[derive(Debug, Default, Deserialize)]
struct BaseLinksJson {
    #[serde(rename = "deploymentBase")]
    deployment_base: Option<Href>,
    #[serde(rename = "cancelAction")]
    cancel_action: Option<Href>,
    #[serde(rename = "configData")]
    config_data: Option<Href>,
}

/// The base resource: how long to sleep, and what the server wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseReply {
    /// The server's polling interval (default when absent or unreadable).
    pub sleep: Duration,
    /// A deployment is waiting: its deploymentBase URL.
    pub deployment: Option<String>,
    /// The server asks to cancel an action: its cancelAction URL.
    pub cancel: Option<String>,
    /// The server asks for the device's attributes: the configData URL.
    pub config_data: Option<String>,
}

/// Polling interval used when the server names none.
pub const DEFAULT_SLEEP: Duration = Duration::from_secs(300);
/// Never poll more often than this, whatever the server says.
pub const MIN_SLEEP: Duration = Duration::from_secs(10);

/// Parses the `HH:MM:SS` of `config.polling.sleep`.
pub fn parse_sleep(s: &str) -> Option<Duration> {
    let mut parts = s.split(':');
    let h: u64 = parts.next()?.parse().ok()?;
    let m: u64 = parts.next()?.parse().ok()?;
    let sec: u64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || m >= 60 || sec >= 60 {
        return None;
    }
    Some(Duration::from_secs(h * 3600 + m * 60 + sec))
}

/// Parses the base resource.
pub fn parse_base(body: &[u8]) -> Result<BaseReply, DdiError> {
    let json: BaseJson = serde_json::from_slice(body).map_err(bad_json("base resource"))?;
    let sleep = json
        .config
        .and_then(|c| c.polling)
        .and_then(|p| parse_sleep(&p.sleep))
        .unwrap_or(DEFAULT_SLEEP)
        .max(MIN_SLEEP);
    Ok(BaseReply {
        sleep,
        deployment: json.links.deployment_base.map(|h| h.href),
        cancel: json.links.cancel_action.map(|h| h.href),
        config_data: json.links.config_data.map(|h| h.href),
    })
}

/// How the server wants a step handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Handling {
    /// Skip the step.
    Skip,
    /// Do it when convenient (our maintenance window applies).
    Attempt,
    /// Do it now.
    Forced,
}

/// One file of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// File name.
    pub filename: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// Where to get it: the `download` (HTTPS) link, else `download-http`.
    pub url: String,
}

/// One software module of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Its part, e.g. `os`.
    pub part: String,
    /// Its version.
    pub version: String,
    /// Its name.
    pub name: String,
    /// Its files.
    pub artifacts: Vec<Artifact>,
}

/// A deployment action (deploymentBase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The action id, used in feedback URLs.
    pub action_id: String,
    /// Download handling.
    pub download: Handling,
    /// Install handling.
    pub update: Handling,
    /// The server's maintenance window state, when it schedules one (`available`,
    /// `unavailable`).
    pub maintenance_window: Option<String>,
    /// The modules to install.
    pub chunks: Vec<Chunk>,
}

#[derive(Debug, Deserialize)]
struct DeploymentJson {
    id: String,
    deployment: DeploymentInnerJson,
}

#[derive(Debug, Deserialize)]
struct DeploymentInnerJson {
    download: Handling,
    update: Handling,
    #[serde(rename = "maintenanceWindow")]
    maintenance_window: Option<String>,
    #[serde(default)]
    chunks: Vec<ChunkJson>,
}

#[derive(Debug, Deserialize)]
struct ChunkJson {
    part: String,
    version: String,
    name: String,
    #[serde(default)]
    artifacts: Vec<ArtifactJson>,
}

#[derive(Debug, Deserialize)]
struct ArtifactJson {
    filename: String,
    size: u64,
    hashes: HashesJson,
    #[serde(rename = "_links")]
    links: ArtifactLinksJson,
}

#[derive(Debug, Deserialize)]
struct HashesJson {
    sha256: String,
}

#[derive(Debug, Deserialize)]
struct ArtifactLinksJson {
    download: Option<Href>,
    #[serde(rename = "download-http")]
    download_http: Option<Href>,
}

/// Parses a deploymentBase resource. An artifact without a SHA-256 or a download link
/// is refused: nothing is installed that cannot be checked.
pub fn parse_deployment(body: &[u8]) -> Result<Deployment, DdiError> {
    let json: DeploymentJson = serde_json::from_slice(body).map_err(bad_json("deploymentBase"))?;
    let mut chunks = Vec::with_capacity(json.deployment.chunks.len());
    for c in json.deployment.chunks {
        let mut artifacts = Vec::with_capacity(c.artifacts.len());
        for a in c.artifacts {
            let sha256 = a.hashes.sha256.to_ascii_lowercase();
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(DdiError::BadJson {
                    resource: "deploymentBase",
                    reason: format!("artifact {}: no valid sha256", a.filename),
                });
            }
            let url = a
                .links
                .download
                .or(a.links.download_http)
                .ok_or_else(|| DdiError::BadJson {
                    resource: "deploymentBase",
                    reason: format!("artifact {}: no download link", a.filename),
                })?
                .href;
            artifacts.push(Artifact {
                filename: a.filename,
                size: a.size,
                sha256,
                url,
            });
        }
        chunks.push(Chunk {
            part: c.part,
            version: c.version,
            name: c.name,
            artifacts,
        });
    }
    Ok(Deployment {
        action_id: json.id,
        download: json.deployment.download,
        update: json.deployment.update,
        maintenance_window: json.deployment.maintenance_window,
        chunks,
    })
}

/// A cancel request (cancelAction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    /// The cancel action's own id (for its feedback URL).
    pub id: String,
    /// The action to stop.
    pub stop_id: String,
}

/// Parses a cancelAction resource.
pub fn parse_cancel(body: &[u8]) -> Result<CancelRequest, DdiError> {
    #[derive(Deserialize)]
    struct Json {
        id: String,
        #[serde(rename = "cancelAction")]
        cancel_action: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(rename = "stopId")]
        stop_id: String,
    }
    let j: Json = serde_json::from_slice(body).map_err(bad_json("cancelAction"))?;
    Ok(CancelRequest {
        id: j.id,
        stop_id: j.cancel_action.stop_id,
    })
}

/// `status.execution` of a feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Execution {
    /// Working on it.
    Proceeding,
    /// Done (see the result).
    Closed,
    /// Cancel confirmed.
    Canceled,
    /// Cancel refused (too late: the slot is being written).
    Rejected,
    /// Downloading.
    Download,
    /// Downloaded, install follows.
    Downloaded,
    /// Scheduled for later (maintenance window).
    Scheduled,
}

/// `status.result.finished` of a feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Finished {
    /// Succeeded.
    Success,
    /// Failed.
    Failure,
    /// Not finished.
    None,
}

/// A feedback message for a deployment or cancel action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// Execution state.
    pub execution: Execution,
    /// Result.
    pub finished: Finished,
    /// Progress `(done, of)`, e.g. chunks or percent.
    pub progress: Option<(u32, u32)>,
    /// Human-readable lines for the server's action history.
    pub details: Vec<String>,
}

impl Feedback {
    /// The JSON body to POST.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Progress {
            cnt: u32,
            of: u32,
        }
        #[derive(Serialize)]
        struct Result {
            finished: Finished,
            #[serde(skip_serializing_if = "Option::is_none")]
            progress: Option<Progress>,
        }
        #[derive(Serialize)]
        struct Status<'a> {
            execution: Execution,
            result: Result,
            details: &'a [String],
        }
        #[derive(Serialize)]
        struct Body<'a> {
            status: Status<'a>,
        }
        let body = Body {
            status: Status {
                execution: self.execution,
                result: Result {
                    finished: self.finished,
                    progress: self.progress.map(|(cnt, of)| Progress { cnt, of }),
                },
                details: &self.details,
            },
        };
        // Plain structs of strings and numbers always serialise.
        serde_json::to_string(&body).unwrap_or_default()
    }
}

/// The body of the configData PUT: the device's attributes, merged into the server's.
pub fn config_data_json(attributes: &BTreeMap<String, String>) -> String {
    serde_json::json!({ "mode": "merge", "data": attributes }).to_string()
}

/// The polling schedule: next poll at the server's sleep after the last one; after a
/// failed poll, back off (doubling from 10 s) but never beyond the server's sleep.
#[derive(Debug, Clone)]
pub struct PollSchedule {
    sleep: Duration,
    next: Instant,
    failures: u32,
}

impl PollSchedule {
    /// Polls first at `now`.
    pub fn new(now: Instant) -> Self {
        PollSchedule {
            sleep: DEFAULT_SLEEP,
            next: now,
            failures: 0,
        }
    }

    /// When to poll next.
    pub fn poll_timeout(&self) -> Instant {
        self.next
    }

    /// A base reply arrived at `now`.
    pub fn handle_reply(&mut self, now: Instant, reply: &BaseReply) {
        self.sleep = reply.sleep;
        self.failures = 0;
        self.next = now + self.sleep;
    }

    /// A poll failed at `now` (network, HTTP error, bad JSON).
    pub fn handle_failure(&mut self, now: Instant) {
        let backoff = MIN_SLEEP.saturating_mul(1 << self.failures.min(10));
        self.failures = self.failures.saturating_add(1);
        self.next = now + backoff.min(self.sleep);
    }
}

/// Checks one artifact's bytes as they arrive: size, SHA-256, and the offset to resume
/// from after a broken connection (HTTP `Range: bytes=N-`).
#[derive(Debug, Clone)]
pub struct ArtifactCheck {
    artifact: Artifact,
    received: u64,
    hasher: Sha256,
}

impl ArtifactCheck {
    /// Starts checking `artifact` from its first byte.
    pub fn new(artifact: Artifact) -> Self {
        ArtifactCheck {
            artifact,
            received: 0,
            hasher: Sha256::new(),
        }
    }

    /// Bytes received and accepted so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The `Range` header for the next request, `None` when starting from zero.
    pub fn range_header(&self) -> Option<String> {
        (self.received > 0).then(|| format!("bytes={}-", self.received))
    }

    /// The response's status and `Content-Range` for a request made with
    /// [`Self::range_header`]: `Ok(true)` to keep what we have (206 continuing our
    /// offset), `Ok(false)` when the server sends the whole file again (200: the caller
    /// truncates its file, and we start over).
    pub fn handle_response(
        &mut self,
        status: u16,
        content_range: Option<&str>,
    ) -> Result<bool, DdiError> {
        if self.received == 0 || status == 200 {
            self.received = 0;
            self.hasher = Sha256::new();
            return Ok(false);
        }
        let expected = format!("bytes {}-", self.received);
        match content_range {
            Some(cr) if status == 206 && cr.starts_with(&expected) => Ok(true),
            other => Err(DdiError::BadRange {
                filename: self.artifact.filename.clone(),
                asked: self.received,
                got: other.map(str::to_owned),
            }),
        }
    }

    /// Feeds received bytes.
    pub fn handle_data(&mut self, data: &[u8]) -> Result<(), DdiError> {
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        if self.received.saturating_add(len) > self.artifact.size {
            return Err(DdiError::TooLong {
                filename: self.artifact.filename.clone(),
                size: self.artifact.size,
            });
        }
        self.hasher.update(data);
        self.received += len;
        Ok(())
    }

    /// Whether every announced byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.received == self.artifact.size
    }

    /// The verdict once the transfer has ended.
    pub fn finish(self) -> Result<Artifact, DdiError> {
        if !self.is_complete() {
            return Err(DdiError::Incomplete {
                filename: self.artifact.filename,
                got: self.received,
                size: self.artifact.size,
            });
        }
        let got = hex::encode(self.hasher.finalize());
        if got != self.artifact.sha256 {
            return Err(DdiError::HashMismatch {
                filename: self.artifact.filename,
                expected: self.artifact.sha256,
                got,
            });
        }
        Ok(self.artifact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // the test owns time from here on
    fn start() -> Instant {
        Instant::now()
    }

    // Shapes as in the DDI API reference.
    const BASE_DEPLOY: &str = r#"{
      "config": {"polling": {"sleep": "00:00:30"}},
      "_links": {
        "deploymentBase": {"href": "https://hb.example/DEFAULT/controller/v1/pbx-1/deploymentBase/8?c=-2122565939"},
        "configData": {"href": "https://hb.example/DEFAULT/controller/v1/pbx-1/configData"}
      }
    }"#;

    const DEPLOYMENT: &str = r#"{
      "id": "8",
      "deployment": {
        "download": "forced",
        "update": "attempt",
        "maintenanceWindow": "available",
        "chunks": [{
          "part": "os", "version": "2.0", "name": "pbx-firmware",
          "artifacts": [{
            "filename": "pbx-2.0.raucb",
            "hashes": {"sha1": "x", "md5": "y", "sha256": "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824"},
            "size": 5,
            "_links": {
              "download": {"href": "https://hb.example/a/pbx-2.0.raucb"},
              "download-http": {"href": "http://hb.example/a/pbx-2.0.raucb"}
            }
          }]
        }]
      },
      "actionHistory": {"status": "RUNNING", "messages": []}
    }"#;

    #[test]
    fn base_resource_links_and_sleep() {
        let r = parse_base(BASE_DEPLOY.as_bytes()).expect("parses");
        assert_eq!(r.sleep, Duration::from_secs(30));
        assert!(r
            .deployment
            .as_deref()
            .is_some_and(|h| h.ends_with("/deploymentBase/8?c=-2122565939")));
        assert_eq!(r.cancel, None);
        assert!(r.config_data.is_some());
        let idle = parse_base(br#"{"config":{"polling":{"sleep":"12:00:00"}},"_links":{}}"#)
            .expect("parses");
        assert_eq!(idle.sleep, Duration::from_secs(12 * 3600));
        assert_eq!(idle.deployment, None);
        // Too eager or unreadable sleeps are bounded or defaulted.
        let eager = parse_base(br#"{"config":{"polling":{"sleep":"00:00:01"}}}"#).expect("parses");
        assert_eq!(eager.sleep, MIN_SLEEP);
        let odd = parse_base(br#"{"config":{"polling":{"sleep":"soon"}}}"#).expect("parses");
        assert_eq!(odd.sleep, DEFAULT_SLEEP);
        assert!(matches!(
            parse_base(b"<html>"),
            Err(DdiError::BadJson {
                resource: "base resource",
                ..
            })
        ));
    }

    #[test]
    fn sleeps() {
        assert_eq!(parse_sleep("01:02:03"), Some(Duration::from_secs(3723)));
        for bad in ["1:2", "00:60:00", "00:00:60", "a:b:c", "00:00:00:00", ""] {
            assert_eq!(parse_sleep(bad), None, "{bad}");
        }
    }

    #[test]
    fn deployment_with_chunks_and_hashes() {
        let d = parse_deployment(DEPLOYMENT.as_bytes()).expect("parses");
        assert_eq!(d.action_id, "8");
        assert_eq!(d.download, Handling::Forced);
        assert_eq!(d.update, Handling::Attempt);
        assert_eq!(d.maintenance_window.as_deref(), Some("available"));
        assert_eq!(d.chunks.len(), 1);
        let a = &d.chunks[0].artifacts[0];
        assert_eq!(a.filename, "pbx-2.0.raucb");
        assert_eq!(
            a.url, "https://hb.example/a/pbx-2.0.raucb",
            "HTTPS preferred"
        );
        assert_eq!(
            a.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        // Without a usable hash nothing is accepted.
        let no_hash = DEPLOYMENT.replace(
            "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
            "",
        );
        assert!(matches!(
            parse_deployment(no_hash.as_bytes()),
            Err(DdiError::BadJson { reason, .. }) if reason.contains("no valid sha256")
        ));
    }

    #[test]
    fn cancel_request() {
        let c = parse_cancel(br#"{"id":"11","cancelAction":{"stopId":"8"}}"#).expect("parses");
        assert_eq!(
            c,
            CancelRequest {
                id: "11".into(),
                stop_id: "8".into()
            }
        );
        assert!(parse_cancel(br#"{"id":"11"}"#).is_err());
    }

    #[test]
    fn feedback_and_config_bodies() {
        let f = Feedback {
            execution: Execution::Proceeding,
            finished: Finished::None,
            progress: Some((2, 5)),
            details: vec!["downloading".into()],
        };
        let v: serde_json::Value = serde_json::from_str(&f.to_json()).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"status": {"execution": "proceeding",
                "result": {"finished": "none", "progress": {"cnt": 2, "of": 5}},
                "details": ["downloading"]}})
        );
        let done = Feedback {
            execution: Execution::Closed,
            finished: Finished::Failure,
            progress: None,
            details: vec![],
        };
        let v: serde_json::Value = serde_json::from_str(&done.to_json()).expect("json");
        assert_eq!(
            v["status"]["result"],
            serde_json::json!({"finished": "failure"})
        );
        let attrs = BTreeMap::from([("hwRevision".to_owned(), "2".to_owned())]);
        let v: serde_json::Value = serde_json::from_str(&config_data_json(&attrs)).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"mode": "merge", "data": {"hwRevision": "2"}})
        );
    }

    #[test]
    fn poll_schedule_follows_the_server_and_backs_off() {
        let t0 = start();
        let mut s = PollSchedule::new(t0);
        assert_eq!(s.poll_timeout(), t0);
        let reply = parse_base(BASE_DEPLOY.as_bytes()).expect("parses");
        s.handle_reply(t0, &reply);
        assert_eq!(s.poll_timeout(), t0 + Duration::from_secs(30));
        let t1 = t0 + Duration::from_secs(30);
        s.handle_failure(t1);
        assert_eq!(s.poll_timeout(), t1 + Duration::from_secs(10));
        s.handle_failure(t1);
        assert_eq!(s.poll_timeout(), t1 + Duration::from_secs(20));
        s.handle_failure(t1);
        assert_eq!(
            s.poll_timeout(),
            t1 + Duration::from_secs(30),
            "capped by the sleep"
        );
        s.handle_reply(t1, &reply);
        s.handle_failure(t1);
        assert_eq!(
            s.poll_timeout(),
            t1 + Duration::from_secs(10),
            "reset by a reply"
        );
    }

    fn hello() -> Artifact {
        Artifact {
            filename: "a".into(),
            size: 5,
            sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into(),
            url: "http://x/a".into(),
        }
    }

    #[test]
    fn download_resumes_and_checks_the_hash() {
        let mut c = ArtifactCheck::new(hello());
        assert_eq!(c.range_header(), None);
        assert_eq!(c.handle_response(200, None), Ok(false));
        c.handle_data(b"he").expect("fits");
        // Connection broke: resume from byte 2.
        assert_eq!(c.range_header().as_deref(), Some("bytes=2-"));
        assert_eq!(c.handle_response(206, Some("bytes 2-4/5")), Ok(true));
        c.handle_data(b"llo").expect("fits");
        assert!(c.is_complete());
        assert_eq!(c.finish().expect("hash matches").filename, "a");
    }

    #[test]
    fn download_faults() {
        // Wrong bytes.
        let mut c = ArtifactCheck::new(hello());
        c.handle_data(b"HELLO").expect("fits");
        assert!(matches!(c.finish(), Err(DdiError::HashMismatch { .. })));
        // Too many bytes.
        let mut c = ArtifactCheck::new(hello());
        assert!(matches!(
            c.handle_data(b"hello!"),
            Err(DdiError::TooLong { size: 5, .. })
        ));
        // Short.
        let mut c = ArtifactCheck::new(hello());
        c.handle_data(b"hel").expect("fits");
        assert_eq!(
            c.clone().finish(),
            Err(DdiError::Incomplete {
                filename: "a".into(),
                got: 3,
                size: 5
            })
        );
        // A server that ignores the range starts us over; one that resumes elsewhere is refused.
        assert_eq!(c.handle_response(200, None), Ok(false));
        assert_eq!(c.received(), 0);
        c.handle_data(b"hel").expect("fits");
        assert!(matches!(
            c.handle_response(206, Some("bytes 0-4/5")),
            Err(DdiError::BadRange { asked: 3, .. })
        ));
    }
}
