//! The JSON API under `/api/v1/`: state, the authenticated-request extractor (session
//! cookie, CSRF token, live account), and the handlers. Roles are enforced here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path as UrlPath, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use super::auth::{self, secrets_equal};
use super::error::ApiError;
use super::session::{Sessions, IDLE_TIMEOUT};
use super::setup::SetupToken;
use super::throttle::{
    account_key, source_key, Throttle, MAX_ACCOUNT_FAILURES, MAX_SOURCE_FAILURES,
};
use super::Status;
use crate::clock;
use crate::store::{
    validate_username, validate_web_password, AuditCtx, Role, Store, StoreError, WebUser,
};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "pbx_session";
/// The header carrying the session's anti-CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Shared state of the HTTPS API.
#[derive(Debug)]
pub struct WebState {
    status: Status,
    pub(super) store: Arc<Mutex<Store>>,
    pub(super) sessions: Mutex<Sessions>,
    /// When the web side started (the daemon's uptime).
    pub(super) started: std::time::Instant,
    account_throttle: Mutex<Throttle>,
    source_throttle: Mutex<Throttle>,
    setup: Mutex<Option<SetupToken>>,
    /// Verified against when the user does not exist, so unknown names cost the same.
    dummy_hash: String,
    hash_slots: Semaphore,
    /// The data directory (System page: its partition's usage).
    pub(super) data_dir: std::path::PathBuf,
    /// Marks and checks configuration backups ([`crate::store::BACKUP_TABLES`]).
    pub(super) device_key: Arc<crate::secret::DeviceKey>,
    /// Firmware uploads: the update settings and the current install.
    pub(super) firmware: super::api_firmware::Firmware,
    /// The HTTPS certificate being served (set once by the daemon at start).
    pub(super) certificate: std::sync::OnceLock<Arc<super::device_cert::DeviceCert>>,
    /// Click-to-dial: the SIP task's dialer and the per-account rate limit.
    pub(super) click_to_dial: super::api_dial::ClickToDial,
}

/// The router's state.
pub type AppState = Arc<WebState>;

