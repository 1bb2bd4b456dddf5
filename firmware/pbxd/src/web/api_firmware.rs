//! The Firmware page's API (administrators only): version, slots and the installer's
//! state from the update module, and a bundle upload that goes the way of
//! `pbxctl update install`: the same [`InstallPolicy`] (refused while calls are up or
//! outside the maintenance window unless forced, never during an emergency call) and the
//! same [`RaucInstaller`], whose verdict (signature, compatible string, damage) is shown
//! as RAUC words it.
//!
//! The upload is streamed into `DATA/tmp/` (never held in memory) with a size limit and
//! removed after the install, whatever its outcome. One install at a time.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use http_body_util::BodyExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::api::{lock, unix_now, AppState, Authed};
use super::error::ApiError;
use crate::update::rauc::{Bus, RaucInstaller};
use crate::update::{
    InstallContext, InstallPolicy, Installer, UpdateBackend, UpdateError, UpdateStatus,
};

/// Largest bundle accepted: the rootfs slot of the board is 512 MiB.
pub const MAX_BUNDLE_BYTES: usize = 512 * 1024 * 1024;

/// How the daemon installs updates (from its command line; the web side's copy).
#[derive(Debug, Clone, Default)]
pub struct FirmwareSettings {
    /// `none` on development hosts: uploads are refused.
    pub backend: UpdateBackend,
    /// RAUC's bus.
    pub bus: Bus,
    /// When unforced installs may start.
    pub policy: InstallPolicy,
    /// Local time for the maintenance window.
    pub utc_offset: Option<time::UtcOffset>,
}

/// An install started from the web UI: where it is, how it ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Job {
    /// `idle`, `installing`, `installed` or `failed`.
    pub state: &'static str,
    /// 0 to 100.
    pub percent: u8,
    /// RAUC's step, e.g. "Copying image to rootfs.1".
    pub message: String,
    /// Why it failed (RAUC's words for a bad or foreign bundle).
    pub last_error: Option<String>,
    /// The slot that boots next after a successful install.
    pub next_slot: Option<String>,
    /// Unix seconds.
    pub started_at: Option<i64>,
    /// Unix seconds.
    pub finished_at: Option<i64>,
}

/// The firmware side of the web state.
#[derive(Debug, Default)]
pub struct Firmware {
    settings: Mutex<FirmwareSettings>,
    job: Mutex<Job>,
}

impl Firmware {
    /// Takes the daemon's update settings (called once at start).
    pub fn configure(&self, s: FirmwareSettings) {
        *lock(&self.settings) = s;
    }
}

/// The routes of this module (appended to [`super::api::routes`]).
pub(super) fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/api/v1/firmware", get(firmware)),
        (
            Method::POST,
            "/api/v1/firmware",
            // The bundle is streamed and counted in `receive`; lift the small default.
            post(upload).layer(DefaultBodyLimit::disable()),
        ),
    ]
}

#[derive(Serialize)]
struct FirmwareView {
    version: &'static str,
    backend: &'static str,
    maintenance_window: Option<String>,
    /// The installer's status (slots, booted, primary); `null` when unavailable.
    status: Option<UpdateStatus>,
    /// Why the status is unavailable.
    status_error: Option<String>,
    job: Job,
    max_bundle_bytes: usize,
}

async fn firmware(State(st): State<AppState>, a: Authed) -> Result<Json<FirmwareView>, ApiError> {
    a.require_admin()?;
    let s = lock(&st.firmware.settings).clone();
    let (status, status_error) = match s.backend {
        UpdateBackend::None => (None, Some(UpdateError::Disabled.to_string())),
        UpdateBackend::Rauc => match rauc_status(&s.bus).await {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e.to_string())),
        },
    };
    Ok(Json(FirmwareView {
        version: env!("CARGO_PKG_VERSION"),
        backend: match s.backend {
            UpdateBackend::None => "none",
            UpdateBackend::Rauc => "rauc",
        },
        maintenance_window: s.policy.window.map(|w| w.to_string()),
        status,
        status_error,
        job: lock(&st.firmware.job).clone(),
        max_bundle_bytes: MAX_BUNDLE_BYTES,
    }))
}

async fn rauc_status(bus: &Bus) -> Result<UpdateStatus, UpdateError> {
    RaucInstaller::connect(bus).await?.status().await
}

/// `?force=true|false` (absent: false).
fn force(uri: &Uri) -> Result<bool, ApiError> {
    let mut force = false;
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair {
            "force=true" => force = true,
            "force=false" => force = false,
            _ => {
                return Err(ApiError::BadRequest {
                    field: None,
                    message: format!("unknown query parameter {pair:?} (only force=true|false)"),
                })
            }
        }
    }
    Ok(force)
}

fn local_time(offset: Option<time::UtcOffset>) -> time::Time {
    time::OffsetDateTime::from_unix_timestamp(unix_now())
        .map(|t| t.to_offset(offset.unwrap_or(time::UtcOffset::UTC)).time())
        .unwrap_or(time::Time::MIDNIGHT)
}

/// The policy `pbxctl update install` applies, with pbxd's own call count.
fn check_policy(st: &AppState, s: &FirmwareSettings, force: bool) -> Result<(), ApiError> {
    if s.backend == UpdateBackend::None {
        return Err(ApiError::Conflict(UpdateError::Disabled.to_string()));
    }
    let ctx = InstallContext {
        active_calls: st.status().calls.load(Ordering::Relaxed),
        emergency_call: st.status().emergency_calls.load(Ordering::Relaxed) > 0,
        local_time: local_time(s.utc_offset),
    };
    s.policy
        .check(&ctx, force)
        .map_err(|r| ApiError::Conflict(UpdateError::from(r).to_string()))
}

