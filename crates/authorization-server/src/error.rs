//! The authorization server's errors: the RFC 6749 error codes the domain speaks, and the one place
//! where errors become HTTP responses.

use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use common::ErrorBody;

use crate::store::StoreError;

/// An error code of RFC 6749 §4.1.2.1 / §5.2, RFC 8707 §2 (`invalid_target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    InvalidTarget,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error as sent to the client: a code and a human-readable description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code.as_str(), self.description.clone())
    }
}

/// How the client presented its credentials at the token endpoint; decides the
/// `WWW-Authenticate` challenge of an `invalid_client` answer (RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
    None,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The authorization request cannot be trusted to redirect (unknown client, bad redirect URI):
    /// RFC 6749 §4.1.2.1 says to tell the user, never to redirect.
    #[error("authorization request refused without redirect: {0}")]
    AuthorizeNoRedirect(OAuthError),
    #[error("client authentication failed: {error}")]
    InvalidClient {
        error: OAuthError,
        method: AuthMethod,
    },
    #[error("token request refused: {0}")]
    Token(OAuthError),
    /// Too many failed client authentications from this address: it must wait.
    #[error("client authentication throttled for {retry_after:?}")]
    SlowDown { retry_after: std::time::Duration },
    #[error("code store unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("cannot sign the access token: {0}")]
    Signing(#[from] crate::keys::KeyError),
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            Error::AuthorizeNoRedirect(error) | Error::Token(error) => {
                (StatusCode::BAD_REQUEST, error.body())
            }
            Error::InvalidClient { error, .. } => (StatusCode::UNAUTHORIZED, error.body()),
            Error::SlowDown { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                ErrorBody::new(
                    ErrorCode::TemporarilyUnavailable.as_str(),
                    format!(
                        "too many failed client authentications from this address; retry in {} s",
                        retry_seconds(*retry_after)
                    ),
                ),
            ),
            Error::Store(err) => {
                tracing::error!(error = %err, "code store unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorBody::new(
                        ErrorCode::TemporarilyUnavailable.as_str(),
                        "the authorization code store is unavailable; retry shortly",
                    ),
                )
            }
            Error::Signing(err) => {
                tracing::error!(error = %err, "cannot sign an access token");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody::new(ErrorCode::ServerError.as_str(), "cannot issue a token"),
                )
            }
        };
        if status.is_client_error() {
            tracing::info!(error = %self, "request refused");
        }
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Error::SlowDown { retry_after } = &self {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_seconds(*retry_after)),
            );
        }
        if let Error::InvalidClient {
            method: AuthMethod::Basic | AuthMethod::None,
            ..
        } = self
        {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"authorization-server\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// Whole seconds for `Retry-After`, rounded up so that a client waiting that long is let in.
fn retry_seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}
