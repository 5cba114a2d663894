//! Sentry, enabled only when `SENTRY_DSN` is set.
//!
//! What reaches Sentry: every 5xx answer and every panic, as an event tagged with `service`,
//! `request_id`, `user_id` and `client_id` (set on the request's own Sentry scope by
//! [`crate::observability`] and [`crate::request_id`]), with the request's log lines as
//! breadcrumbs. What never does: a request's headers (`Authorization` carries the client secret or
//! the access token), its query string (a redirect carries the code), its body (the token request
//! carries the code and the PKCE verifier), cookies. `send_default_pii` stays off and
//! [`scrub`] strips those from every event before it is sent.
//!
//! The transport is reqwest with rustls and the webpki roots compiled in: it needs no CA files,
//! so a `FROM scratch` image reports over HTTPS and an unreachable Sentry never stops a service.

use std::str::FromStr;
use std::sync::Arc;

use sentry::protocol::Event;
use sentry::types::Dsn;

use crate::config::{ConfigError, Env};

/// The settings read from the environment.
#[derive(Debug, Clone)]
pub struct SentrySettings {
    pub dsn: Dsn,
    pub environment: Option<String>,
}

impl SentrySettings {
    /// `None` when `SENTRY_DSN` is unset (error reporting off); a malformed DSN is a configuration
    /// error.
    pub fn from_env(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(raw) = env.get("SENTRY_DSN") else {
            return Ok(None);
        };
        let dsn = Dsn::from_str(raw.trim())
            .map_err(|err| ConfigError::new("SENTRY_DSN", "[redacted]", err))?;
        Ok(Some(Self {
            dsn,
            environment: env.get("SENTRY_ENVIRONMENT"),
        }))
    }
}

/// Starts the process's one Sentry client (the all-in-one binary shares it between its three
/// services: each request's scope says which service it is). Installs the panic hook.
pub fn init(settings: SentrySettings, release: &str) -> sentry::ClientInitGuard {
    sentry::init(sentry::ClientOptions {
        dsn: Some(settings.dsn),
        release: Some(release.to_owned().into()),
        environment: settings.environment.map(Into::into),
        send_default_pii: false,
        before_send: Some(Arc::new(scrub)),
        ..Default::default()
    })
}

/// Keeps of the request only its method and its path: no headers, no query string, no body, no
/// cookies, no environment.
pub fn scrub(mut event: Event<'static>) -> Option<Event<'static>> {
    if let Some(request) = event.request.as_mut() {
        request.headers.clear();
        request.query_string = None;
        request.data = None;
        request.cookies = None;
        request.env.clear();
        if let Some(url) = request.url.as_mut() {
            url.set_query(None);
            url.set_fragment(None);
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
    }
    event.user = None;
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_unless_a_dsn_is_set_and_a_bad_dsn_is_refused() {
        assert!(SentrySettings::from_env(&Env::from_pairs([]))
            .unwrap()
            .is_none());
        let settings = SentrySettings::from_env(&Env::from_pairs([
            ("SENTRY_DSN", "https://public@sentry.example/1".to_owned()),
            ("SENTRY_ENVIRONMENT", "staging".to_owned()),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(settings.environment.as_deref(), Some("staging"));
        let err =
            SentrySettings::from_env(&Env::from_pairs([("SENTRY_DSN", "not a dsn".to_owned())]))
                .unwrap_err();
        assert_eq!(err.var, "SENTRY_DSN");
    }

    #[test]
    fn scrubbing_keeps_only_method_and_path() {
        let mut headers = std::collections::BTreeMap::new();
        headers.insert(
            "authorization".to_owned(),
            "Basic MTIzNDpxd2VydHk=".to_owned(),
        );
        let event = Event {
            request: Some(sentry::protocol::Request {
                url: "http://localhost:8080/callback?code=secret-code"
                    .parse()
                    .ok(),
                method: Some("GET".to_owned()),
                data: Some("code_verifier=v".to_owned()),
                query_string: Some("code=secret-code".to_owned()),
                headers,
                ..Default::default()
            }),
            ..Default::default()
        };
        let event = scrub(event).unwrap();
        let text = serde_json::to_string(&event).unwrap();
        assert!(!text.contains("secret-code"), "{text}");
        assert!(!text.contains("MTIzNDpxd2VydHk"), "{text}");
        assert!(!text.contains("code_verifier"), "{text}");
        assert!(text.contains("/callback"), "{text}");
    }
}
