//! The request id: taken from the caller's `X-Request-Id` when well-formed, made otherwise, carried
//! by the request's tracing span, forwarded upstream by the webapp and echoed in every response.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderName, HeaderValue};
use tracing::Instrument;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

const MAX_LEN: usize = 128;

/// A request id safe to put in a log line or a header: 1–128 characters of `A-Z a-z 0-9 . _ : -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    pub fn parse(raw: &str) -> Option<Self> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
        (!raw.is_empty() && raw.len() <= MAX_LEN && raw.chars().all(allowed))
            .then(|| Self(raw.to_owned()))
    }

    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_headers(headers: &http::HeaderMap) -> Self {
        headers
            .get(&HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(Self::parse)
            .unwrap_or_else(Self::generate)
    }
}

/// Middleware: binds a request id to the request (as an extension and as the span every log line
/// of the request is written in), logs one line per request and echoes the id in the response.
/// Use with `axum::middleware::from_fn_with_state(SERVICE_NAME, track)`.
pub async fn track(
    State(service): State<&'static str>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = RequestId::from_headers(request.headers());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "request",
        service,
        request_id = request_id.as_str(),
        user_id = tracing::field::Empty,
        client_id = tracing::field::Empty,
    );
    request.extensions_mut().insert(request_id.clone());

    let mut response = next.run(request).instrument(span.clone()).await;

    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            %method,
            route,
            status,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request handled"
        );
    });
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// Records a value known only once the request has been parsed (the user, the client) on the
/// request's span, so that every later log line of the request carries it.
pub fn record_user(user: &str) {
    tracing::Span::current().record("user_id", user);
}

pub fn record_client(client_id: &str) {
    tracing::Span::current().record("client_id", client_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_simple_tokens() {
        for good in ["3f2b0c1e-9a1d-4c5e-8f00-1234567890ab", "abc", "trace:1.2_3"] {
            assert!(RequestId::parse(good).is_some(), "{good}");
        }
    }

    #[test]
    fn refuses_what_could_inject_into_logs_or_headers() {
        let too_long = "a".repeat(MAX_LEN + 1);
        for bad in ["", "a b", "a\nb", "a\"b", "a=b", "é", &too_long] {
            assert!(RequestId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_malformed_header_is_replaced_by_a_fresh_id() {
        let mut headers = http::HeaderMap::new();
        headers.insert(&HEADER, HeaderValue::from_static("bad id"));
        let id = RequestId::from_headers(&headers);
        assert_ne!(id.as_str(), "bad id");
        assert!(uuid::Uuid::parse_str(id.as_str()).is_ok());
    }
}
