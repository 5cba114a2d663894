use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::config::Env;
use common::service::{Service, ServiceConfig};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use webapp::Webapp;

pub const REDIRECT_URI: &str = "http://localhost:8080/callback";
pub const ISSUER: &str = "http://localhost:8081";
/// The public URL the `resource` must be built from (the internal one is a loopback port).
pub const RS_PUBLIC: &str = "http://localhost:8082";

/// How the fake authorization server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsMode {
    Normal,
    ErrorRedirect,
    WrongState,
    WrongIss,
    InvalidGrant,
    /// A 200 token response whose `token_type` is not Bearer.
    MacToken,
    /// A 200 token response with an empty `access_token`.
    EmptyToken,
    /// A 200 token response that is not JSON.
    GarbageToken,
}

/// How the fake resource server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsMode {
    Normal,
    Unauthorized,
    Hang,
    /// Nothing listens on its port.
    Down,
    /// 200 with a JSON object that is not the endpoint's answer.
    WrongBody,
    /// 200 with the endpoint's answer for another user.
    OtherUser,
    /// 200 with the endpoint's answer padded past what the webapp reads of an answer.
    Huge,
}

/// What the fakes saw.
#[derive(Default)]
pub struct Log {
    /// (step, X-Request-Id received) for every upstream call.
    pub request_ids: Mutex<Vec<(&'static str, Option<String>)>>,
    /// The query of every authorization request.
    pub authorize_queries: Mutex<Vec<HashMap<String, String>>>,
    /// Everything a fake found wrong in what the webapp sent.
    pub problems: Mutex<Vec<String>>,
    tokens: Mutex<HashMap<String, (String, String)>>,
    codes: Mutex<HashMap<String, Grant>>,
}

#[derive(Clone)]
struct Grant {
    challenge: String,
    user: String,
    scope: String,
}

impl Log {
    pub fn ids(&self) -> Vec<(&'static str, Option<String>)> {
        self.request_ids.lock().unwrap().clone()
    }

    pub fn steps(&self) -> Vec<&'static str> {
        self.ids().into_iter().map(|(step, _)| step).collect()
    }

    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().clone()
    }

    fn record(&self, step: &'static str, headers: &HeaderMap) {
        let id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.request_ids.lock().unwrap().push((step, id));
    }

    fn problem(&self, problem: String) -> Response {
        self.problems.lock().unwrap().push(problem.clone());
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": problem})),
        )
            .into_response()
    }
}

struct FakeState {
    mode: AsMode,
    rs_mode: RsMode,
    log: Arc<Log>,
}

type Shared = State<Arc<FakeState>>;

/// A running webapp and its fakes.
pub struct Harness {
    pub base: String,
    /// The fake authorization server (the webapp sends browsers to [`ISSUER`] instead).
    pub authorization_server: String,
    pub client: reqwest::Client,
    pub log: Arc<Log>,
}

impl Harness {
    pub async fn start(as_mode: AsMode, rs_mode: RsMode) -> Self {
        Self::start_with(as_mode, rs_mode, &[]).await
    }

