//! Error reporting over Sentry's real transport, to a stand-in Sentry on loopback that records
//! the envelopes it receives. The Sentry client is process-wide: a test binary of its own.

// Tests fail by panicking: unwrap is how a test says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../e2e/system.rs"]
mod system;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use common::config::Env;
use common::observability::Observability;
use common::request_id::{record_client, record_user};
use serde_json::Value;

use crate::system::System;

/// The envelopes the stand-in Sentry received, as text.
#[derive(Clone, Default)]
struct Envelopes(Arc<Mutex<Vec<String>>>);

impl Envelopes {
    /// The events received so far (the `event` items of every envelope).
    fn events(&self) -> Vec<Value> {
        let envelopes = self.0.lock().unwrap().clone();
        let mut events = Vec::new();
        for envelope in envelopes {
            // header line, then item header / payload line pairs
            let mut lines = envelope.lines().skip(1);
            while let (Some(header), Some(payload)) = (lines.next(), lines.next()) {
                let header: Value = serde_json::from_str(header).unwrap();
                if header["type"] == "event" {
                    events.push(serde_json::from_str(payload).unwrap());
                }
            }
        }
        events
    }

    fn all_text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }

    /// The first event with tag `request_id` = `request_id`, waiting for it up to 10 s.
    async fn event_for(&self, request_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(event) = self
                .events()
                .into_iter()
                .find(|event| event["tags"]["request_id"] == request_id)
            {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no event for {request_id}; received: {}",
                self.all_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn record(
    State(envelopes): State<Envelopes>,
    Path(project): Path<String>,
    body: Bytes,
) -> &'static str {
    assert_eq!(project, "1");
    envelopes
        .0
        .lock()
        .unwrap()
        .push(String::from_utf8(body.to_vec()).unwrap());
    "{}"
}

/// The stand-in Sentry (on a thread and runtime of its own, so that it outlives every test) and
/// the process's telemetry pointed at it.
fn sentry() -> &'static Envelopes {
    static SENTRY: OnceLock<Envelopes> = OnceLock::new();
    SENTRY.get_or_init(|| {
        let envelopes = Envelopes::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .route("/api/{project}/envelope/", post(record))
            .with_state(envelopes.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        let env = Env::from_pairs([
            ("SENTRY_DSN", format!("http://public@127.0.0.1:{port}/1")),
            ("SENTRY_ENVIRONMENT", "test".to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
        ]);
        let telemetry =
            common::telemetry::init(&env, "sentry-tests", "oauth-time@0.0.0-test").unwrap();
        assert!(telemetry.reports_errors());
        // Kept for the whole process: dropping it would stop the client.
        std::mem::forget(telemetry);
        envelopes
    })
}

/// Nothing that authenticates anyone, and no request data.
fn assert_no_secrets(event: &Value) {
    let text = event.to_string();
    for secret in [
        "qwerty",
        "MTIzNDpxd2VydHk",
        "eyJ",
        "code_verifier",
        "code=",
        "\"authorization\"",
        "bearer ",
    ] {
        assert!(
            !text
                .to_ascii_lowercase()
                .contains(&secret.to_ascii_lowercase()),
            "{secret} in {text}"
        );
    }
    if let Some(request) = event.get("request") {
        assert!(
            request
                .get("headers")
                .is_none_or(|h| h.as_object().unwrap().is_empty()),
            "{request}"
        );
        assert!(request.get("query_string").is_none(), "{request}");
        assert!(request.get("data").is_none(), "{request}");
    }
}

#[tokio::test]
async fn a_5xx_answer_reaches_sentry_tagged_and_without_secrets() {
    let envelopes = sentry();
    let system = System::start_without_resource_server().await;
    let request_id = format!("down-{}", uuid::Uuid::new_v4());
    let response = system
        .http
        .get(format!("{}/epoch_time?user=alice", system.webapp))
        .header("x-request-id", &request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);

    let event = envelopes.event_for(&request_id).await;
    assert_eq!(event["tags"]["service"], "webapp");
    assert_eq!(event["tags"]["user_id"], "alice");
    assert_eq!(event["tags"]["client_id"], "1234");
    // `error` is the protocol's default level, left out of the payload
    assert!(
        event["level"].is_null() || event["level"] == "error",
        "{event}"
    );
    assert_eq!(event["release"], "oauth-time@0.0.0-test");
    assert_eq!(event["environment"], "test");
    assert!(event.to_string().contains("unreachable"), "{event}");
    assert_no_secrets(&event);
    // Only this request's breadcrumbs: not another service's start-up lines.
    assert!(!event.to_string().contains("signing key"), "{event}");
    // The webapp's request to the authorization server succeeded: no event for it.
    assert_eq!(
        envelopes
            .events()
            .iter()
            .filter(|event| event["tags"]["request_id"] == request_id.as_str())
            .count(),
        1,
        "{}",
        envelopes.all_text()
    );
}

/// A handler that panics, behind the middleware stack every service has: built here only, so no
/// service can ever serve it.
#[allow(clippy::panic)]
async fn panicking_handler() -> &'static str {
    record_client(&oauth::ClientId::new("1234"));
    record_user(&oauth::UserName::parse("carol").unwrap());
    panic!("a bug in a handler")
}

#[tokio::test]
async fn a_panic_becomes_a_500_answer_and_a_tagged_sentry_event() {
    let envelopes = sentry();
    let router = Observability::new("panic-test-service")
        .unwrap()
        .wrap(Router::new().route("/panic", get(panicking_handler)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let request_id = format!("panic-{}", uuid::Uuid::new_v4());
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/panic?code=not-for-sentry"))
        .header("x-request-id", &request_id)
        .header("authorization", "Bearer eyJnot-for-sentry")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-request-id"], request_id.as_str());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "server_error");

    let event = envelopes.event_for(&request_id).await;
    assert_eq!(event["tags"]["service"], "panic-test-service");
    assert_eq!(event["tags"]["user_id"], "carol");
    assert_eq!(event["tags"]["client_id"], "1234");
    assert_eq!(event["level"], "fatal");
    assert!(event.to_string().contains("a bug in a handler"), "{event}");
    assert!(!event.to_string().contains("not-for-sentry"), "{event}");
    assert_no_secrets(&event);
    // The panic is reported once: not again as a 5xx, nor for the log line written about it.
    // Events leave in order through one queue, so once a later request's event has arrived, any
    // second event of this request would have arrived before it.
    let marker = format!("panic-marker-{}", uuid::Uuid::new_v4());
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/panic"))
        .header("x-request-id", &marker)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    envelopes.event_for(&marker).await;
    assert_eq!(
        envelopes
            .events()
            .iter()
            .filter(|event| event["tags"]["request_id"] == request_id.as_str())
            .count(),
        1,
        "{}",
        envelopes.all_text()
    );
}
