//! The HTTP shell of the hawkBit DDI client: one hyper HTTP/1 connection per request
//! (polls are minutes apart), JSON resources parsed by [`super::hawkbit`], artifact
//! downloads checked and resumed with `Range`. `https://` through tokio-rustls, trusting the
//! system's roots and `--hawkbit-ca`; `http://` for lab servers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use tokio::io::AsyncWriteExt;

use super::hawkbit::{
    config_data_json, parse_base, parse_cancel, parse_deployment, Artifact, ArtifactCheck,
    BaseReply, CancelRequest, DdiConfig, DdiError, Deployment, Feedback,
};

/// Largest JSON resource accepted.
const MAX_JSON: usize = 1 << 20;
/// Connection attempts per artifact (the first plus resumes).
const DOWNLOAD_TRIES: u32 = 4;

/// Why a DDI exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http://host[:port]/path`.
    #[error("unsupported URL {0:?} (https:// or http:// only)")]
    Url(String),
    /// Connecting, sending or receiving failed.
    #[error("{url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server answered with an unexpected status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// Its status code.
        status: u16,
    },
    /// The reply does not follow the DDI API, or a download failed its check.
    #[error(transparent)]
    Ddi(#[from] DdiError),
    /// Writing the downloaded file failed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

struct Target {
    authority: String,
    /// The host name for TLS (SNI and certificate check), without brackets or port.
    host: String,
    path: String,
    tls: bool,
}

fn parse_url(url: &str) -> Result<Target, ClientError> {
    let (rest, tls) = if let Some(r) = url.strip_prefix("https://") {
        (r, true)
    } else if let Some(r) = url.strip_prefix("http://") {
        (r, false)
    } else {
        return Err(ClientError::Url(url.to_owned()));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(ClientError::Url(url.to_owned()));
    }
    let authority = if authority
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_owned()
    } else {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    };
    let host = match authority.rfind(':') {
        Some(i) => &authority[..i],
        None => &authority[..],
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok(Target {
        authority,
        host,
        path: path.to_owned(),
        tls,
    })
}

/// An HTTP/1 connection over `io`; its task ends with the response body (or the error).
async fn handshake<IO>(
    io: IO,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, hyper::Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// A response whose body is read by the caller.
type Response = hyper::Response<hyper::body::Incoming>;

/// The DDI client.
#[derive(Debug, Clone)]
pub struct DdiClient {
    config: DdiConfig,
    /// For `https://`; an error (bad CA file) fails each https request with its reason.
    tls: Result<std::sync::Arc<rustls::ClientConfig>, String>,
}

impl DdiClient {
    /// A client for `config`.
    pub fn new(config: DdiConfig) -> Self {
        let tls = crate::tls::client_config(config.ca_file.as_deref()).map_err(|e| e.to_string());
        DdiClient { config, tls }
    }

    async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<String>,
        range: Option<&str>,
    ) -> Result<Response, ClientError> {
        let target = parse_url(url)?;
        let http = |reason: String| ClientError::Http {
            url: url.to_owned(),
            reason,
        };
        let stream = tokio::net::TcpStream::connect(&target.authority)
            .await
            .map_err(|e| http(e.to_string()))?;
        let mut sender = if target.tls {
            let config = self
                .tls
                .clone()
                .map_err(|e| http(format!("TLS set-up: {e}")))?;
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| http(format!("bad host name: {e}")))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| http(format!("TLS: {e}")))?;
            handshake(stream).await.map_err(|e| http(e.to_string()))?
        } else {
            handshake(stream).await.map_err(|e| http(e.to_string()))?
        };
        let mut req = Request::builder()
            .method(method)
            .uri(&target.path)
            .header(hyper::header::HOST, &target.authority)
            .header(hyper::header::AUTHORIZATION, self.config.authorization())
            .header(
                hyper::header::ACCEPT,
                "application/hal+json, application/json",
            );
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if let Some(r) = range {
            req = req.header(hyper::header::RANGE, r);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| http(e.to_string()))?;
        sender
            .send_request(req)
            .await
            .map_err(|e| http(e.to_string()))
    }

    async fn json(
        &self,
        method: Method,
        url: &str,
        body: Option<String>,
    ) -> Result<Vec<u8>, ClientError> {
        let resp = self.request(method, url, body, None).await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ClientError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let limited = http_body_util::Limited::new(resp.into_body(), MAX_JSON);
        let bytes = limited
            .collect()
            .await
            .map_err(|e| ClientError::Http {
                url: url.to_owned(),
                reason: e.to_string(),
            })?
            .to_bytes();
        Ok(bytes.to_vec())
    }

    /// Polls the base resource.
    pub async fn poll(&self) -> Result<BaseReply, ClientError> {
        let body = self
            .json(Method::GET, &self.config.base_url(), None)
            .await?;
        Ok(parse_base(&body)?)
    }

    /// Reads the deployment at `href` (from [`BaseReply::deployment`]).
    pub async fn deployment(&self, href: &str) -> Result<Deployment, ClientError> {
        Ok(parse_deployment(
            &self.json(Method::GET, href, None).await?,
        )?)
    }

    /// Reads the cancel request at `href` (from [`BaseReply::cancel`]).
    pub async fn cancel_request(&self, href: &str) -> Result<CancelRequest, ClientError> {
        Ok(parse_cancel(&self.json(Method::GET, href, None).await?)?)
    }

    /// Sends feedback for deployment action `action_id`.
    pub async fn deployment_feedback(
        &self,
        action_id: &str,
        f: &Feedback,
    ) -> Result<(), ClientError> {
        let url = format!(
            "{}/deploymentBase/{action_id}/feedback",
            self.config.base_url()
        );
        self.json(Method::POST, &url, Some(f.to_json()))
            .await
            .map(drop)
    }

    /// Sends feedback for cancel action `cancel_id`.
    pub async fn cancel_feedback(&self, cancel_id: &str, f: &Feedback) -> Result<(), ClientError> {
        let url = format!(
            "{}/cancelAction/{cancel_id}/feedback",
            self.config.base_url()
        );
        self.json(Method::POST, &url, Some(f.to_json()))
            .await
            .map(drop)
    }

    /// Sends the device's attributes (merged into the server's).
    pub async fn send_config_data(
        &self,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), ClientError> {
        let url = format!("{}/configData", self.config.base_url());
        self.json(Method::PUT, &url, Some(config_data_json(attributes)))
            .await
            .map(drop)
    }

    /// Downloads `artifact` to `dest`, resuming with `Range` after a broken transfer, and
    /// checks size and SHA-256. A file that fails the check is removed.
    pub async fn download(
        &self,
        artifact: &Artifact,
        dest: &Path,
    ) -> Result<Artifact, ClientError> {
        let file_err = |e: std::io::Error| ClientError::File {
            path: dest.to_path_buf(),
            reason: e.to_string(),
        };
        let mut check = ArtifactCheck::new(artifact.clone());
        let mut file = tokio::fs::File::create(dest).await.map_err(file_err)?;
        let mut last_err = None;
        for _ in 0..DOWNLOAD_TRIES {
            if check.is_complete() {
                break;
            }
            match self.fetch_into(artifact, &mut check, &mut file).await {
                Ok(()) => last_err = None,
                Err(e @ (ClientError::Ddi(_) | ClientError::File { .. } | ClientError::Url(_))) => {
                    let _ = tokio::fs::remove_file(dest).await;
                    return Err(e);
                }
                // Network trouble or a 5xx: resume from what we have.
                Err(e) => last_err = Some(e),
            }
        }
        file.flush().await.map_err(file_err)?;
        file.sync_all().await.map_err(file_err)?;
        if let (Some(e), false) = (last_err, check.is_complete()) {
            return Err(e);
        }
        match check.finish() {
            Ok(a) => Ok(a),
            Err(e) => {
                let _ = tokio::fs::remove_file(dest).await;
                Err(e.into())
            }
        }
    }

    async fn fetch_into(
        &self,
        artifact: &Artifact,
        check: &mut ArtifactCheck,
        file: &mut tokio::fs::File,
    ) -> Result<(), ClientError> {
        let range = check.range_header();
        let resp = self
            .request(Method::GET, &artifact.url, None, range.as_deref())
            .await?;
        let status = resp.status();
        if status != StatusCode::OK && status != StatusCode::PARTIAL_CONTENT {
            return Err(ClientError::Status {
                url: artifact.url.clone(),
                status: status.as_u16(),
            });
        }
        let content_range = resp
            .headers()
            .get(hyper::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let file_err = |e: std::io::Error| ClientError::File {
            path: PathBuf::from(&artifact.filename),
            reason: e.to_string(),
        };
        if !check.handle_response(status.as_u16(), content_range.as_deref())? {
            // The whole file again: start the file over.
            file.set_len(0).await.map_err(file_err)?;
            use tokio::io::AsyncSeekExt;
            file.seek(std::io::SeekFrom::Start(0))
                .await
                .map_err(file_err)?;
        }
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Http {
                url: artifact.url.clone(),
                reason: e.to_string(),
            })?;
            if let Ok(data) = frame.into_data() {
                check.handle_data(&data)?;
                file.write_all(&data).await.map_err(file_err)?;
            }
        }
        Ok(())
    }
}

