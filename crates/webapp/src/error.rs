//! Every way a webapp request can fail, and the one place that turns a failure into an HTTP answer.
//!
//! Nothing in here ever holds an authorization code, an access token, the client secret or a PKCE
//! verifier: the bodies and log lines built from these values are safe to show.

use std::fmt;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::api_error::{respond, ApiError};
use common::http_client::CallError;
use oauth::{ErrorBody, ErrorCode};

use crate::redirect::RedirectError;

/// The step of the flow that failed, reported as `step` in the error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `GET /authorize` on the authorization server and the check of its redirect.
    Authorize,
    /// `POST /token` on the authorization server.
    Token,
    /// The call to the resource server.
    Resource,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Authorize => "authorize",
            Step::Token => "token",
            Step::Resource => "resource",
        }
    }

    /// The upstream service this step talks to, for error descriptions.
    pub fn upstream(self) -> &'static str {
        match self {
            Step::Authorize | Step::Token => "authorization server",
            Step::Resource => "resource server",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's request is malformed: 400 `invalid_request`.
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// A redirect that arrived at `/callback`: always refused with 400 (see `routes::callback`).
    #[error("callback refused: {0}")]
    Callback(RedirectError),

    /// The upstream could not be reached (connection refused, no route, connect timeout): 503.
    #[error("{step} step: the {} is unreachable: {detail}", step.upstream())]
    Unreachable {
        step: Step,
        /// For the log only: the transport error, without URLs.
        detail: String,
    },

    /// The upstream accepted the connection but did not answer in time: 504.
    #[error("{step} step: the {} timed out", step.upstream())]
    TimedOut { step: Step },

    /// The upstream answered with an error or with something we cannot accept: 502, with the
    /// upstream's error code passed through when it is one of ours, else `server_error`.
    #[error("{step} step: {error}: {description}")]
    Upstream {
        step: Step,
        error: ErrorCode,
        description: String,
    },
}

impl Error {
    /// Every value of [`Error::upstream_reason`].
    pub const UPSTREAM_REASONS: [&'static str; 3] = ["unreachable", "timeout", "error_answer"];

    /// How an upstream call failed, as a metric label; `None` for errors that are not about an
    /// upstream call.
    pub fn upstream_reason(&self) -> Option<&'static str> {
        match self {
            Error::Unreachable { .. } => Some("unreachable"),
            Error::TimedOut { .. } => Some("timeout"),
            Error::Upstream { .. } => Some("error_answer"),
            Error::InvalidRequest(_) | Error::Callback(_) => None,
        }
    }

    /// A 502 whose error code and description come from the upstream: a code none of our
    /// services sends reads as `server_error`, the description is cleaned so that it is safe to
    /// echo and to log.
    pub fn upstream(step: Step, error: &str, description: &str) -> Self {
        Error::Upstream {
            step,
            error: error.parse().unwrap_or(ErrorCode::ServerError),
            description: clean(description, 256),
        }
    }

    /// A 502 `server_error`: the upstream answered something we refuse.
    pub fn bad_answer(step: Step, description: impl Into<String>) -> Self {
        Error::Upstream {
            step,
            error: ErrorCode::ServerError,
            description: description.into(),
        }
    }

    /// A transport failure of `step`: 503 when no connection could be made, 504 on a timeout,
    /// 502 for anything else (the connection broke, the answer could not be read).
    pub fn transport(step: Step, err: &CallError) -> Self {
        match err {
            CallError::Connect(detail) => Error::Unreachable {
                step,
                detail: detail.clone(),
            },
            CallError::TimedOut => Error::TimedOut { step },
            CallError::TooLarge(_) | CallError::Failed(_) => {
                tracing::warn!(step = step.as_str(), error = %err, "upstream call failed");
                Error::bad_answer(
                    step,
                    format!("the {} answer could not be read", step.upstream()),
                )
            }
        }
    }
}

