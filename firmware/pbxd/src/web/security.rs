//! Response hardening applied to every response: security headers, and a JSON body for
//! every error the framework itself produces (404, 405, 413, ...).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The Content-Security-Policy: only our own origin, no framing, no plugins, no inline
/// script (the UI will be plain JS modules from the same origin).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                       base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// HSTS: one year; no includeSubDomains (the box has no domain of its own).
pub const HSTS: &str = "max-age=31536000";

fn set_common(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    // API answers carry session state: never cache them.
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// Gives an error response without a JSON body one (`{"error": reason}`).
fn ensure_json_error(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let reason = match status.as_u16() {
        404 => "no such endpoint".to_owned(),
        405 => "method not allowed for this endpoint".to_owned(),
        413 => "request body too large".to_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    };
    let (mut parts, _) = resp.into_parts();
    let json = serde_json::json!({ "error": reason }).to_string();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json))
}

/// Middleware for the HTTPS router: headers including HSTS, JSON errors.
pub async fn https_layer(req: Request, next: Next) -> Response {
    let mut resp = ensure_json_error(next.run(req).await);
    set_common(&mut resp);
    resp.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    resp
}

/// Middleware for the plain-HTTP router: the same headers without HSTS (browsers ignore
/// it over HTTP).
pub async fn http_layer(req: Request, next: Next) -> Response {
    let mut resp = ensure_json_error(next.run(req).await);
    set_common(&mut resp);
    resp
}

/// Refuses a state-changing request whose `Origin` is present and not this host over
/// HTTPS (cross-site request forgery from another page). Applies to login and set-up
/// too (login CSRF).
pub async fn origin_check(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok());
            let ok = match (origin.to_str().ok(), host) {
                (Some(o), Some(h)) => o.eq_ignore_ascii_case(&format!("https://{h}")),
                _ => false,
            };
            if !ok {
                return ApiError::forbidden("cross-origin request refused (Origin does not match)")
                    .into_response();
            }
        }
    }
    next.run(req).await
}
