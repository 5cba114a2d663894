use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::clock::ManualClock;
use common::config::Env;
use common::service::{Service, ServiceConfig};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauth::{AccessTokenClaims, ErrorBody, Scope};
use resource_server::{Config, ResourceServer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// 2026-11-28T15:04:05Z
pub const START: u64 = 1_795_878_245;
pub const ISSUER: &str = "http://localhost:8081";
pub const PUBLIC_URL: &str = "http://localhost:8082";
pub const CLIENT_ID: &str = "1234";

/// An Ed25519 key made for this test run; no private key is committed.
pub struct TestKey {
    pub kid: String,
    pub signing: ed25519_dalek::SigningKey,
    pub encoding: EncodingKey,
}

impl TestKey {
    pub fn generate(kid: &str) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let der = signing.to_pkcs8_der().unwrap();
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            signing,
        }
    }

    pub fn public_bytes(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.public_bytes()),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }

    pub fn header(&self) -> Header {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.kid.clone());
        header
    }

    pub fn sign(&self, header: &Header, claims: &impl serde::Serialize) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).unwrap()
    }

    /// A valid token for `scope` and `user`, issued at `iat`, living 5 s.
    pub fn token(&self, scope: Scope, user: &str, iat: u64) -> String {
        self.sign(&self.header(), &claims(scope, user, iat))
    }
}

pub fn claims(scope: Scope, user: &str, iat: u64) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: ISSUER.to_owned(),
        sub: oauth::UserName::parse(user).unwrap(),
        aud: format!("{PUBLIC_URL}{}", scope.path()),
        client_id: CLIENT_ID.into(),
        scope,
        iat,
        exp: iat + 5,
        jti: format!("jti-{}", rand::random::<u64>()),
    }
}