impl ApiError for Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::InvalidRequest(_) | Error::Callback(_) => StatusCode::BAD_REQUEST,
            Error::Unreachable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::TimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
            // The upstream is busy (e.g. the authorization server's rate limit): the user may
            // retry, as after a 503 of our own.
            Error::Upstream {
                error: ErrorCode::TemporarilyUnavailable,
                ..
            } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Upstream { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    fn body(&self) -> ErrorBody {
        match self {
            Error::InvalidRequest(description) => {
                ErrorBody::new(ErrorCode::InvalidRequest, description.clone())
            }
            Error::Callback(RedirectError::Refused { error, description }) => ErrorBody::new(
                *error,
                description.as_deref().map_or_else(
                    || "the authorization server refused the request".to_owned(),
                    |d| clean(d, 256),
                ),
            ),
            Error::Callback(err) => ErrorBody::new(ErrorCode::InvalidRequest, err.to_string()),
            Error::Unreachable { step, .. } => with_step(
                ErrorBody::new(
                    ErrorCode::TemporarilyUnavailable,
                    format!("the {} is unreachable", step.upstream()),
                ),
                *step,
            ),
            Error::TimedOut { step } => with_step(
                ErrorBody::new(
                    ErrorCode::TemporarilyUnavailable,
                    format!("the {} did not answer in time", step.upstream()),
                ),
                *step,
            ),
            Error::Upstream {
                step,
                error,
                description,
            } => with_step(ErrorBody::new(*error, description.clone()), *step),
        }
    }
}

fn with_step(mut body: ErrorBody, step: Step) -> ErrorBody {
    body.step = Some(step.as_str().to_owned());
    body
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        respond(&self)
    }
}

/// Keeps at most `max` characters of the printable ASCII an RFC 6749 error description may hold
/// (§5.2), so an upstream value is safe to echo in a body and to put in a log line.
pub(crate) fn clean(raw: &str, max: usize) -> String {
    raw.chars()
        .filter(|c| matches!(c, ' '..='~'))
        .take(max)
        .collect()
}

/// Why the service could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    HttpClient(#[from] common::http_client::BuildError),
    #[error("invalid {what} URL: {reason}")]
    Url { what: &'static str, reason: String },
    #[error("cannot register the metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("the operating system gave no randomness for the login cookies' key")]
    Random,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_bodies() {
        let err = Error::TimedOut {
            step: Step::Resource,
        };
        assert_eq!(err.status(), StatusCode::GATEWAY_TIMEOUT);
        let body = err.body();
        assert_eq!(body.error, ErrorCode::TemporarilyUnavailable);
        assert_eq!(body.step.as_deref(), Some("resource"));

        let err = Error::Unreachable {
            step: Step::Token,
            detail: "refused".to_owned(),
        };
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.body().step.as_deref(), Some("token"));

        let err = Error::upstream(Step::Token, "invalid_grant", "bad\ncode");
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
        let body = err.body();
        assert_eq!(body.error, ErrorCode::InvalidGrant);
        assert_eq!(body.error_description, "badcode");

        let err = Error::upstream(Step::Authorize, "temporarily_unavailable", "busy");
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.body().step.as_deref(), Some("authorize"));

        for unknown in ["", "slow_down", "invalid_grant\n"] {
            let err = Error::upstream(Step::Resource, unknown, "");
            assert_eq!(err.body().error, ErrorCode::ServerError, "{unknown:?}");
        }

        let err = Error::InvalidRequest("bad user".to_owned());
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.body().step, None);
    }

    #[test]
    fn a_refusal_at_the_callback_keeps_the_servers_error() {
        let err = Error::Callback(RedirectError::Refused {
            error: ErrorCode::AccessDenied,
            description: None,
        });
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.body().error, ErrorCode::AccessDenied);
        let err = Error::Callback(RedirectError::UnknownState);
        assert_eq!(err.body().error, ErrorCode::InvalidRequest);
        assert_eq!(err.body().error_description, "unknown or expired state");
    }
}
