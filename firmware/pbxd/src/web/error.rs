//! API errors: one enum, mapped to HTTP in one place. Every error body is
//! `{"error": "...", "field": "..."?}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::store::StoreError;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Malformed or invalid input; `field` names the offending field, if one.
    #[error("{message}")]
    BadRequest {
        /// Which field, if the problem is in one.
        field: Option<&'static str>,
        /// What is wrong.
        message: String,
    },
    /// No (valid) session, or wrong credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Logged in but not allowed, or a CSRF/Origin check failed.
    #[error("{message}")]
    Forbidden {
        /// Which field, if the problem is in one.
        field: Option<&'static str>,
        /// Why.
        message: String,
    },
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The body is not `application/json`.
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// Too many failed attempts; retry after this many seconds.
    #[error("too many failed attempts; try again in {0} seconds")]
    TooManyAttempts(u64),
    /// A server-side failure; details are logged, not sent.
    #[error("internal error; see the device log")]
    Internal,
}

impl ApiError {
    /// A 400 naming a field.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: Some(field),
            message: message.into(),
        }
    }

    /// A 403 without a field.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            field: None,
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A store error as the client should see it; unexpected ones are logged.
    pub fn from_store(e: StoreError, field_hint: &'static str) -> Self {
        match e {
            StoreError::InvalidValue { what, reason } => ApiError::field(
                if what == "username" {
                    "username"
                } else {
                    field_hint
                },
                format!("invalid {what}: {reason}"),
            ),
            StoreError::InvalidPassword(why) => {
                ApiError::field(field_hint, format!("invalid password: {why}"))
            }
            StoreError::UnknownExtension(n) => {
                ApiError::field("extension", format!("extension {n} does not exist"))
            }
            StoreError::DuplicateUser(_)
            | StoreError::AlreadySetUp
            | StoreError::DuplicateExtension(_)
            | StoreError::DuplicateRingGroup(_)
            | StoreError::NumberInUse { .. } => ApiError::Conflict(e.to_string()),
            StoreError::UnknownUser(_) | StoreError::UnknownRingGroup(_) => {
                ApiError::NotFound(e.to_string())
            }
            StoreError::InvalidNumber { .. } => ApiError::field("number", e.to_string()),
            StoreError::InvalidName(_) => ApiError::field("name", e.to_string()),
            StoreError::ExternalForwardingDisabled(_) => ApiError::field(field_hint, e.to_string()),
            other => {
                tracing::error!("store: {other}");
                ApiError::Internal
            }
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let field = match &self {
            ApiError::BadRequest { field, .. } | ApiError::Forbidden { field, .. } => *field,
            _ => None,
        };
        let body = Body {
            error: self.to_string(),
            field,
        };
        let mut resp = (self.status(), Json(body)).into_response();
        if let ApiError::TooManyAttempts(secs) = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
