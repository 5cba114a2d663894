//! The authorization server's errors: the RFC 6749 error codes the domain speaks, and the one place
//! where errors become HTTP responses.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use common::api_error::{respond, ApiError};
use oauth::ErrorBody;
pub use oauth::ErrorCode;

use crate::store::StoreError;

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
        ErrorBody::new(self.code, self.description.clone())
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

impl ApiError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::AuthorizeNoRedirect(_) | Error::Token(_) => StatusCode::BAD_REQUEST,
            Error::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            Error::SlowDown { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Signing(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> ErrorBody {
        match self {
            Error::AuthorizeNoRedirect(error)
            | Error::Token(error)
            | Error::InvalidClient { error, .. } => error.body(),
            Error::SlowDown { retry_after } => ErrorBody::new(
                ErrorCode::TemporarilyUnavailable,
                format!(
                    "too many failed client authentications from this address; retry in {} s",
                    retry_seconds(*retry_after)
                ),
            ),
            Error::Store(_) => ErrorBody::new(
                ErrorCode::TemporarilyUnavailable,
                "the authorization code store is unavailable; retry shortly",
            ),
            Error::Signing(_) => ErrorBody::new(ErrorCode::ServerError, "cannot issue a token"),
        }
    }

    fn add_headers(&self, headers: &mut HeaderMap) {
        match self {
            Error::SlowDown { retry_after } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_seconds(*retry_after)),
                );
            }
            Error::InvalidClient {
                method: AuthMethod::Basic | AuthMethod::None,
                ..
            } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Basic realm=\"authorization-server\", charset=\"UTF-8\"",
                    ),
                );
            }
            _ => {}
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        respond(&self)
    }
}

/// Whole seconds for `Retry-After`, rounded up so that a client waiting that long is let in.
fn retry_seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}
