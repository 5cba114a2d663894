//! Whole flows against the fakes: what succeeds, and how each failing step is reported.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fakes::{AsMode, Harness, RsMode, RS_PUBLIC};

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn epoch_time_returns_the_resource_servers_json() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    let response = app.get("/epoch_time").await;
    assert_eq!(response.status(), 200);
    let echoed = response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        json_of(response).await,
        json!({"epoch_time": 1795866300, "user": "alice"})
    );
    assert_eq!(app.log.problems(), Vec::<String>::new());
    // The same request id reached all three upstream calls, and is the one echoed.
    let ids = app.log.ids();
    assert_eq!(app.log.steps(), ["authorize", "token", "resource"]);
    for (step, id) in ids {
        assert_eq!(id.as_deref(), Some(echoed.as_str()), "{step}");
    }
    let queries = app.log.authorize_queries.lock().unwrap().clone();
    assert_eq!(queries[0]["login_hint"], "alice");
    assert_eq!(queries[0]["scope"], "epoch_time");
    assert_eq!(queries[0]["resource"], format!("{RS_PUBLIC}/epoch_time"));
}

#[tokio::test]
async fn current_time_for_a_named_user() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    let response = app.get("/current_time?user=bob.smith%40example").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/json"
    );
    assert_eq!(
        json_of(response).await,
        json!({"current_time": "2026-11-26T09:05:00Z", "user": "bob.smith@example"})
    );
    assert_eq!(app.log.problems(), Vec::<String>::new());
    let queries = app.log.authorize_queries.lock().unwrap().clone();
    assert_eq!(queries[0]["login_hint"], "bob.smith@example");
    assert_eq!(queries[0]["scope"], "current_time");
    assert_eq!(queries[0]["resource"], format!("{RS_PUBLIC}/current_time"));
}

#[tokio::test]
async fn every_call_uses_a_fresh_state_and_pkce_pair() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    for _ in 0..2 {
        assert_eq!(app.get("/epoch_time").await.status(), 200);
    }
    let queries = app.log.authorize_queries.lock().unwrap().clone();
    assert_ne!(queries[0]["state"], queries[1]["state"]);
    assert_ne!(queries[0]["code_challenge"], queries[1]["code_challenge"]);
}

#[tokio::test]
async fn a_callers_request_id_is_forwarded_and_echoed() {
    let app = Harness::start(AsMode::Normal, RsMode::Normal).await;
    let response = app
        .client
        .get(format!("{}/epoch_time", app.base))
        .header("x-request-id", "caller-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "caller-id-42");
    let ids = app.log.ids();
    assert_eq!(ids.len(), 3);
    for (step, id) in ids {
        assert_eq!(id.as_deref(), Some("caller-id-42"), "{step}");
    }
}

async fn assert_failure(app: &Harness, status: u16, error: &str, step: &str) -> Value {
    let response = app.get("/epoch_time").await;
    assert_eq!(response.status(), status);
    assert!(response.headers().contains_key("x-request-id"));
    let body = json_of(response).await;
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["step"], step, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body
}

#[tokio::test]
async fn an_error_redirect_is_passed_through() {
    let app = Harness::start(AsMode::ErrorRedirect, RsMode::Normal).await;
    let body = assert_failure(&app, 502, "access_denied", "authorize").await;
    assert_eq!(body["error_description"], "the user said no");
    assert_eq!(app.log.steps(), ["authorize"]);
}

#[tokio::test]
async fn a_redirect_with_another_state_is_refused_and_its_code_never_redeemed() {
    let app = Harness::start(AsMode::WrongState, RsMode::Normal).await;
    let body = assert_failure(&app, 502, "server_error", "authorize").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("state"),
        "{body}"
    );
    assert_eq!(app.log.steps(), ["authorize"]);
}

#[tokio::test]
async fn a_redirect_from_another_issuer_is_refused_and_its_code_never_redeemed() {
    let app = Harness::start(AsMode::WrongIss, RsMode::Normal).await;
    let body = assert_failure(&app, 502, "server_error", "authorize").await;
    assert!(
        body["error_description"].as_str().unwrap().contains("iss"),
        "{body}"
    );
    assert_eq!(app.log.steps(), ["authorize"]);
}

