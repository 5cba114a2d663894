//! The embedded default's registered client and user, and the requests of its flow as the
//! tool sends them: the authorization request (PKCE S256, resource indicator) as a URL, its
//! redirect, the token request (`client_secret_post`) as a form body for raw connections too.

use test_client::{ClientIdentity, Pkce, Redirect, CLIENT_ID, CLIENT_SECRET};
use url::form_urlencoded::Serializer;

use crate::error::{Context, Error};
use crate::http::Answer;
use test_client::describe;

pub const USER: &str = "alice";
const SCOPE: &str = "epoch_time";
const RESOURCE: &str = "http://localhost:8082/epoch_time";

/// A valid authorization request for the user's epoch_time.
pub fn authorize_url(authorization_server: &str, challenge: &str, state: &str) -> String {
    let client = ClientIdentity::default();
    let mut params = test_client::authorize_params(&client, SCOPE, USER, state, challenge);
    params.push(("resource", RESOURCE.to_owned()));
    let query = Serializer::new(String::new()).extend_pairs(params).finish();
    format!("{authorization_server}/authorize?{query}")
}

/// The redirect of an authorization request of [`authorize_url`]; anything else is described.
pub fn redirect(response: &reqwest::Response, state: &str) -> Result<Redirect, String> {
    test_client::redirect(response, &ClientIdentity::default(), state)
        .map_err(|err| err.to_string())
}

/// A token request (`client_secret_post`) for `code` with `client_id` and `secret`.
pub fn token_form(code: &str, verifier: &str, client_id: &str, secret: &str) -> String {
    let client = ClientIdentity {
        id: client_id.to_owned(),
        secret: secret.to_owned(),
        ..ClientIdentity::default()
    };
    let form = test_client::token_form(&client, code, verifier);
    Serializer::new(String::new())
        .extend_pairs(form.into_iter().chain(client.form_credentials()))
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
    let pkce = Pkce::random();
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
    fn the_requests_carry_the_resource_and_the_clients_credentials() {
        let url = url::Url::parse(&authorize_url("http://as", "ch", "st")).unwrap();
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        for pair in [
            ("client_id", CLIENT_ID),
            ("code_challenge", "ch"),
            ("state", "st"),
            ("resource", RESOURCE),
            ("login_hint", USER),
        ] {
            assert!(query.contains(&(pair.0.into(), pair.1.into())), "{pair:?}");
        }
        assert_eq!(
            token_form("c", "v", "id", "s"),
            "grant_type=authorization_code&code=c&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fcallback\
             &code_verifier=v&client_id=id&client_secret=s"
        );
    }
}