/// Removes the temporary bundle when dropped (the install's end, or a failed upload).
struct TempBundle(PathBuf);

impl Drop for TempBundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::field(
        "file",
        format!("the bundle is larger than {} MiB", max >> 20),
    )
}

/// Streams `body` into a new file under `dir`; at most `max` bytes (counted here: the
/// body-limit layer does not apply to a streamed `Body`).
async fn receive(dir: &Path, body: Body, max: u64) -> Result<(TempBundle, u64), ApiError> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| {
        tracing::error!("cannot create {}: {e}", dir.display());
        ApiError::Internal
    })?;
    let name = format!("upload-{}.raucb", hex::encode(rand::random::<[u8; 8]>()));
    let temp = TempBundle(dir.join(name));
    let mut file = tokio::fs::File::create(&temp.0).await.map_err(|e| {
        tracing::error!("cannot create {}: {e}", temp.0.display());
        ApiError::Internal
    })?;
    let mut body = body;
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::field("file", format!("upload interrupted: {e}")))?;
        if let Ok(data) = frame.into_data() {
            size += data.len() as u64;
            if size > max {
                return Err(too_large(max));
            }
            file.write_all(&data).await.map_err(|e| {
                tracing::error!("cannot write {}: {e}", temp.0.display());
                ApiError::Conflict(format!(
                    "cannot store the upload on the data partition: {e}"
                ))
            })?;
        }
    }
    file.flush().await.map_err(|_| ApiError::Internal)?;
    if size == 0 {
        return Err(ApiError::field("file", "the upload is empty"));
    }
    Ok((temp, size))
}

async fn upload(
    State(st): State<AppState>,
    a: Authed,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    a.require_admin()?;
    let force = force(&uri)?;
    let is_octets = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/octet-stream"));
    if !is_octets {
        return Err(ApiError::BadRequest {
            field: Some("file"),
            message: "send the bundle as application/octet-stream".into(),
        });
    }
    let max = MAX_BUNDLE_BYTES as u64;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let settings = lock(&st.firmware.settings).clone();
    // Refuse before the upload when the answer is known already.
    check_policy(&st, &settings, force)?;
    {
        let mut job = lock(&st.firmware.job);
        if job.state == "installing" {
            return Err(ApiError::Conflict(
                "an installation is running; wait until it has finished".into(),
            ));
        }
        *job = Job {
            state: "installing",
            message: "receiving the bundle".into(),
            started_at: Some(unix_now()),
            ..Job::default()
        };
    }
    let fail = |st: &AppState, e: &ApiError| {
        let mut job = lock(&st.firmware.job);
        job.state = "failed";
        job.last_error = Some(e.to_string());
        job.finished_at = Some(unix_now());
    };
    let (temp, size) = match receive(&st.data_dir.join("tmp"), body, max).await {
        Ok(r) => r,
        Err(e) => {
            fail(&st, &e);
            return Err(e);
        }
    };
    // Calls may have started during the upload.
    if let Err(e) = check_policy(&st, &settings, force) {
        fail(&st, &e);
        return Err(e);
    }
    st.audit(
        a.actor(),
        a.source,
        "firmware.install",
        format!("bytes={size} force={force}"),
    )
    .await;
    let job = {
        let mut job = lock(&st.firmware.job);
        job.message = "starting the installation".into();
        job.clone()
    };
    let st2 = st.clone();
    tokio::spawn(async move {
        let result = install(&st2, &settings.bus, &temp.0).await;
        drop(temp);
        let mut job = lock(&st2.firmware.job);
        job.finished_at = Some(unix_now());
        match result {
            Ok(next) => {
                job.state = "installed";
                job.percent = 100;
                job.message = "installed; it boots at the next restart".into();
                job.next_slot = next;
            }
            Err(e) => {
                tracing::warn!("web firmware install: {e}");
                job.state = "failed";
                job.last_error = Some(e.to_string());
            }
        }
    });
    Ok((StatusCode::ACCEPTED, Json(job)))
}

async fn install(st: &AppState, bus: &Bus, bundle: &Path) -> Result<Option<String>, UpdateError> {
    let installer = RaucInstaller::connect(bus).await?;
    let installed = installer
        .install(bundle, |p| {
            let mut job = lock(&st.firmware.job);
            job.percent = p.percent;
            job.message = p.message.clone();
        })
        .await?;
    Ok(installed.primary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_and_its_file_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (temp, size) = receive(dir.path(), Body::from(vec![7u8; 1000]), 1000)
            .await
            .expect("at the limit");
        assert_eq!(size, 1000);
        assert_eq!(std::fs::read(&temp.0).expect("stored").len(), 1000);
        drop(temp);
        let err = receive(dir.path(), Body::from(vec![7u8; 1001]), 1000)
            .await
            .err()
            .expect("over the limit");
        assert!(
            matches!(
                err,
                ApiError::BadRequest {
                    field: Some("file"),
                    ..
                }
            ),
            "{err}"
        );
        let err = receive(dir.path(), Body::empty(), 1000)
            .await
            .err()
            .expect("empty");
        assert_eq!(err, ApiError::field("file", "the upload is empty"));
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("dir").count(),
            0,
            "nothing left"
        );
    }
}