/// A poisoned lock only means another request panicked mid-update; these tables stay
/// consistent (each update is a single map operation), so keep using them.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl WebState {
    /// Opens the web side's own store connection; if no account exists, creates the
    /// set-up token (file and log line). Blocks for one password hash (the dummy).
    pub fn new(data_dir: &Path, status: Status) -> anyhow::Result<AppState> {
        let store = Store::open(data_dir)?;
        let setup = if store.count_web_users()? == 0 {
            Some(SetupToken::create(data_dir)?)
        } else {
            SetupToken::remove_stale(data_dir);
            None
        };
        let dummy_hash = auth::hash_password(&auth::random_token())?;
        let device_key = Arc::new(crate::secret::DeviceKey::load_or_create(data_dir)?);
        Ok(Arc::new(WebState {
            status,
            started: clock::now(),
            store: Arc::new(Mutex::new(store)),
            sessions: Mutex::new(Sessions::default()),
            account_throttle: Mutex::new(Throttle::new(MAX_ACCOUNT_FAILURES)),
            source_throttle: Mutex::new(Throttle::new(MAX_SOURCE_FAILURES)),
            setup: Mutex::new(setup),
            dummy_hash,
            hash_slots: Semaphore::new(auth::HASH_SLOTS),
            data_dir: data_dir.to_path_buf(),
            device_key,
            firmware: super::api_firmware::Firmware::default(),
            certificate: std::sync::OnceLock::new(),
            click_to_dial: super::api_dial::ClickToDial::default(),
        }))
    }

    /// Gives the Firmware page the daemon's update settings (backend, bus, policy).
    pub fn configure_firmware(&self, s: super::api_firmware::FirmwareSettings) {
        self.firmware.configure(s);
    }

    /// Gives the Certificate page the HTTPS listener's certificate (a second call is
    /// ignored: the listener keeps the first).
    pub fn configure_certificate(&self, c: Arc<super::device_cert::DeviceCert>) {
        let _ = self.certificate.set(c);
    }

    /// Connects click-to-dial to the SIP task (a second call is ignored).
    pub fn configure_dialer(&self, dialer: crate::sip::Dialer) {
        self.click_to_dial.configure(dialer);
    }

    /// The live figures for `/api/v1/health`.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Runs a store call on a blocking thread (SQLite may wait for pbxctl's lock).
    pub(super) async fn db<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&mut lock(&store)))
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::BadValue {
                    what: "store task",
                    detail: e.to_string(),
                })
            })
    }

    pub(super) async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _slot = self
            .hash_slots
            .acquire()
            .await
            .map_err(|_| ApiError::Internal)?;
        tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(|_| ApiError::Internal)?
            .map_err(|e| {
                tracing::error!("{e}");
                ApiError::Internal
            })
    }

    async fn verify(&self, password: String, phc: String) -> bool {
        let Ok(_slot) = self.hash_slots.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || auth::verify_password(&password, &phc))
            .await
            .unwrap_or(false)
    }

    /// Writes an audit entry; a failure is logged, never shown to the client.
    pub(super) async fn audit(
        &self,
        actor: String,
        source: IpAddr,
        action: &'static str,
        detail: String,
    ) {
        let r = self
            .db(move |s| {
                let by = AuditCtx {
                    actor: &actor,
                    source: &source.to_string(),
                    now_unix: unix_now(),
                };
                s.audit(&by, action, &detail)
            })
            .await;
        if let Err(e) = r {
            warn!("cannot write audit entry {action}: {e}");
        }
    }

    fn throttled(&self, keys: &[(&Mutex<Throttle>, &str)]) -> Result<(), ApiError> {
        let now = clock::now();
        for (table, key) in keys {
            if let Err(wait) = lock(table).check(key, now) {
                // Round up: a client retrying at Retry-After must not be refused again.
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Err(ApiError::TooManyAttempts(secs));
            }
        }
        Ok(())
    }

    fn record_failures(&self, keys: &[(&Mutex<Throttle>, &str)]) {
        let now = clock::now();
        for (table, key) in keys {
            lock(table).record_failure(key, now);
        }
    }
}

pub(super) fn unix_now() -> i64 {
    i64::try_from(clock::unix_now()).unwrap_or(i64::MAX)
}

fn peer(parts_ext: &axum::http::Extensions) -> IpAddr {
    parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Parses a JSON body; refuses other content types (a cross-site form cannot send
/// `application/json` without a CORS preflight, which we never grant).
pub(super) fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
        field: None,
        message: format!("invalid JSON body: {e}"),
    })
}

/// The `pbx_session` cookie value, if well-formed.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| {
            *k == SESSION_COOKIE && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(value: &str, max_age_zero: bool) -> HeaderValue {
    let extra = if max_age_zero { "; Max-Age=0" } else { "" };
    HeaderValue::try_from(format!(
        "{SESSION_COOKIE}={value}; HttpOnly; Secure; SameSite=Strict; Path=/{extra}"
    ))
    // The value is hex or empty: always a valid header value.
    .unwrap_or_else(|_| HeaderValue::from_static("pbx_session=; Max-Age=0"))
}

/// A request with a live session of an enabled account. For state-changing methods the
/// `X-CSRF-Token` header must match the session's token.
#[derive(Debug)]
pub struct Authed {
    /// The account, as stored now (role and disabled flag are current).
    pub user: WebUser,
    /// The session's cookie value.
    pub session_id: String,
    /// The session's anti-CSRF token.
    pub csrf: String,
    /// The client's address.
    pub source: IpAddr,
}

impl Authed {
    pub(super) fn actor(&self) -> String {
        format!("web:{}", self.user.username)
    }

