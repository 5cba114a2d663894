use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authorization_server::{router, AppState, Config};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::clock::ManualClock;
use common::config::Env;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

pub const REDIRECT: &str = "http://localhost:8080/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub struct TestServer {
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
}

/// Starts an authorization server with `vars` over the defaults. When the test process has
/// `REDIS_URL`, codes go to that Redis (CI runs the suite both ways: conformance must not change);
/// a test passing `("REDIS_URL", "")` keeps the memory store.
pub async fn spawn(vars: &[(&'static str, &str)]) -> TestServer {
    let mut pairs: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    if let (Ok(url), false) = (
        std::env::var("REDIS_URL"),
        vars.iter().any(|(k, _)| *k == "REDIS_URL"),
    ) {
        pairs.push(("REDIS_URL", url));
    }
    let env = Env::from_pairs(pairs);
    let config = Config::from_env(&env).unwrap();
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let router = router(AppState::build(config, clock.clone()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(common::server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestServer { base, clock, http }
}

pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn authorize_params(scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", "1234".into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", scope.into()),
        ("state", "st4te".into()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
        ("login_hint", "alice".into()),
    ]
}

impl TestServer {
    pub async fn authorize(&self, params: &[(&str, String)]) -> reqwest::Response {
        self.http
            .get(format!("{}/authorize", self.base))
            .query(params)
            .send()
            .await
            .unwrap()
    }

    /// Runs a valid authorization request and returns the code from the redirect.
    pub async fn code(&self, scope: &str) -> String {
        let response = self.authorize(&authorize_params(scope)).await;
        assert_eq!(response.status(), 302);
        let (_, query) = location(&response);
        query
            .into_iter()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v)
            .unwrap()
    }

    pub async fn token_basic(
        &self,
        form: &[(&str, &str)],
        id: &str,
        secret: &str,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/token", self.base))
            .basic_auth(id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A plain `GET` of `path` (`/…`).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// The value of one series (`name{labels}`) of the server's `/metrics`.
    pub async fn metric(&self, series: &str) -> u64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        let prefix = format!("{series} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {series} in /metrics"))
            .parse()
            .unwrap()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

pub fn redeem_form(code: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.into()),
        ("redirect_uri", REDIRECT.into()),
        ("code_verifier", VERIFIER.into()),
    ]
}

pub fn as_refs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The redirect's URL without query, and its decoded query pairs.
pub fn location(response: &reqwest::Response) -> (String, Vec<(String, String)>) {
    let location = response.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    let pairs = url.query_pairs().into_owned().collect();
    let mut bare = url.clone();
    bare.set_query(None);
    (bare.to_string(), pairs)
}

pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub async fn json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.unwrap()
}