/// A JWT with an arbitrary header and payload and the given signature part.
pub fn raw_token(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The fake authorization server: serves a JWKS it can change, counts fetches, can break, can
/// hold its answers until released.
#[derive(Clone)]
pub struct FakeJwks {
    pub url: String,
    shared: Arc<Shared>,
}

struct Shared {
    keys: Mutex<Vec<Value>>,
    status: Mutex<StatusCode>,
    cache_control: Mutex<Option<String>>,
    /// `false` while answers are held.
    open: watch::Sender<bool>,
    fetches: watch::Sender<usize>,
    request_ids: Mutex<Vec<String>>,
}

impl FakeJwks {
    pub async fn start(keys: Vec<Value>) -> Self {
        let shared = Arc::new(Shared {
            keys: Mutex::new(keys),
            status: Mutex::new(StatusCode::OK),
            cache_control: Mutex::new(None),
            open: watch::Sender::new(true),
            fetches: watch::Sender::new(0),
            request_ids: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .with_state(Arc::clone(&shared));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}"),
            shared,
        }
    }

    pub fn serve_keys(&self, keys: Vec<Value>) {
        *self.shared.keys.lock().unwrap() = keys;
    }

    /// Answer with this status (and a non-JWKS body unless 200).
    pub fn answer_with(&self, status: StatusCode) {
        *self.shared.status.lock().unwrap() = status;
    }

    /// The `Cache-Control` of the answers; none when `None`.
    pub fn cache_control(&self, value: Option<&str>) {
        *self.shared.cache_control.lock().unwrap() = value.map(str::to_owned);
    }

    /// Fetches from now on are received but not answered until [`FakeJwks::release`].
    pub fn hold(&self) {
        self.shared.open.send_replace(false);
    }

    pub fn release(&self) {
        self.shared.open.send_replace(true);
    }

    pub fn fetches(&self) -> usize {
        *self.shared.fetches.borrow()
    }

    /// Returns once `count` fetches have been received (answered or held).
    pub async fn wait_for_fetches(&self, count: usize) {
        let mut fetches = self.shared.fetches.subscribe();
        // a guard against a hang, not a wait for time: the fetch is due at once
        tokio::time::timeout(Duration::from_secs(5), fetches.wait_for(|n| *n >= count))
            .await
            .unwrap_or_else(|_| panic!("{} fetches, not {count}", self.fetches()))
            .unwrap();
    }

    /// The `X-Request-Id` of each fetch, in order (empty for a fetch without one).
    pub fn request_ids(&self) -> Vec<String> {
        self.shared.request_ids.lock().unwrap().clone()
    }
}

async fn serve_jwks(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    shared.fetches.send_modify(|fetches| *fetches += 1);
    let request_id = headers
        .get("x-request-id")
        .map(|value| value.to_str().unwrap().to_owned());
    shared
        .request_ids
        .lock()
        .unwrap()
        .push(request_id.unwrap_or_default());
    shared
        .open
        .subscribe()
        .wait_for(|open| *open)
        .await
        .unwrap();
    let status = *shared.status.lock().unwrap();
    if status != StatusCode::OK {
        return (status, "broken").into_response();
    }
    let keys = shared.keys.lock().unwrap().clone();
    let mut response = Json(json!({ "keys": keys })).into_response();
    if let Some(value) = shared.cache_control.lock().unwrap().clone() {
        let value = value.parse().unwrap();
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// A URL where nothing listens.
pub async fn closed_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

pub fn config(authorization_server_url: &str) -> Config {
    let env = Env::from_pairs([
        (
            "AUTHORIZATION_SERVER_URL",
            authorization_server_url.to_owned(),
        ),
        ("ISSUER", ISSUER.to_owned()),
        ("RESOURCE_SERVER_PUBLIC_URL", PUBLIC_URL.to_owned()),
        ("CLIENT_ID", CLIENT_ID.to_owned()),
        ("JWKS_REFETCH_INTERVAL_SECONDS", "60".to_owned()),
        ("UPSTREAM_TIMEOUT_MS", "2000".to_owned()),
    ]);
    Config::from_env(&env).unwrap()
}

/// A running resource server with a manual clock at [`START`], trusting `key` via a fake JWKS.
pub struct TestApp {
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub jwks: FakeJwks,
    pub key: TestKey,
    pub client: reqwest::Client,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let key = TestKey::generate("key-1");
        let jwks = FakeJwks::start(vec![key.jwk()]).await;
        let mut config = config(&jwks.url);
        adjust(&mut config);
        let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(START)));
        let base = start_resource_server(config, clock.clone()).await;
        Self {
            base,
            clock,
            jwks,
            key,
            client: reqwest::Client::new(),
        }
    }

    /// A valid token for `scope` and `user`, issued now by the manual clock.
    pub fn token(&self, scope: Scope, user: &str) -> String {
        self.key.token(scope, user, self.now_secs())
    }

    pub fn now_secs(&self) -> u64 {
        use common::Clock;
        self.clock.since_epoch().as_secs()
    }

    /// The value of the sample `series` (`name{label="value",...}`, labels as exposed) in `/metrics`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.get("/metrics", None).await.text().await.unwrap();
        text.lines()
            .filter_map(|line| line.rsplit_once(' '))
            .find(|(name, _)| *name == series)
            .map(|(_, value)| value.parse().unwrap())
    }

    pub async fn get(&self, path_and_query: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path_and_query}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

pub async fn start_resource_server(config: Config, clock: Arc<ManualClock>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let router = ResourceServer::router(config, clock).unwrap();
    tokio::spawn(common::server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

pub fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Asserts a refusal: status, `WWW-Authenticate` challenge carrying `error` (or none for the
/// 503), JSON body with the same error code, `Cache-Control: no-store`. Returns the description.
pub async fn assert_refused(response: reqwest::Response, status: u16, error: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    match error {
        "temporarily_unavailable" => assert_eq!(challenge, None),
        _ => {
            let challenge = challenge.expect("a WWW-Authenticate challenge");
            assert!(challenge.starts_with("Bearer "), "{challenge}");
            assert!(
                challenge.contains(&format!("error=\"{error}\"")),
                "{challenge} lacks {error}"
            );
            assert!(challenge.contains("error_description=\""), "{challenge}");
        }
    }
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error, error);
    body.error_description
}