    pub(super) fn require_admin(&self) -> Result<(), ApiError> {
        if self.user.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("administrator rights required"))
        }
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let id = session_cookie(&parts.headers).ok_or(ApiError::Unauthorized("not logged in"))?;
        let info = lock(&st.sessions)
            .touch(&id, clock::now())
            .ok_or(ApiError::Unauthorized(
                "session expired or unknown; log in again",
            ))?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !secrets_equal(sent, &info.csrf) {
                return Err(ApiError::Forbidden {
                    field: Some("X-CSRF-Token"),
                    message: "missing or wrong X-CSRF-Token header".into(),
                });
            }
        }
        let name = info.username.clone();
        let user = st
            .db(move |s| s.get_web_user(&name))
            .await
            .map_err(|e| ApiError::from_store(e, "username"))?;
        let Some(user) = user.filter(|u| !u.disabled) else {
            lock(&st.sessions).remove_user(&info.username, None);
            return Err(ApiError::Unauthorized("account disabled or removed"));
        };
        Ok(Authed {
            user,
            session_id: id,
            csrf: info.csrf,
            source: peer(&parts.extensions),
        })
    }
}

/// An account as the API shows it (never the hash).
#[derive(Debug, Serialize)]
pub(super) struct UserView {
    username: String,
    role: &'static str,
    extension: Option<String>,
    disabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl From<&WebUser> for UserView {
    fn from(u: &WebUser) -> Self {
        UserView {
            username: u.username.clone(),
            role: u.role.as_str(),
            extension: u.extension.clone(),
            disabled: u.disabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct SessionView {
    username: String,
    role: &'static str,
    extension: Option<String>,
    csrf_token: String,
    idle_timeout_secs: u64,
    /// The UI language: "en" or "de".
    language: &'static str,
}

fn session_view(u: &WebUser, csrf: String, language: crate::store::Language) -> SessionView {
    SessionView {
        language: language.as_str(),
        username: u.username.clone(),
        role: u.role.as_str(),
        extension: u.extension.clone(),
        csrf_token: csrf,
        idle_timeout_secs: IDLE_TIMEOUT.as_secs(),
    }
}

/// Every API route: the router is built from this table only, and the OpenAPI test
/// checks the document against it.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    let mut routes = vec![
        (Method::GET, "/api/v1/health", get(health)),
        (Method::GET, "/api/v1/openapi.json", get(openapi)),
        (Method::GET, "/api/v1/setup", get(setup_status)),
        (Method::POST, "/api/v1/setup", post(setup)),
        (Method::POST, "/api/v1/login", post(login)),
        (Method::POST, "/api/v1/logout", post(logout)),
        (Method::GET, "/api/v1/session", get(session)),
        (Method::GET, "/api/v1/users", get(list_users)),
        (Method::POST, "/api/v1/users", post(add_user)),
        (
            Method::POST,
            "/api/v1/users/{name}/disable",
            post(disable_user),
        ),
        (
            Method::POST,
            "/api/v1/users/{name}/enable",
            post(enable_user),
        ),
        (
            Method::PUT,
            "/api/v1/users/me/password",
            put(change_password),
        ),
    ];
    routes.extend(super::api_pbx::routes());
    routes.extend(super::events::routes());
    routes.extend(super::api_admin::routes());
    routes.extend(super::api_trunks::routes());
    routes.extend(super::api_gsm::routes());
    routes.extend(super::api_firmware::routes());
    routes.extend(super::api_user::routes());
    routes.extend(super::api_ports::routes());
    routes.extend(super::api_certificate::routes());
    routes.extend(super::api_dial::routes());
    routes
}

async fn health(State(st): State<AppState>) -> Response {
    super::health(State(st.status.clone()))
        .await
        .into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::DOCUMENT,
    )
        .into_response()
}

#[derive(Serialize)]
struct SetupStatus {
    setup_required: bool,
}

async fn setup_status(State(st): State<AppState>) -> Json<SetupStatus> {
    Json(SetupStatus {
        setup_required: lock(&st.setup).is_some(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupRequest {
    token: String,
    username: String,
    password: String,
}

async fn setup(
    State(st): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let req: SetupRequest = parse_json(&headers, &body)?;
    let skey = source_key(from.ip());
    st.throttled(&[(&st.source_throttle, &skey)])?;
    let token_ok = match &*lock(&st.setup) {
        None => {
            return Err(ApiError::Conflict(
                "set-up is already done; log in instead".into(),
            ))
        }
        Some(t) => secrets_equal(req.token.trim(), &t.token),
    };
    if !token_ok {
        st.record_failures(&[(&st.source_throttle, &skey)]);
        st.audit(
            "web".into(),
            from.ip(),
            "setup.fail",
            "wrong set-up token".into(),
        )
        .await;
        return Err(ApiError::Forbidden {
            field: Some("token"),
            message: "wrong set-up token".into(),
        });
    }
    validate_username(&req.username).map_err(|e| ApiError::from_store(e, "username"))?;
    validate_web_password(&req.username, &req.password)
        .map_err(|e| ApiError::from_store(e, "password"))?;
    let hash = st.hash(req.password).await?;
    let username = req.username.clone();
    let source = from.ip().to_string();
    st.db(move |s| {
        let by = AuditCtx {
            actor: "web:setup-token",
            source: &source,
            now_unix: unix_now(),
        };
        s.add_first_admin(&by, &username, &hash)?;
        s.get_web_user(&username)
    })
    .await
    .map_err(|e| ApiError::from_store(e, "password"))
    .and_then(|u| {
        if let Some(t) = lock(&st.setup).take() {
            t.consume();
        }
        info!(
            "first administrator {:?} created; the set-up token is gone",
            req.username
        );
        let u = u.ok_or(ApiError::Internal)?;
        Ok((StatusCode::CREATED, Json(UserView::from(&u))))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

/// Longest user name looked up; longer ones are unknown (and cost the same).
const MAX_LOOKUP_NAME: usize = 64;

async fn login(
    State(st): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: LoginRequest = parse_json(&headers, &body)?;
    let skey = source_key(from.ip());
    let akey = account_key(&req.username);
    let keys = [
        (&st.source_throttle, skey.as_str()),
        (&st.account_throttle, akey.as_str()),
    ];
    st.throttled(&keys)?;
    let user = if req.username.len() <= MAX_LOOKUP_NAME {
        let name = req.username.clone();
        st.db(move |s| s.get_web_user(&name))
            .await
            .map_err(|e| ApiError::from_store(e, "username"))?
    } else {
        None
    };
    let phc = user
        .as_ref()
        .map_or_else(|| st.dummy_hash.clone(), |u| u.password_hash.clone());
    let matches = st.verify(req.password, phc).await;
    let shown: String = req.username.chars().take(MAX_LOOKUP_NAME).collect();
    let user = match user {
        Some(u) if matches && !u.disabled => u,
        other => {
            st.record_failures(&keys);
            let reason = match other {
                None => "unknown user",
                Some(u) if u.disabled && matches => "account disabled",
                Some(_) => "wrong password",
            };
            st.audit(
                "web".into(),
                from.ip(),
                "login.fail",
                format!("username={shown:?} reason={reason}"),
            )
            .await;
            return Err(ApiError::Unauthorized("wrong user name or password"));
        }
    };
    lock(&st.account_throttle).clear(&akey);
    let new = {
        let mut sessions = lock(&st.sessions);
        // Rotation: a session id the browser had before login never becomes valid.
        if let Some(old) = session_cookie(&headers) {
            sessions.remove(&old);
        }
        sessions.create(
            &user.username,
            clock::now(),
            [rand::random(), rand::random()],
        )
    };
    st.audit(
        format!("web:{}", user.username),
        from.ip(),
        "login.ok",
        format!("username={}", user.username),
    )
    .await;
    let name = user.username.clone();
    let language = st
        .db(move |s| s.web_user_language(&name))
        .await
        .map_err(|e| ApiError::from_store(e, "username"))?;
    let mut resp = Json(session_view(&user, new.csrf, language)).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&new.id, false));
    Ok(resp)
}

async fn logout(State(st): State<AppState>, a: Authed) -> Response {
    lock(&st.sessions).remove(&a.session_id);
    st.audit(
        a.actor(),
        a.source,
        "logout",
        format!("username={}", a.user.username),
    )
    .await;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie("", true));
    resp
}

async fn session(State(st): State<AppState>, a: Authed) -> Result<Json<SessionView>, ApiError> {
    let name = a.user.username.clone();
    let language = st
        .db(move |s| s.web_user_language(&name))
        .await
        .map_err(|e| ApiError::from_store(e, "username"))?;
    Ok(Json(session_view(&a.user, a.csrf.clone(), language)))
}

async fn list_users(
    State(st): State<AppState>,
    a: Authed,
) -> Result<Json<Vec<UserView>>, ApiError> {
    a.require_admin()?;
    let users = st
        .db(|s| s.list_web_users())
        .await
        .map_err(|e| ApiError::from_store(e, "username"))?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    role: String,
    #[serde(default)]
    extension: Option<String>,
}

async fn add_user(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    a.require_admin()?;
    let req: NewUser = parse_json(&headers, &body)?;
    validate_username(&req.username).map_err(|e| ApiError::from_store(e, "username"))?;
    let role = Role::parse(&req.role)
        .ok_or_else(|| ApiError::field("role", "role must be \"admin\" or \"user\""))?;
    validate_web_password(&req.username, &req.password)
        .map_err(|e| ApiError::from_store(e, "password"))?;
    let hash = st.hash(req.password).await?;
    let (actor, source) = (a.actor(), a.source.to_string());
    let user = st
        .db(move |s| {
            let by = AuditCtx {
                actor: &actor,
                source: &source,
                now_unix: unix_now(),
            };
            s.add_web_user(&by, &req.username, &hash, role, req.extension.as_deref())?;
            s.get_web_user(&req.username)
        })
        .await
        .map_err(|e| ApiError::from_store(e, "password"))?
        .ok_or(ApiError::Internal)?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

async fn set_disabled(
    st: AppState,
    a: Authed,
    name: String,
    disabled: bool,
) -> Result<Json<UserView>, ApiError> {
    a.require_admin()?;
    if disabled && name == a.user.username {
        return Err(ApiError::Conflict(
            "you cannot disable your own account".into(),
        ));
    }
    let (actor, source, who) = (a.actor(), a.source.to_string(), name.clone());
    let user = st
        .db(move |s| {
            let by = AuditCtx {
                actor: &actor,
                source: &source,
                now_unix: unix_now(),
            };
            s.set_web_user_disabled(&by, &who, disabled)?;
            s.get_web_user(&who)
        })
        .await
        .map_err(|e| ApiError::from_store(e, "username"))?
        .ok_or(ApiError::Internal)?;
    if disabled {
        lock(&st.sessions).remove_user(&name, None);
    }
    Ok(Json(UserView::from(&user)))
}

async fn disable_user(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<UserView>, ApiError> {
    set_disabled(st, a, name, true).await
}

async fn enable_user(
    State(st): State<AppState>,
    a: Authed,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<UserView>, ApiError> {
    set_disabled(st, a, name, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(st): State<AppState>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let req: PasswordChange = parse_json(&headers, &body)?;
    let akey = account_key(&a.user.username);
    let keys = [(&st.account_throttle, akey.as_str())];
    st.throttled(&keys)?;
    if !st
        .verify(req.current_password, a.user.password_hash.clone())
        .await
    {
        st.record_failures(&keys);
        return Err(ApiError::Forbidden {
            field: Some("current_password"),
            message: "the current password is wrong".into(),
        });
    }
    validate_web_password(&a.user.username, &req.new_password)
        .map_err(|e| ApiError::from_store(e, "new_password"))?;
    let hash = st.hash(req.new_password).await?;
    let (actor, source, who) = (a.actor(), a.source.to_string(), a.user.username.clone());
    st.db(move |s| {
        let by = AuditCtx {
            actor: &actor,
            source: &source,
            now_unix: unix_now(),
        };
        s.set_web_user_password_hash(&by, &who, &hash)
    })
    .await
    .map_err(|e| ApiError::from_store(e, "new_password"))?;
    // Other sessions (perhaps the reason for the change) end; this one stays.
    lock(&st.sessions).remove_user(&a.user.username, Some(&a.session_id));
    Ok(StatusCode::NO_CONTENT)
}
