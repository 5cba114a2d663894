use std::time::Duration;

use common::service::Service;
use oauth::Scope;
use resource_server::ResourceServer;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn current_time_answers_a_valid_token() {
    let app = TestApp::spawn().await;
    app.clock.advance(Duration::from_millis(750));
    let token = app.token(Scope::CurrentTime, "alice");
    let response = app.get("/current_time?user=alice", Some(&token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"current_time": "2026-11-28T15:04:05Z", "user": "alice"})
    );
}

#[tokio::test]
async fn epoch_time_answers_a_valid_token() {
    let app = TestApp::spawn().await;
    let token = app.token(Scope::EpochTime, "Bob.Smith_2@example-corp");
    let response = app
        .get(
            "/epoch_time?user=Bob.Smith_2%40example-corp&unknown=ignored",
            Some(&token),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"epoch_time": START, "user": "Bob.Smith_2@example-corp"})
    );
}

#[tokio::test]
async fn works_with_the_system_clock_too() {
    let key = TestKey::generate("sys");
    let jwks = FakeJwks::start(vec![key.jwk()]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ResourceServer::serve(
        listener.into(),
        config(&jwks.url),
        std::future::pending(),
    ));
    let token = key.token(Scope::EpochTime, "alice", system_now());
    let response = reqwest::Client::new()
        .get(format!("{base}/epoch_time?user=alice"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let epoch = body["epoch_time"].as_u64().unwrap();
    assert!(epoch.abs_diff(system_now()) <= 2);
}

#[tokio::test]
async fn healthz_needs_no_authorization_server() {
    let config = config(&closed_url().await);
    let clock = std::sync::Arc::new(common::clock::ManualClock::new(std::time::SystemTime::now()));
    let base = start_resource_server(config, clock).await;
    let response = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn the_request_id_is_taken_from_the_caller() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-123");
}

#[tokio::test]
async fn unknown_paths_are_json_404s() {
    let app = TestApp::spawn().await;
    let response = app.get("/nope", None).await;
    assert_eq!(response.status(), 404);
    let body: oauth::ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error, "not_found");
}

#[tokio::test]
async fn other_methods_are_json_405s_naming_the_allowed_one() {
    let app = TestApp::spawn().await;
    for path in ["/epoch_time", "/current_time", "/healthz"] {
        let response = app
            .client
            .post(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(response.headers()["allow"], "GET,HEAD", "{path}");
        let body: oauth::ErrorBody = response.json().await.unwrap();
        assert_eq!(body.error, "invalid_request", "{path}");
    }
}
