//! Authorize + token by hand, as a client other than our webapp would: for tests, the bench and
//! the attack tool.
//!
//! The builders ([`authorize_params`], [`token_form`]) return the raw parameter lists, so that a
//! caller can break them on purpose or send them over a socket of its own; [`TestClient`] runs
//! them over HTTP: `GET /authorize` (state, PKCE S256, `login_hint`), the code from the 302's
//! `Location`, `POST /token` with `client_secret_basic` and the verifier.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use reqwest::{Response, StatusCode};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The registered client of the defaults (docs/configuration.md).
pub const CLIENT_ID: &str = "1234";
pub const CLIENT_SECRET: &str = "qwerty";
pub const REDIRECT_URI: &str = "http://localhost:8080/callback";

/// A registered client, as it presents itself; [`Default`] is the client of the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub id: String,
    pub secret: String,
    pub redirect_uri: String,
}

impl Default for ClientIdentity {
    fn default() -> Self {
        Self {
            id: CLIENT_ID.to_owned(),
            secret: CLIENT_SECRET.to_owned(),
            redirect_uri: REDIRECT_URI.to_owned(),
        }
    }
}

impl ClientIdentity {
    /// The client's credentials as form fields (`client_secret_post`), to add to a token form.
    pub fn form_credentials(&self) -> [(&'static str, String); 2] {
        [
            ("client_id", self.id.clone()),
            ("client_secret", self.secret.clone()),
        ]
    }
}

/// A PKCE verifier and its S256 challenge (RFC 7636).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    /// A fresh verifier of 256 random bits (43 characters).
    pub fn random() -> Self {
        Self::from_verifier(random_token::<32>())
    }

    /// The pair of a fixed verifier, for a code redeemed later from the code alone.
    pub fn from_verifier(verifier: impl Into<String>) -> Self {
        let verifier = verifier.into();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// `N` random bytes, base64url.
fn random_token<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The query of a valid authorization request: `scope` for the user `login_hint`, bound to
/// `state` and the PKCE `challenge`.
pub fn authorize_params(
    client: &ClientIdentity,
    scope: &str,
    login_hint: &str,
    state: &str,
    challenge: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".to_owned()),
        ("client_id", client.id.clone()),
        ("redirect_uri", client.redirect_uri.clone()),
        ("scope", scope.to_owned()),
        ("state", state.to_owned()),
        ("code_challenge", challenge.to_owned()),
        ("code_challenge_method", "S256".to_owned()),
        ("login_hint", login_hint.to_owned()),
    ]
}

/// The form of a token request for `code` with its PKCE `verifier`; the client authenticates
/// beside it (Basic, or [`ClientIdentity::form_credentials`]).
pub fn token_form(
    client: &ClientIdentity,
    code: &str,
    verifier: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", client.redirect_uri.clone()),
        ("code_verifier", verifier.to_owned()),
    ]
}

/// What went wrong in a step of the flow (`authorize` or `token`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer: the request could not be made, or timed out.
    #[error("{step}: {}", describe(.error))]
    Transport {
        step: &'static str,
        error: reqwest::Error,
    },
    /// An answer with another status than the flow's; the body's start.
    #[error("{step}: status {status}: {body}")]
    Status {
        step: &'static str,
        status: u16,
        body: String,
    },
    /// The authorization server sent the user agent back with this OAuth error, not a code.
    #[error("authorize: redirected with error={0}")]
    Refused(String),
    /// An answer the protocol does not allow: a redirect elsewhere, without our state, a token
    /// response without a token.
    #[error("{step}: {why}")]
    Invalid { step: &'static str, why: String },
}

/// A transport error, short for the usual ones, else with its causes (reqwest's own text hides
/// them).
pub fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    if error.is_connect() {
        return "cannot connect".to_owned();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Where an authorization request sent the user agent back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    Code(String),
    Error(String),
}

/// The authorization response: a 302 to `client`'s redirect URI with `state` echoed, and a code
/// or an error; anything else is an [`Error::Invalid`].
pub fn redirect(
    response: &Response,
    client: &ClientIdentity,
    state: &str,
) -> Result<Redirect, Error> {
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok());
    match location {
        Some(location) if status == StatusCode::FOUND => parse_redirect(location, client, state),
        _ => Err(invalid("authorize", format!("{status} without a redirect"))),
    }
}

fn parse_redirect(location: &str, client: &ClientIdentity, state: &str) -> Result<Redirect, Error> {
    let bad = |why: &str| invalid("authorize", format!("{why}: {location}"));
    let url = url::Url::parse(location).map_err(|_| bad("a redirect to a bad URL"))?;
    if url[..url::Position::AfterPath] != *client.redirect_uri {
        return Err(bad("a redirect elsewhere"));
    }
    let parameter = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    if parameter("state").as_deref() != Some(state) {
        return Err(bad("a redirect without the state"));
    }
    match (parameter("code"), parameter("error")) {
        (Some(code), None) => Ok(Redirect::Code(code)),
        (None, Some(error)) => Ok(Redirect::Error(error)),
        _ => Err(bad("a redirect with neither a code nor an error")),
    }
}

