//! The request id: taken from the caller's `X-Request-Id` when well-formed, made otherwise, carried
//! by the request's tracing span (see [`crate::observability::track`]), forwarded upstream by the
//! webapp and echoed in every response.

use http::{HeaderName, HeaderValue};
use oauth::{ClientId, UserName};

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

    /// The id as an `X-Request-Id` value, for responses and upstream calls (always `Some` for an
    /// id made by [`Self::parse`] or [`Self::generate`]: their charset is a header's).
    pub fn header_value(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.0).ok()
    }

    pub(crate) fn from_headers(headers: &http::HeaderMap) -> Self {
        headers
            .get(&HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(Self::parse)
            .unwrap_or_else(Self::generate)
    }
}

/// Records a value known only once the request has been parsed (the user, the client) on the
/// request's span, so that every later log line of the request carries it, and as a tag of the
/// request's Sentry scope. Only validated values can be passed (a user name, a registered or
/// signed client id): they end up in log lines and headers of error reports.
pub fn record_user(user: &UserName) {
    let user = user.as_str();
    tracing::Span::current().record("user_id", user);
    sentry::Hub::with_active(|hub| hub.configure_scope(|scope| scope.set_tag("user_id", user)));
}

pub fn record_client(client_id: &ClientId) {
    let client_id = client_id.as_str();
    tracing::Span::current().record("client_id", client_id);
    sentry::Hub::with_active(|hub| {
        hub.configure_scope(|scope| scope.set_tag("client_id", client_id))
    });
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

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// The documented rule, written without the parser's code.
        fn is_request_id(raw: &str) -> bool {
            (1..=128).contains(&raw.len())
                && raw.bytes().all(|b| {
                    b.is_ascii_uppercase()
                        || b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"._:-".contains(&b)
                })
        }

        proptest! {
            #[test]
            fn accepts_exactly_the_reference(raw in "\\PC{0,140}") {
                prop_assert_eq!(RequestId::parse(&raw).is_some(), is_request_id(&raw));
            }

            #[test]
            fn accepts_exactly_the_reference_near_the_edges(
                raw in "[A-Za-z0-9._:-]{0,140}|[A-Za-z0-9._: =\"\r\né-]{0,130}"
            ) {
                let parsed = RequestId::parse(&raw);
                prop_assert_eq!(parsed.is_some(), is_request_id(&raw));
                if let Some(id) = parsed {
                    prop_assert_eq!(id.as_str(), raw.as_str());
                    // safe in a header value
                    prop_assert!(HeaderValue::from_str(id.as_str()).is_ok());
                }
            }
        }
    }
}
