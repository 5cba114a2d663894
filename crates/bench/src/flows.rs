//! The measured operations, each one HTTP exchange (or one fixed sequence) checked for the
//! expected answer.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::load::Op;

/// The registered client the benchmark presents itself as (the defaults of docs/configuration.md).
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub id: String,
    pub secret: String,
    pub redirect_uri: String,
    pub user: String,
}

async fn expect_status(
    response: Result<reqwest::Response, reqwest::Error>,
    expected: u16,
    what: &str,
) -> Result<reqwest::Response, String> {
    let response = response.map_err(|err| format!("{what}: {}", describe(&err)))?;
    if response.status().as_u16() == expected {
        Ok(response)
    } else {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(160).collect();
        Err(format!("{what}: status {status}: {body}"))
    }
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "cannot connect".to_owned()
    } else {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// `GET <base>/healthz`: the trivial route behind the full server stack (hyper, axum, the
/// observability middleware) — the ceiling.
pub fn ceiling(http: reqwest::Client, base: &str) -> Op {
    let url: Arc<str> = format!("{base}/healthz").into();
    Arc::new(move || {
        let (http, url) = (http.clone(), url.clone());
        Box::pin(async move {
            let response = expect_status(http.get(&*url).send().await, 200, "healthz").await?;
            response
                .bytes()
                .await
                .map_err(|err| format!("healthz body: {}", describe(&err)))?;
            Ok(())
        })
    })
}

/// `GET <webapp>/epoch_time?user=…`: one full user call (authorize, token, resource).
pub fn full_call(http: reqwest::Client, webapp: &str, user: &str) -> Op {
    let url: Arc<str> = format!("{webapp}/epoch_time?user={user}").into();
    Arc::new(move || {
        let (http, url) = (http.clone(), url.clone());
        Box::pin(async move {
            let response = expect_status(http.get(&*url).send().await, 200, "webapp").await?;
            let body = response
                .bytes()
                .await
                .map_err(|err| format!("webapp body: {}", describe(&err)))?;
            if body.windows(12).any(|w| w == b"\"epoch_time\"") {
                Ok(())
            } else {
                Err("webapp: 200 without epoch_time".to_owned())
            }
        })
    })
}

/// One authorization code flow against the authorization server alone, with a fresh state and
/// PKCE verifier: `GET /authorize` (302 with a code), then `POST /token`. The access token.
pub async fn code_and_token(
    http: &reqwest::Client,
    authorization_server: &str,
    client: &OAuthClient,
) -> Result<String, String> {
    let mut random = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut random);
    let (state, verifier) = random.split_at(16);
    let state = URL_SAFE_NO_PAD.encode(state);
    let verifier = URL_SAFE_NO_PAD.encode(verifier);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let authorize = http
        .get(format!("{authorization_server}/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("scope", "epoch_time"),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("login_hint", client.user.as_str()),
        ])
        .send()
        .await;
    let response = expect_status(authorize, 302, "authorize").await?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or("authorize: 302 without a Location")?;
    let location =
        url::Url::parse(location).map_err(|err| format!("authorize: bad Location: {err}"))?;
    let code = location
        .query_pairs()
        .find(|(key, _)| key == "code")
        .map(|(_, value)| value.into_owned())
        .ok_or("authorize: the redirect has no code")?;
    let token = http
        .post(format!("{authorization_server}/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await;
    let response = expect_status(token, 200, "token").await?;
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|err| format!("token body: {}", describe(&err)))?;
    body.get("access_token")
        .and_then(|token| token.as_str())
        .map(str::to_owned)
        .ok_or_else(|| "token: no access_token in the answer".to_owned())
}

/// [`code_and_token`] as a measured operation: one authorize + token pair.
pub fn pair(http: reqwest::Client, authorization_server: &str, client: &OAuthClient) -> Op {
    let base: Arc<str> = authorization_server.into();
    let client = Arc::new(client.clone());
    Arc::new(move || {
        let (http, base, client) = (http.clone(), base.clone(), client.clone());
        Box::pin(async move { code_and_token(&http, &base, &client).await.map(drop) })
    })
}

/// A current access token, replaced by a background task well before it expires (tokens live 5 s).
pub struct FreshToken {
    token: Arc<RwLock<Arc<str>>>,
    refresher: tokio::task::JoinHandle<()>,
}

impl FreshToken {
    pub async fn start(
        http: reqwest::Client,
        authorization_server: &str,
        client: &OAuthClient,
        every: Duration,
    ) -> Result<Self, String> {
        let first = code_and_token(&http, authorization_server, client).await?;
        let token = Arc::new(RwLock::new(Arc::<str>::from(first)));
        let (shared, base, client) = (
            token.clone(),
            authorization_server.to_owned(),
            client.clone(),
        );
        let refresher = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // On failure the old token stays; the calls that then fail are counted as errors.
                if let Ok(fresh) = code_and_token(&http, &base, &client).await {
                    *shared
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh.into();
                }
            }
        });
        Ok(Self { token, refresher })
    }

    fn current(token: &RwLock<Arc<str>>) -> Arc<str> {
        token
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// `GET <resource server>/epoch_time?user=…` with the current token: one validated call.
    pub fn resource_call(&self, http: reqwest::Client, resource_server: &str, user: &str) -> Op {
        let url: Arc<str> = format!("{resource_server}/epoch_time?user={user}").into();
        let token = self.token.clone();
        Arc::new(move || {
            let (http, url) = (http.clone(), url.clone());
            let bearer = Self::current(&token);
            Box::pin(async move {
                let response = expect_status(
                    http.get(&*url).bearer_auth(&bearer).send().await,
                    200,
                    "resource",
                )
                .await?;
                response
                    .bytes()
                    .await
                    .map_err(|err| format!("resource body: {}", describe(&err)))?;
                Ok(())
            })
        })
    }
}

impl Drop for FreshToken {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}
