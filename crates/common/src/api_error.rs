//! The one place where a service's error becomes an HTTP answer: each service's error type says
//! its status, its body and any header of its own; the answer, its caching headers and its log
//! line are built here the same way for all three.

use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use oauth::ErrorBody;

/// A service's error as its answer: implement this, then `IntoResponse` as `respond(&self)`.
pub trait ApiError: std::fmt::Display {
    fn status(&self) -> StatusCode;

    fn body(&self) -> ErrorBody;

    /// Headers of this error's own: a challenge, `Retry-After`.
    fn add_headers(&self, _headers: &mut HeaderMap) {}
}

/// The answer to `error`: its status and JSON body, never cached (RFC 6749 §5.1 asks both headers
/// of a token response; an error answer must not be replayed from a cache either). A server error
/// is logged as an error (and so reported to Sentry with the request's tags), a refusal at info.
pub fn respond(error: &impl ApiError) -> Response {
    let status = error.status();
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), error = %error, "request failed");
    } else {
        tracing::info!(status = status.as_u16(), error = %error, "request refused");
    }
    let mut response = json_error(status, error.body());
    error.add_headers(response.headers_mut());
    response
}

/// A JSON error answer that is never cached: every error answer of the kit (404, 405, the input
/// limits', a panic's) and of the services ([`respond`]) is built here.
pub fn json_error(status: StatusCode, body: ErrorBody) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
