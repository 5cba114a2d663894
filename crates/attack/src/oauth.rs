//! The embedded default's registered client and user, and the requests of its flow: the
//! authorization request (PKCE S256, resource indicator), its redirect, the token request.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use url::form_urlencoded::Serializer;
use url::Url;

use crate::error::{Context, Error};
use crate::http::{describe, Answer};

pub const CLIENT_ID: &str = "1234";
pub const CLIENT_SECRET: &str = "qwerty";
pub const REDIRECT_URI: &str = "http://localhost:8080/callback";
pub const USER: &str = "alice";
const SCOPE: &str = "epoch_time";
const RESOURCE: &str = "http://localhost:8082/epoch_time";

/// A PKCE verifier and its S256 challenge (RFC 7636).
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// A valid authorization request for the user's epoch_time.
pub fn authorize_url(authorization_server: &str, challenge: &str, state: &str) -> String {
    let query = Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", SCOPE)
        .append_pair("resource", RESOURCE)
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("login_hint", USER)
        .finish();
    format!("{authorization_server}/authorize?{query}")
}

/// Where an authorization request sent the user agent back to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Redirect {
    Code(String),
    Error(String),
}

/// The 302 to the registered redirect URI with `state` echoed, and a code or an error; anything
/// else is described in the error.
pub fn redirect(response: &reqwest::Response, state: &str) -> Result<Redirect, String> {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok());
    match (status, location) {
        (302, Some(location)) => parse_redirect(location, state),
        _ => Err(format!("{status} without a redirect")),
    }
}

fn parse_redirect(location: &str, state: &str) -> Result<Redirect, String> {
    let url = Url::parse(location).map_err(|_| format!("redirect to a bad URL {location}"))?;
    if url[..url::Position::AfterPath] != *REDIRECT_URI {
        return Err(format!("redirect elsewhere: {location}"));
    }
    let parameter = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    if parameter("state").as_deref() != Some(state) {
        return Err(format!("redirect without the state: {location}"));
    }
    match (parameter("code"), parameter("error")) {
        (Some(code), None) => Ok(Redirect::Code(code)),
        (None, Some(error)) => Ok(Redirect::Error(error)),
        _ => Err(format!(
            "redirect with neither a code nor an error: {location}"
        )),
    }
}

/// A token request (`client_secret_post`) for `code` with `client_id` and `secret`.
pub fn token_form(code: &str, verifier: &str, client_id: &str, secret: &str) -> String {
    Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("code_verifier", verifier)
        .append_pair("client_id", client_id)
        .append_pair("client_secret", secret)
        .finish()
}

pub async fn post_token(
    client: &reqwest::Client,
    authorization_server: &str,
    form: String,
) -> Result<reqwest::Response, reqwest::Error> {
    client
        .post(format!("{authorization_server}/token"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form)
        .send()
        .await
}

/// An access token obtained the way the webapp obtains one: a code, then the token request.
pub async fn real_token(
    client: &reqwest::Client,
    authorization_server: &str,
) -> Result<String, Error> {
    let pkce = Pkce::new();
    let state = "attack-real-token";
    let response = client
        .get(authorize_url(authorization_server, &pkce.challenge, state))
        .send()
        .await
        .map_err(|err| describe(&err))
        .context("the authorization request")?;
    let code = match redirect(&response, state).context("the authorization request")? {
        Redirect::Code(code) => code,
        Redirect::Error(error) => return Err(format!("the authorization request: {error}").into()),
    };
    let form = token_form(&code, &pkce.verifier, CLIENT_ID, CLIENT_SECRET);
    let response = post_token(client, authorization_server, form)
        .await
        .map_err(|err| describe(&err))
        .context("the token request")?;
    if response.status() != reqwest::StatusCode::OK {
        let answer = Answer::read(response).await.context("the token request")?;
        return Err(format!("the token request was answered {answer}").into());
    }
    let body: serde_json::Value = response.json().await.context("the token response")?;
    body.get("access_token")
        .and_then(|token| token.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("the token response has no access_token: {body}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_is_a_code_or_an_error_for_our_state_only() {
        let base = "http://localhost:8080/callback";
        assert_eq!(
            parse_redirect(&format!("{base}?code=c0de&state=s&iss=x"), "s"),
            Ok(Redirect::Code("c0de".into()))
        );
        assert_eq!(
            parse_redirect(
                &format!("{base}?error=temporarily_unavailable&state=s&iss=x"),
                "s"
            ),
            Ok(Redirect::Error("temporarily_unavailable".into()))
        );
        for bad in [
            format!("{base}?code=c0de&state=other"),
            format!("{base}?code=c0de"),
            format!("{base}?state=s"),
            format!("{base}?code=c&error=e&state=s"),
            "http://evil.example/callback?code=c&state=s".to_owned(),
        ] {
            assert!(parse_redirect(&bad, "s").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_challenge_is_the_verifiers_s256() {
        let pkce = Pkce::new();
        assert_eq!(pkce.verifier.len(), 43);
        assert_eq!(
            pkce.challenge,
            URL_SAFE_NO_PAD.encode(Sha256::digest(pkce.verifier.as_bytes()))
        );
    }
}
