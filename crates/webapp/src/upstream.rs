//! An upstream's refusal read for the user: the RFC 6749 §5.2 error body, or the resource server's
//! `WWW-Authenticate` challenge (RFC 6750 §3), passed on with the step that failed.

use common::http_client::Answer;
use serde::Deserialize;

use crate::error::{Error, Step};

/// An upstream error body: RFC 6749 §5.2 / our `ErrorBody`, with the description optional.
#[derive(Deserialize)]
struct UpstreamErrorBody {
    error: String,
    error_description: Option<String>,
}

/// A 502 for an upstream's non-success answer, passing its error code through when the body (or,
/// for a resource server, `WWW-Authenticate`) names one.
pub fn upstream_refusal(step: Step, answer: &Answer) -> Error {
    let status = answer.status;
    let challenge_error = answer
        .headers
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_challenge_error);
    let fallback = format!("the {} answered {status}", step.upstream());
    match serde_json::from_slice::<UpstreamErrorBody>(&answer.body) {
        Ok(parsed) => Error::upstream(
            step,
            &parsed.error,
            parsed.error_description.as_deref().unwrap_or(&fallback),
        ),
        Err(_) => match challenge_error {
            Some(error) => Error::upstream(step, &error, &fallback),
            None => Error::bad_answer(step, fallback),
        },
    }
}

/// The `error` parameter of the `Bearer` challenge of a `WWW-Authenticate` value (RFC 6750 §3),
/// read by http-auth's RFC 7235 parser: quoted strings (commas and escapes in them), several
/// challenges in one value.
fn bearer_challenge_error(header: &str) -> Option<String> {
    http_auth::parser::ChallengeParser::new(header)
        .map_while(Result::ok)
        .find(|challenge| challenge.scheme.eq_ignore_ascii_case("bearer"))?
        .params
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("error"))
        .map(|(_, value)| value.to_unescaped())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_read() {
        assert_eq!(
            bearer_challenge_error(r#"Bearer error="invalid_token", error_description="x""#),
            Some("invalid_token".to_owned())
        );
        assert_eq!(
            bearer_challenge_error(r#"Bearer realm="r", error="insufficient_scope""#),
            Some("insufficient_scope".to_owned())
        );
        assert_eq!(bearer_challenge_error("Bearer"), None);
        assert_eq!(bearer_challenge_error("Basic error=\"x\""), None);
        assert_eq!(bearer_challenge_error("Bearerx error=\"x\""), None);
    }

    #[test]
    fn quoted_commas_escapes_and_other_challenges_do_not_confuse_it() {
        let error = |header: &str| bearer_challenge_error(header);
        assert_eq!(
            error(r#"Bearer error_description="bad, error=forged", error="invalid_token""#),
            Some("invalid_token".to_owned())
        );
        assert_eq!(
            error(r#"Bearer realm="a \"quoted\" realm", error="insufficient_scope""#),
            Some("insufficient_scope".to_owned())
        );
        assert_eq!(
            error(r#"Basic realm="x, error=no", Bearer error="invalid_token""#),
            Some("invalid_token".to_owned())
        );
        assert_eq!(
            error(r#"bearer ERROR="invalid_request""#),
            Some("invalid_request".to_owned())
        );
    }
}