    pub async fn start_with(
        as_mode: AsMode,
        rs_mode: RsMode,
        env: &[(&'static str, &str)],
    ) -> Self {
        let log = Arc::new(Log::default());
        let state = Arc::new(FakeState {
            mode: as_mode,
            rs_mode,
            log: log.clone(),
        });
        let as_router = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(state.clone());
        let rs_router = Router::new()
            .route("/current_time", get(resource))
            .route("/epoch_time", get(resource))
            .with_state(state);
        let as_addr = spawn(as_router).await;
        let rs_addr = if rs_mode == RsMode::Down {
            dead_port().await
        } else {
            spawn(rs_router).await
        };
        let base = start_webapp(as_addr, rs_addr, env).await;
        Self {
            base,
            authorization_server: format!("http://{as_addr}"),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            log,
        }
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path_and_query}", self.base))
            .send()
            .await
            .unwrap()
    }
}

/// Starts the webapp against the given upstreams; returns its base URL.
pub async fn start_webapp(
    as_addr: SocketAddr,
    rs_addr: SocketAddr,
    extra: &[(&'static str, &str)],
) -> String {
    let mut pairs = vec![
        ("AUTHORIZATION_SERVER_URL", format!("http://{as_addr}")),
        ("RESOURCE_SERVER_URL", format!("http://{rs_addr}")),
        ("RESOURCE_SERVER_PUBLIC_URL", RS_PUBLIC.to_owned()),
        ("ISSUER", ISSUER.to_owned()),
        ("REDIRECT_URI", REDIRECT_URI.to_owned()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let config = webapp::Config::from_env(&Env::from_pairs(pairs)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(Webapp::serve(
        listener.into(),
        config,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

async fn spawn(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A loopback port nobody listens on: bound, then released.
pub async fn dead_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn authorize(
    State(state): Shared,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let log = &state.log;
    log.record("authorize", &headers);
    let mut query = HashMap::new();
    for (name, value) in pairs {
        if query.insert(name.clone(), value).is_some() {
            return log.problem(format!("repeated parameter {name}"));
        }
    }
    log.authorize_queries.lock().unwrap().push(query.clone());
    let param = |name: &str| query.get(name).cloned().unwrap_or_default();
    let scope = param("scope");
    let expectations = [
        ("response_type", "code".to_owned()),
        ("client_id", "1234".to_owned()),
        ("redirect_uri", REDIRECT_URI.to_owned()),
        ("code_challenge_method", "S256".to_owned()),
        ("resource", format!("{RS_PUBLIC}/{scope}")),
    ];
    for (name, expected) in expectations {
        if param(name) != expected {
            return log.problem(format!(
                "{name} is {:?}, expected {expected:?}",
                param(name)
            ));
        }
    }
    if !matches!(scope.as_str(), "current_time" | "epoch_time") {
        return log.problem(format!("bad scope {scope:?}"));
    }
    if param("code_challenge").len() != 43 {
        return log.problem("the code_challenge is not a S256 challenge".to_owned());
    }
    let user = param("login_hint");
    if user.is_empty() {
        return log.problem("no login_hint".to_owned());
    }
    let sent_state = param("state");
    if sent_state.len() < 16 {
        return log.problem("the state is missing or short".to_owned());
    }
    let code = format!("code-{}", uuid_like());
    log.codes.lock().unwrap().insert(
        code.clone(),
        Grant {
            challenge: param("code_challenge"),
            user,
            scope,
        },
    );
    let (state_value, iss) = match state.mode {
        AsMode::WrongState => ("forged-state".to_owned(), ISSUER.to_owned()),
        AsMode::WrongIss => (sent_state, "http://evil.example".to_owned()),
        _ => (sent_state, ISSUER.to_owned()),
    };
    let location = if state.mode == AsMode::ErrorRedirect {
        format!(
            "{REDIRECT_URI}?error=access_denied&error_description={}&state={}&iss={}",
            enc("the user said no"),
            enc(&state_value),
            enc(&iss)
        )
    } else {
        format!(
            "{REDIRECT_URI}?code={}&state={}&iss={}",
            enc(&code),
            enc(&state_value),
            enc(&iss)
        )
    };
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn token(
    State(state): Shared,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let log = &state.log;
    log.record("token", &headers);
    let expected_auth = format!("Basic {}", STANDARD.encode("1234:qwerty"));
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(&expected_auth)
    {
        return log.problem("missing or wrong client_secret_basic credentials".to_owned());
    }
    if form.contains_key("client_secret") {
        return log.problem("the secret is also in the body".to_owned());
    }
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    if field("grant_type") != "authorization_code" {
        return log.problem("grant_type is not authorization_code".to_owned());
    }
    if field("redirect_uri") != REDIRECT_URI {
        return log.problem("redirect_uri differs".to_owned());
    }
    let Some(grant) = log.codes.lock().unwrap().remove(&field("code")) else {
        return log.problem("unknown code".to_owned());
    };
    let verifier = field("code_verifier");
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return log.problem("PKCE: S256(code_verifier) != code_challenge".to_owned());
    }
    if state.mode == AsMode::InvalidGrant {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "the code has expired"})),
        )
            .into_response();
    }
    if state.mode == AsMode::GarbageToken {
        return (StatusCode::OK, "access_token=at-1&token_type=Bearer").into_response();
    }
    let access_token = match state.mode {
        AsMode::EmptyToken => String::new(),
        _ => format!("at-{}", uuid_like()),
    };
    let token_type = match state.mode {
        AsMode::MacToken => "mac",
        _ => "Bearer",
    };
    log.tokens
        .lock()
        .unwrap()
        .insert(access_token.clone(), (grant.user, grant.scope.clone()));
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": access_token,
            "token_type": token_type,
            "expires_in": 5,
            "scope": grant.scope,
        })),
    )
        .into_response()
}

async fn resource(
    State(state): Shared,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let log = &state.log;
    log.record("resource", &headers);
    let unauthorized = |error: &str| {
        (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                format!("Bearer error=\"{error}\""),
            )],
            Json(json!({"error": error, "error_description": "the token is not valid"})),
        )
            .into_response()
    };
    match state.rs_mode {
        RsMode::Unauthorized => return unauthorized("invalid_token"),
        // until the webapp gives up and the test ends
        RsMode::Hang => std::future::pending::<()>().await,
        RsMode::Normal | RsMode::Down | RsMode::WrongBody | RsMode::OtherUser | RsMode::Huge => {}
    }
    let scope = uri.path().trim_start_matches('/').to_owned();
    let user = query.get("user").cloned().unwrap_or_default();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let granted = log.tokens.lock().unwrap().get(&token).cloned();
    if granted != Some((user.clone(), scope.clone())) {
        log.problems
            .lock()
            .unwrap()
            .push(format!("resource server: bad token for {user}/{scope}"));
        return unauthorized("invalid_token");
    }
    let user = match state.rs_mode {
        RsMode::OtherUser => "mallory".to_owned(),
        _ => user,
    };
    let body = match (state.rs_mode, scope.as_str()) {
        (RsMode::WrongBody, _) => json!({"time": "now", "user": user}),
        (RsMode::Huge, _) => json!({
            "epoch_time": 1795866300,
            "user": user,
            "padding": "x".repeat(common::http_client::MAX_ANSWER_BYTES),
        }),
        (_, "epoch_time") => json!({"epoch_time": 1795866300, "user": user}),
        _ => json!({"current_time": "2026-11-26T09:05:00Z", "user": user}),
    };
    Json(body).into_response()
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
