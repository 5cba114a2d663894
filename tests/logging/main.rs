//! The JSON log lines of whole flows through the three real services, captured in memory: one
//! process-wide subscriber, so this is a test binary of its own, and its flows run one at a time.

// Tests fail by panicking: unwrap is how a test says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../e2e/system.rs"]
mod system;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::config::Env;
use serde_json::Value;
use test_client::{ClientIdentity, Pkce, Redirect};

use crate::system::System;

/// Everything every service of this process logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The lines written since byte `from`.
    fn text_since(&self, from: usize) -> String {
        String::from_utf8(self.0.lock().unwrap()[from..].to_vec()).unwrap()
    }

    fn lines_since(&self, from: usize) -> Vec<Value> {
        self.text_since(from)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
            .collect()
    }
}

/// The process's telemetry, as the binaries install it, with `LOG_FORMAT=json`.
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let env = Env::from_pairs([
            ("LOG_FORMAT", "json".to_owned()),
            // the webapp's debug lines are written between the steps that hold the secrets
            ("RUST_LOG", "info,webapp=debug".to_owned()),
        ]);
        let telemetry =
            common::telemetry::init_with_writer(&env, "logging-tests", "test@0", move || {
                writer.clone()
            })
            .unwrap();
        assert!(!telemetry.reports_errors());
        captured
    })
}

