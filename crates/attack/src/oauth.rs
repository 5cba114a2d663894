//! The embedded default's registered client and user, and the requests of its flow as the
//! tool sends them: the authorization request (PKCE S256, resource indicator) as a URL, its
//! redirect, the token request (`client_secret_post`) as a form body for raw connections too, and
//! a real token through test-client's flow.

use test_client::{ClientIdentity, Redirect, TestClient};
use url::form_urlencoded::Serializer;

use crate::error::{Context, Error};

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

/// An access token obtained the way the webapp obtains one: a code, then the token request.
pub async fn real_token(
    client: &reqwest::Client,
    authorization_server: &str,
) -> Result<String, Error> {
    TestClient::new(
        client.clone(),
        authorization_server,
        ClientIdentity::default(),
    )
    .code_and_token(SCOPE, USER)
    .await
    .context("the flow")
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_client::CLIENT_ID;

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