/// What the daemon knows for one poll cycle.
#[derive(Debug, Clone)]
pub struct CycleContext {
    /// Where artifacts are downloaded (on the data partition; removed after install).
    pub download_dir: PathBuf,
    /// The device's attributes for configData.
    pub attributes: BTreeMap<String, String>,
    /// The install rules.
    pub policy: super::InstallPolicy,
    /// Calls, emergency flag and local time at the start of the cycle.
    pub install: super::InstallContext,
}

/// What one poll cycle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CycleOutcome {
    /// The attributes were sent (the server asked).
    ConfigSent,
    /// A cancel request was confirmed.
    Canceled {
        /// The action stopped.
        stop_id: String,
    },
    /// A deployment is waiting for a quieter moment (the server offers it again).
    Deferred {
        /// The action.
        action_id: String,
        /// Why.
        reason: String,
    },
    /// The deployment was downloaded, checked and installed into the inactive slot.
    Installed {
        /// The action.
        action_id: String,
    },
    /// The deployment failed (download, hash, or the installer refused it).
    Failed {
        /// The action.
        action_id: String,
        /// Why, as reported to the server.
        reason: String,
    },
}

fn feedback(
    execution: super::hawkbit::Execution,
    finished: super::hawkbit::Finished,
    detail: String,
) -> Feedback {
    Feedback {
        execution,
        finished,
        progress: None,
        details: vec![detail],
    }
}

