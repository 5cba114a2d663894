use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authorization_server::{AuthorizationServer, Config};
use common::clock::ManualClock;
use common::config::Env;
use common::service::{Service, ServiceConfig};
use serde::Serialize;
use test_client::{ClientIdentity, Pkce, TestClient};
use tokio::net::TcpListener;

/// The PKCE verifier of every code (RFC 7636's example), so that a code is redeemed from itself.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const STATE: &str = "st4te";
pub const USER: &str = "alice";

pub struct TestServer {
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    /// The client of the defaults (1234, qwerty), over `http`.
    pub client: TestClient,
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
    let router = AuthorizationServer::router(config, clock.clone()).unwrap();
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
    let client = TestClient::new(http.clone(), &base, ClientIdentity::default());
    TestServer {
        base,
        clock,
        http,
        client,
    }
}

/// A valid authorization request for `scope`, as a list to alter.
pub fn authorize_params(scope: &str) -> Vec<(&'static str, String)> {
    let challenge = Pkce::from_verifier(VERIFIER).challenge;
    test_client::authorize_params(&ClientIdentity::default(), scope, USER, STATE, &challenge)
}

/// A token request for `code`, as a list to alter.
pub fn redeem_form(code: &str) -> Vec<(&'static str, String)> {
    test_client::token_form(&ClientIdentity::default(), code, VERIFIER)
}

impl TestServer {
    pub async fn authorize(&self, params: &[(&str, String)]) -> reqwest::Response {
        self.client.authorize(params).await.unwrap()
    }

    /// Runs a valid authorization request and returns the code from the redirect.
    pub async fn code(&self, scope: &str) -> String {
        let pkce = Pkce::from_verifier(VERIFIER);
        self.client.code(scope, USER, STATE, &pkce).await.unwrap()
    }

    /// A token request of `form`, authenticated as the client of the defaults (Basic).
    pub async fn token<F: Serialize + ?Sized>(&self, form: &F) -> reqwest::Response {
        self.client.token(form).await.unwrap()
    }

    /// The same with the client's id and `secret`.
    pub async fn token_with_secret(
        &self,
        form: &[(&str, String)],
        secret: &str,
    ) -> reqwest::Response {
        let client = ClientIdentity {
            secret: secret.to_owned(),
            ..ClientIdentity::default()
        };
        self.client.token_as(&client, form).await.unwrap()
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
