//! What the webapp refuses or answers without running a flow.

use serde_json::{json, Value};

use crate::fakes::{dead_port, start_webapp, AsMode, Harness, RsMode, ISSUER};

#[tokio::test]
async fn bad_users_are_400_and_start_no_flow() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    for query in [
        "user=al%20ice",
        "user=",
        "user=a/b",
        "user=bob&user=bob",
        &format!("user={}", "x".repeat(65)),
    ] {
        for path in ["/epoch_time", "/current_time"] {
            let response = app.get(&format!("{path}?{query}")).await;
            assert_eq!(response.status(), 400, "{path}?{query}");
            assert!(response.headers().contains_key("x-request-id"));
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_request", "{query}");
            assert!(body["error_description"].is_string());
            assert!(body.get("step").is_none());
        }
    }
    assert!(app.log.steps().is_empty());
}

fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn the_callback_never_redeems_a_code() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    let response = app
        .get(&format!(
            "/callback?code=stolen&state=whatever&iss={}",
            enc(ISSUER)
        ))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "unknown or expired state"})
    );
    assert!(app.log.steps().is_empty(), "no upstream call");
}

#[tokio::test]
async fn the_callback_reports_an_error_from_the_authorization_server() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    let response = app
        .get(&format!(
            "/callback?error=access_denied&error_description=no&state=x&iss={}",
            enc(ISSUER)
        ))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "access_denied", "error_description": "no"})
    );
}

#[tokio::test]
async fn healthz_answers_while_the_upstreams_are_down() {
    let dead = dead_port().await;
    let base = start_webapp(dead, dead, &[]).await;
    let response = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
}

#[tokio::test]
async fn unknown_paths_are_json_404s() {
    let dead = dead_port().await;
    let base = start_webapp(dead, dead, &[]).await;
    let response = reqwest::get(format!("{base}/nope")).await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn other_methods_are_json_405s_naming_the_allowed_one() {
    let dead = dead_port().await;
    let base = start_webapp(dead, dead, &[]).await;
    for path in ["/epoch_time", "/callback", "/openapi.json"] {
        let response = reqwest::Client::new()
            .delete(format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(response.headers()["allow"], "GET,HEAD", "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
}
