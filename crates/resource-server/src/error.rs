//! Every way a request can fail, and the one place that turns a failure into an HTTP answer
//! (RFC 6750 §3.1): status, `WWW-Authenticate` challenge, JSON [`ErrorBody`], `Cache-Control: no-store`.
//!
//! Descriptions are `&'static str` on purpose: nothing a caller sent (a token, a user name, a
//! `kid`) can end up in a header or a body.

use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use common::api_error::{respond, ApiError};
use oauth::{ErrorBody, ErrorCode, Scope};

/// The realm of every `WWW-Authenticate: Bearer` challenge.
pub const REALM: &str = "resource-server";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request has no `Authorization` header at all: 401 with a bare challenge and no error
    /// code (RFC 6750 §3.1).
    #[error("the request carries no access token")]
    MissingToken,
    /// 400 `invalid_request`: a malformed request (token in the query string, several or malformed
    /// `Authorization` headers, a missing or invalid `user`).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// 401 `invalid_token`: the token is malformed, expired, not signed by a trusted key, or not
    /// issued for this resource server and client.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// 403 `insufficient_scope`: a valid token, but for another endpoint or another user.
    #[error("insufficient scope: {description}")]
    InsufficientScope {
        required: Scope,
        description: &'static str,
    },
    /// 503 `temporarily_unavailable`: the token names a key we do not have and the authorization
    /// server's JWKS cannot be fetched. Not the token's fault, so not `invalid_token`.
    #[error("the authorization server's signing keys are unavailable")]
    KeysUnavailable,
    /// 500 `server_error`.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// Every value of [`Error::reason`].
    pub const REASONS: [&'static str; 6] = [
        "missing_token",
        "invalid_request",
        "invalid_token",
        "insufficient_scope",
        "keys_unavailable",
        "internal",
    ];

    /// The kind of failure as a metric label (`token_validations_refused_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::MissingToken => "missing_token",
            Error::InvalidRequest(_) => "invalid_request",
            Error::InvalidToken(_) => "invalid_token",
            Error::InsufficientScope { .. } => "insufficient_scope",
            Error::KeysUnavailable => "keys_unavailable",
            Error::Internal(_) => "internal",
        }
    }

    /// The OAuth error code of the body (and of the challenge, when there is one).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::MissingToken => ErrorCode::Unauthorized,
            Error::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Error::InvalidToken(_) => ErrorCode::InvalidToken,
            Error::InsufficientScope { .. } => ErrorCode::InsufficientScope,
            Error::KeysUnavailable => ErrorCode::TemporarilyUnavailable,
            Error::Internal(_) => ErrorCode::ServerError,
        }
    }

    pub fn description(&self) -> &'static str {
        match self {
            Error::MissingToken => "an access token is required: Authorization: Bearer <token>",
            Error::InvalidRequest(description)
            | Error::InvalidToken(description)
            | Error::Internal(description)
            | Error::InsufficientScope { description, .. } => description,
            Error::KeysUnavailable => {
                "the authorization server's signing keys cannot be fetched; try again later"
            }
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3), when the error is about the credentials.
    pub fn challenge(&self) -> Option<String> {
        let with_error = |extra: &str| {
            format!(
                "Bearer realm=\"{REALM}\", error=\"{}\"{extra}, error_description=\"{}\"",
                self.code(),
                quoted_string_safe(self.description())
            )
        };
        match self {
            Error::MissingToken => Some(format!("Bearer realm=\"{REALM}\"")),
            Error::InvalidRequest(_) | Error::InvalidToken(_) => Some(with_error("")),
            Error::InsufficientScope { required, .. } => {
                Some(with_error(&format!(", scope=\"{}\"", required.as_str())))
            }
            Error::KeysUnavailable | Error::Internal(_) => None,
        }
    }
}

/// RFC 6750 §3: `error_description` is limited to %x20-21 / %x23-5B / %x5D-7E.
fn quoted_string_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        })
        .collect()
}

impl ApiError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::MissingToken | Error::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Error::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Error::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Error::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code(), self.description())
    }

    fn add_headers(&self, headers: &mut HeaderMap) {
        if let Some(value) = self
            .challenge()
            .and_then(|challenge| HeaderValue::from_str(&challenge).ok())
        {
            headers.insert(WWW_AUTHENTICATE, value);
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        respond(&self)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header::CACHE_CONTROL;

    use super::*;

    #[test]
    fn statuses_and_challenges_follow_rfc_6750() {
        let cases = [
            (Error::MissingToken, 401, Some("Bearer realm=\"resource-server\"")),
            (
                Error::InvalidRequest("bad"),
                400,
                Some("Bearer realm=\"resource-server\", error=\"invalid_request\", error_description=\"bad\""),
            ),
            (
                Error::InvalidToken("expired"),
                401,
                Some("Bearer realm=\"resource-server\", error=\"invalid_token\", error_description=\"expired\""),
            ),
            (
                Error::InsufficientScope {
                    required: Scope::EpochTime,
                    description: "other user",
                },
                403,
                Some("Bearer realm=\"resource-server\", error=\"insufficient_scope\", scope=\"epoch_time\", error_description=\"other user\""),
            ),
            (Error::KeysUnavailable, 503, None),
            (Error::Internal("x"), 500, None),
        ];
        for (error, status, challenge) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.challenge().as_deref(), challenge, "{error:?}");
        }
    }

    #[test]
    fn descriptions_cannot_break_the_header() {
        assert_eq!(quoted_string_safe("a \"b\" \\ é\n"), "a 'b' ' ??");
    }

    #[test]
    fn every_error_answer_is_json_and_not_cacheable() {
        let response = Error::InvalidToken("expired").into_response();
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(
            response.headers()[axum::http::header::CONTENT_TYPE],
            "application/json"
        );
    }
}
