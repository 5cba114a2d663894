//! The measured operations, each one HTTP exchange (or one fixed sequence) checked for the
//! expected answer.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use test_client::{describe, TestClient};

use crate::load::Op;

/// The scope of the flows run by the bench.
const SCOPE: &str = "epoch_time";

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
/// PKCE verifier (`GET /authorize`, then `POST /token`) for `user`: one authorize + token pair.
pub fn pair(client: TestClient, user: &str) -> Op {
    let (client, user): (Arc<TestClient>, Arc<str>) = (Arc::new(client), user.into());
    Arc::new(move || {
        let (client, user) = (client.clone(), user.clone());
        Box::pin(async move {
            client
                .code_and_token(SCOPE, &user)
                .await
                .map(drop)
                .map_err(|err| err.to_string())
        })
    })
}

/// A current access token, replaced by a background task well before it expires (tokens live 5 s).
pub struct FreshToken {
    token: Arc<RwLock<Arc<str>>>,
    refresher: tokio::task::JoinHandle<()>,
}

impl FreshToken {
    /// Tokens for `user`, a new one `every` so often.
    pub async fn start(client: TestClient, user: &str, every: Duration) -> Result<Self, String> {
        let first = client
            .code_and_token(SCOPE, user)
            .await
            .map_err(|err| err.to_string())?;
        let token = Arc::new(RwLock::new(Arc::<str>::from(first)));
        let (shared, user) = (token.clone(), user.to_owned());
        let refresher = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // On failure the old token stays; the calls that then fail are counted as errors.
                if let Ok(fresh) = client.code_and_token(SCOPE, &user).await {
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