/// Waits until each `(service, request id)` has written its "request handled" line (written a
/// few microseconds after the answer, so possibly after the caller has it), at most 10 s.
async fn wait_for_handled(logs: &Captured, from: usize, expected: &[(&str, &str)]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = logs.lines_since(from);
        let missing: Vec<_> = expected
            .iter()
            .filter(|(service, request_id)| {
                !lines.iter().any(|line| {
                    line["message"] == "request handled"
                        && str_field(line, "service") == Some(service)
                        && str_field(line, "request_id") == Some(request_id)
                })
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no \"request handled\" line for {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A recording proxy in front of the authorization server, for the webapp: what the webapp
/// sent and received there, so that the test knows the webapp's own state, PKCE verifier and
/// challenge, code and token, and can look for them in the logs.
#[derive(Clone)]
struct Proxy {
    target: Arc<OnceLock<String>>,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    http: reqwest::Client,
}

/// One request through the proxy: its query and body, the answer's `Location` and body.
#[derive(Debug, Default, Clone)]
struct Exchange {
    path: String,
    query: String,
    body: String,
    location: String,
    answer: String,
}

impl Proxy {
    /// Listens at once; forwards to the target set later with [`Proxy::forward_to`].
    async fn start() -> (Self, String) {
        let proxy = Self {
            target: Arc::default(),
            exchanges: Arc::default(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(proxy.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (proxy, url)
    }

    fn forward_to(&self, target: &str) {
        self.target.set(target.to_owned()).unwrap();
    }

    fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }
}

async fn forward(
    State(proxy): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = proxy.target.get().unwrap();
    let mut request = proxy
        .http
        .request(method, format!("{target}{uri}"))
        .body(body.clone());
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answer = request.send().await.unwrap();
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let mut answer_headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            answer_headers.append(name, value.clone());
        }
    }
    let answer_body = answer.bytes().await.unwrap();
    proxy.exchanges.lock().unwrap().push(Exchange {
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
        location: answer_headers
            .get("location")
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        answer: String::from_utf8_lossy(&answer_body).into_owned(),
    });
    (status, answer_headers, answer_body).into_response()
}

/// The value of `name` in a query string or form body.
fn param(encoded: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(encoded.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Every secret the webapp handled in the flows that went through `proxy`: its states, PKCE
/// verifiers and challenges, codes and access tokens.
fn webapp_secrets(proxy: &Proxy) -> Vec<String> {
    let mut secrets = Vec::new();
    for exchange in proxy.exchanges() {
        match exchange.path.as_str() {
            "/authorize" => {
                secrets.extend(param(&exchange.query, "state"));
                secrets.extend(param(&exchange.query, "code_challenge"));
                let location = url::Url::parse(&exchange.location).unwrap();
                secrets.extend(param(location.query().unwrap_or_default(), "code"));
            }
            "/token" => {
                secrets.extend(param(&exchange.body, "code"));
                secrets.extend(param(&exchange.body, "code_verifier"));
                let answer: Value = serde_json::from_str(&exchange.answer).unwrap();
                secrets.extend(answer["access_token"].as_str().map(str::to_owned));
            }
            _ => {}
        }
    }
    secrets
}

fn str_field<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line.get(name).and_then(Value::as_str)
}

#[tokio::test]
async fn one_request_id_user_and_client_on_every_line_of_a_flow_and_no_secret_anywhere() {
    let logs = logs();
    let start = logs.len();
    // The webapp (and the resource server's JWKS fetch) reach the authorization server through
    // the recording proxy; tokens still name the authorization server itself as their issuer.
    let (proxy, proxy_url) = Proxy::start().await;
    let system = System::start_with(&[("AUTHORIZATION_SERVER_URL", proxy_url.as_str())]).await;
    proxy.forward_to(&system.authorization_server);
    // A first call fetches the resource server's JWKS (a call of its own, with its own id).
    let warm_up = system
        .http
        .get(format!("{}/epoch_time?user=alice", system.webapp))
        .header("x-request-id", "warm-up")
        .send()
        .await
        .unwrap();
    assert_eq!(warm_up.status(), 200);
    wait_for_handled(logs, start, &[("webapp", "warm-up")]).await;

    // 1. One user call through the webapp, with the caller's request id.
    let request_id = format!("flow-{}", uuid::Uuid::new_v4());
    let from = logs.len();
    let response = system
        .http
        .get(format!("{}/current_time?user=alice", system.webapp))
        .header("x-request-id", &request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], request_id.as_str());
    wait_for_handled(
        logs,
        from,
        &[
            ("webapp", &request_id),
            ("authorization-server", &request_id),
            ("resource-server", &request_id),
        ],
    )
    .await;

    let lines = logs.lines_since(from);
    assert!(lines.len() >= 6, "{lines:#?}");
    let mut services = BTreeSet::new();
    for line in &lines {
        for field in ["timestamp", "level", "service", "message", "target"] {
            assert!(line.get(field).is_some(), "no {field}: {line}");
        }
        // Every line written while the request was handled, in whichever service: the same id,
        // and the user and the client, known to each service before it writes a line.
        assert_eq!(
            str_field(line, "request_id"),
            Some(request_id.as_str()),
            "{line}"
        );
        assert_eq!(str_field(line, "user_id"), Some("alice"), "{line}");
        assert_eq!(str_field(line, "client_id"), Some("1234"), "{line}");
        assert!(
            line.get("span").is_none() && line.get("fields").is_none(),
            "{line}"
        );
        services.insert(str_field(line, "service").unwrap().to_owned());
    }
    assert_eq!(
        services,
        BTreeSet::from(["authorization-server", "resource-server", "webapp"].map(String::from)),
    );
    // One line per request with method, route, status and latency, in each service.
    let handled: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "request handled")
        .collect();
    let routes: BTreeSet<String> = handled
        .iter()
        .map(|line| {
            format!(
                "{} {} {}",
                line["service"].as_str().unwrap(),
                line["method"].as_str().unwrap(),
                line["route"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        routes,
        BTreeSet::from(
            [
                "authorization-server GET /authorize",
                "authorization-server POST /token",
                "resource-server GET /current_time",
                "webapp GET /current_time",
            ]
            .map(String::from)
        ),
    );
    for line in handled {
        assert!(line["status"].as_u64().is_some(), "{line}");
        assert!(line["latency_ms"].as_f64().is_some(), "{line}");
    }

    // 2. The same flow by hand, so that the test holds the secrets it then looks for, beside
    // those the webapp handled in its own flows (seen by the proxy).
    let from = logs.len();
    let mut secrets = flow_by_hand(&system).await;
    wait_for_handled(
        logs,
        from,
        &[
            ("authorization-server", "by-hand-authorize"),
            ("authorization-server", "by-hand-token"),
            ("resource-server", "by-hand-resource"),
            ("authorization-server", "by-hand-replay"),
        ],
    )
    .await;
    let webapp_secrets = webapp_secrets(&proxy);
    // two flows of the webapp: state, challenge, code (twice: redirect and redemption), verifier,
    // token, each
    assert_eq!(webapp_secrets.len(), 2 * 6, "{webapp_secrets:?}");
    let webapp_lines: String = logs
        .lines_since(start)
        .iter()
        .filter(|line| str_field(line, "service") == Some("webapp"))
        .map(Value::to_string)
        .collect();
    assert!(
        webapp_lines.contains("warm-up"),
        "the webapp's lines were captured"
    );
    for secret in &webapp_secrets {
        assert!(
            !webapp_lines.contains(secret.as_str()),
            "the webapp logged its own {secret}"
        );
    }
    secrets.extend(webapp_secrets);

    let everything = logs.text_since(start);
    for secret in &secrets {
        assert!(
            !everything.contains(secret.as_str()),
            "{secret} is in the logs"
        );
    }
    // No access token of any flow (a JWT's header starts with `{"` = `eyJ`), no client secret.
    assert!(!everything.contains("eyJ"), "a JWT is in the logs");
    assert!(!everything.contains("qwerty"));
    // Start-up lines name their service too.
    for line in logs.lines_since(start) {
        assert!(str_field(&line, "service").is_some(), "{line}");
    }
}

/// The authorization code flow against the authorization server, then the resource call, each
/// with a request id of its own; returns every secret it handled.
async fn flow_by_hand(system: &System) -> Vec<String> {
    let client = ClientIdentity::default();
    let pkce = Pkce::random();
    let params = test_client::authorize_params(&client, "epoch_time", "bob", "s", &pkce.challenge);
    let response = system
        .http
        .get(format!("{}/authorize", system.authorization_server))
        .header("x-request-id", "by-hand-authorize")
        .query(&params)
        .send()
        .await
        .unwrap();
    let Redirect::Code(code) = test_client::redirect(&response, &client, "s").unwrap() else {
        panic!("no code");
    };
    let form = test_client::token_form(&client, &code, &pkce.verifier);
    let redeem = |request_id: &'static str| {
        system
            .http
            .post(format!("{}/token", system.authorization_server))
            .header("x-request-id", request_id)
            .basic_auth(&client.id, Some(&client.secret))
            .form(&form)
            .send()
    };
    let response = redeem("by-hand-token").await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let response = system
        .http
        .get(format!("{}/epoch_time", system.resource_server))
        .header("x-request-id", "by-hand-resource")
        .query(&[("user", "bob")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // A refused replay of the code, logged as such, still without the code.
    let replay = redeem("by-hand-replay").await.unwrap();
    assert_eq!(replay.status(), 400);
    let basic = STANDARD.encode("1234:qwerty");
    vec![code, pkce.verifier, pkce.challenge, token, basic]
}