#[tokio::test]
async fn a_refused_code_is_a_token_step_failure() {
    let app = Harness::start(AsMode::InvalidGrant, RsMode::Normal).await;
    let body = assert_failure(&app, 502, "invalid_grant", "token").await;
    assert_eq!(body["error_description"], "the code has expired");
    // The fake checked Basic credentials and PKCE before refusing.
    assert_eq!(app.log.problems(), Vec::<String>::new());
    assert_eq!(app.log.steps(), ["authorize", "token"]);
}

/// A 200 from the token endpoint is used only when it is a non-empty Bearer token in JSON.
#[tokio::test]
async fn a_token_response_that_is_not_a_bearer_token_is_refused() {
    for (mode, description) in [
        (AsMode::MacToken, "the token type is \"mac\", not Bearer"),
        (AsMode::EmptyToken, "the access token is empty"),
        (
            AsMode::GarbageToken,
            "the authorization server's token response could not be parsed",
        ),
    ] {
        let app = Harness::start(mode, RsMode::Normal).await;
        let body = assert_failure(&app, 502, "server_error", "token").await;
        assert_eq!(body["error_description"], description, "{mode:?}");
        assert_eq!(app.log.steps(), ["authorize", "token"], "{mode:?}");
    }
}

#[tokio::test]
async fn a_refused_token_is_a_resource_step_failure() {
    let app = Harness::start(AsMode::Normal, RsMode::Unauthorized).await;
    assert_failure(&app, 502, "invalid_token", "resource").await;
}

#[tokio::test]
async fn a_resource_answer_that_is_not_the_endpoints_is_refused() {
    let app = Harness::start(AsMode::Normal, RsMode::WrongBody).await;
    let body = assert_failure(&app, 502, "server_error", "resource").await;
    assert_eq!(
        body["error_description"],
        "the resource server's 200 answer is not one of /epoch_time"
    );
}

#[tokio::test]
async fn a_resource_answer_for_another_user_is_refused() {
    let app = Harness::start(AsMode::Normal, RsMode::OtherUser).await;
    let body = assert_failure(&app, 502, "server_error", "resource").await;
    assert_eq!(
        body["error_description"],
        "the resource server answered for another user"
    );
    assert!(!body.to_string().contains("mallory"), "{body}");
}

#[tokio::test]
async fn a_resource_answer_larger_than_the_limit_is_not_read() {
    let app = Harness::start(AsMode::Normal, RsMode::Huge).await;
    let body = assert_failure(&app, 502, "server_error", "resource").await;
    assert_eq!(
        body["error_description"],
        "the resource server answer could not be read"
    );
}

#[tokio::test]
async fn an_unreachable_resource_server_is_503_at_once() {
    let app = Harness::start(AsMode::Normal, RsMode::Down).await;
    let started = Instant::now();
    assert_failure(&app, 503, "temporarily_unavailable", "resource").await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_unreachable_authorization_server_is_503() {
    let dead = crate::fakes::dead_port().await;
    let base = crate::fakes::start_webapp(dead, dead, &[]).await;
    let response = reqwest::get(format!("{base}/current_time")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body = json_of(response).await;
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(body["step"], "authorize");
}

#[tokio::test]
async fn a_resource_server_that_hangs_is_504_after_the_timeout() {
    let app = Harness::start_with(
        AsMode::Normal,
        RsMode::Hang,
        &[("UPSTREAM_TIMEOUT_MS", "300")],
    )
    .await;
    let started = tokio::time::Instant::now();
    let log = app.log.clone();
    let call = tokio::spawn(async move {
        assert_failure(&app, 504, "temporarily_unavailable", "resource").await
    });
    // Once the call hangs at the resource server, Tokio's clock is moved past the timeout.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log.steps().contains(&"resource") {
        assert!(
            Instant::now() < deadline,
            "no call reached the resource server"
        );
        tokio::task::yield_now().await;
    }
    common::clock::advance_timers(Duration::from_millis(300)).await;
    call.await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}