impl DdiClient {
    /// One poll of the base resource and whatever it asks for: config data, a cancel,
    /// a deployment (policy check, download with hash check, install through
    /// `installer`, feedback). Returns the reply (for the polling schedule) and what was
    /// done. The deployment's handling `forced` overrides calls and the maintenance
    /// window, never an emergency call.
    pub async fn poll_cycle<I: super::Installer>(
        &self,
        installer: &I,
        ctx: &CycleContext,
    ) -> Result<(BaseReply, Vec<CycleOutcome>), ClientError> {
        use super::hawkbit::{Execution, Finished, Handling};
        let reply = self.poll().await?;
        let mut done = Vec::new();
        if reply.config_data.is_some() {
            self.send_config_data(&ctx.attributes).await?;
            done.push(CycleOutcome::ConfigSent);
        }
        let mut canceled = None;
        if let Some(href) = &reply.cancel {
            // Deployments run to their end within a cycle, so a cancel always finds the
            // action not started yet.
            let c = self.cancel_request(href).await?;
            let f = feedback(
                Execution::Canceled,
                Finished::Success,
                "canceled before download".into(),
            );
            self.cancel_feedback(&c.id, &f).await?;
            canceled = Some(c.stop_id.clone());
            done.push(CycleOutcome::Canceled { stop_id: c.stop_id });
        }
        let Some(href) = &reply.deployment else {
            return Ok((reply, done));
        };
        let d = self.deployment(href).await?;
        if canceled.as_deref() == Some(d.action_id.as_str()) || d.download == Handling::Skip {
            return Ok((reply, done));
        }
        let force = d.update == Handling::Forced;
        if let Err(refusal) = ctx.policy.check(&ctx.install, force) {
            let reason = refusal.to_string();
            let f = feedback(
                Execution::Proceeding,
                Finished::None,
                format!("deferred: {reason}"),
            );
            self.deployment_feedback(&d.action_id, &f).await?;
            done.push(CycleOutcome::Deferred {
                action_id: d.action_id,
                reason,
            });
            return Ok((reply, done));
        }
        let outcome = match self.deploy(installer, ctx, &d).await {
            Ok(()) => {
                let f = feedback(
                    Execution::Closed,
                    Finished::Success,
                    "installed into the inactive slot; active after the next restart".into(),
                );
                self.deployment_feedback(&d.action_id, &f).await?;
                CycleOutcome::Installed {
                    action_id: d.action_id,
                }
            }
            Err(reason) => {
                let f = feedback(Execution::Closed, Finished::Failure, reason.clone());
                self.deployment_feedback(&d.action_id, &f).await?;
                CycleOutcome::Failed {
                    action_id: d.action_id,
                    reason,
                }
            }
        };
        done.push(outcome);
        Ok((reply, done))
    }

    async fn deploy<I: super::Installer>(
        &self,
        installer: &I,
        ctx: &CycleContext,
        d: &Deployment,
    ) -> Result<(), String> {
        use super::hawkbit::{Execution, Finished};
        let total: usize = d.chunks.iter().map(|c| c.artifacts.len()).sum();
        let mut n = 0;
        for artifact in d.chunks.iter().flat_map(|c| &c.artifacts) {
            n += 1;
            let mut f = feedback(
                Execution::Proceeding,
                Finished::None,
                format!("downloading {}", artifact.filename),
            );
            f.progress = Some((n - 1, u32::try_from(total).unwrap_or(u32::MAX)));
            self.deployment_feedback(&d.action_id, &f)
                .await
                .map_err(|e| e.to_string())?;
            // The server's file name is not trusted as a path.
            let dest = ctx
                .download_dir
                .join(format!("ddi-{}-{n}.raucb", d.action_id));
            self.download(artifact, &dest)
                .await
                .map_err(|e| e.to_string())?;
            let result = installer.install(&dest, |_| {}).await;
            let _ = tokio::fs::remove_file(&dest).await;
            result.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