fn invalid(step: &'static str, why: impl Into<String>) -> Error {
    Error::Invalid {
        step,
        why: why.into(),
    }
}

/// `response` when its status is `expected`, else an [`Error::Status`] with the body's start.
async fn expect(
    response: Response,
    expected: StatusCode,
    step: &'static str,
) -> Result<Response, Error> {
    if response.status() == expected {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Err(Error::Status {
        step,
        status,
        body: body.chars().take(160).collect(),
    })
}

/// A client of one authorization server, over a `reqwest::Client` that must not follow
/// redirects (the code is in the 302's `Location`).
#[derive(Debug, Clone)]
pub struct TestClient {
    http: reqwest::Client,
    authorization_server: String,
    client: ClientIdentity,
}

impl TestClient {
    /// Over `http` (its pool, roots, timeouts), which must not follow redirects.
    pub fn new(http: reqwest::Client, authorization_server: &str, client: ClientIdentity) -> Self {
        Self {
            http,
            authorization_server: authorization_server.trim_end_matches('/').to_owned(),
            client,
        }
    }

    pub fn identity(&self) -> &ClientIdentity {
        &self.client
    }

    /// `GET /authorize` with `params` as they are; the answer whatever it is.
    pub async fn authorize(&self, params: &[(&str, String)]) -> Result<Response, Error> {
        self.http
            .get(format!("{}/authorize", self.authorization_server))
            .query(params)
            .send()
            .await
            .map_err(|error| Error::Transport {
                step: "authorize",
                error,
            })
    }

    /// A valid authorization request; the code of its redirect.
    pub async fn code(
        &self,
        scope: &str,
        user: &str,
        state: &str,
        pkce: &Pkce,
    ) -> Result<String, Error> {
        let params = authorize_params(&self.client, scope, user, state, &pkce.challenge);
        let response = expect(
            self.authorize(&params).await?,
            StatusCode::FOUND,
            "authorize",
        )
        .await?;
        match redirect(&response, &self.client, state)? {
            Redirect::Code(code) => Ok(code),
            Redirect::Error(error) => Err(Error::Refused(error)),
        }
    }

    /// `POST /token` of `form`, the client authenticated with Basic (`client_secret_basic`).
    pub async fn token<F: Serialize + ?Sized>(&self, form: &F) -> Result<Response, Error> {
        self.token_as(&self.client, form).await
    }

    /// [`TestClient::token`] with another client's credentials (a wrong secret, say).
    pub async fn token_as<F: Serialize + ?Sized>(
        &self,
        client: &ClientIdentity,
        form: &F,
    ) -> Result<Response, Error> {
        self.http
            .post(format!("{}/token", self.authorization_server))
            .basic_auth(&client.id, Some(&client.secret))
            .form(form)
            .send()
            .await
            .map_err(|error| Error::Transport {
                step: "token",
                error,
            })
    }

    /// The whole flow with a fresh state and PKCE pair: a code for `scope` and `user`, then the
    /// token request (200). The access token.
    pub async fn code_and_token(&self, scope: &str, user: &str) -> Result<String, Error> {
        let pkce = Pkce::random();
        let code = self.code(scope, user, &random_token::<16>(), &pkce).await?;
        let form = token_form(&self.client, &code, &pkce.verifier);
        let response = expect(self.token(&form).await?, StatusCode::OK, "token").await?;
        let body: serde_json::Value = response.json().await.map_err(|error| Error::Transport {
            step: "token",
            error,
        })?;
        body.get("access_token")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| invalid("token", "no access_token in the answer"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_challenge_is_the_verifiers_s256() {
        // RFC 7636, appendix B
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            pkce.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let fresh = Pkce::random();
        assert_eq!(fresh.verifier.len(), 43);
        assert_ne!(fresh, Pkce::random());
        assert_eq!(fresh, Pkce::from_verifier(fresh.verifier.clone()));
    }

    #[test]
    fn a_redirect_is_a_code_or_an_error_for_our_state_only() {
        let client = ClientIdentity::default();
        let base = REDIRECT_URI;
        let parse = |location: &str| parse_redirect(location, &client, "s");
        assert_eq!(
            parse(&format!("{base}?code=c0de&state=s&iss=x")).unwrap(),
            Redirect::Code("c0de".into())
        );
        assert_eq!(
            parse(&format!("{base}?error=temporarily_unavailable&state=s")).unwrap(),
            Redirect::Error("temporarily_unavailable".into())
        );
        for bad in [
            format!("{base}?code=c0de&state=other"),
            format!("{base}?code=c0de"),
            format!("{base}?state=s"),
            format!("{base}?code=c&error=e&state=s"),
            "http://evil.example/callback?code=c&state=s".to_owned(),
            "not a URL".to_owned(),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}
