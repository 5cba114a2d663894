use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::clock::ManualClock;

use crate::system::System;

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn both_endpoints_answer_through_the_webapp_for_several_users() {
    let system = System::start().await;
    for user in ["alice", "bob", "carol.smith@example.com"] {
        let response = system
            .get(format!("{}/epoch_time?user={user}", system.webapp))
            .await;
        assert_eq!(response.status(), 200, "{user}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["user"], user);
        let epoch = body["epoch_time"].as_i64().unwrap();
        assert!((epoch - now_secs()).abs() <= 2, "{epoch}");

        let response = system
            .get(format!("{}/current_time?user={user}", system.webapp))
            .await;
        assert_eq!(response.status(), 200, "{user}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["user"], user);
        let current = body["current_time"].as_str().unwrap();
        let parsed =
            time::OffsetDateTime::parse(current, &time::format_description::well_known::Rfc3339)
                .unwrap();
        assert!(
            (parsed.unix_timestamp() - now_secs()).abs() <= 2,
            "{current}"
        );
    }
}

#[tokio::test]
async fn every_signing_algorithm_works_end_to_end() {
    for algorithm in ["EdDSA", "ES256", "RS256"] {
        let system = System::start_with(&[("SIGNING_ALGORITHM", algorithm)]).await;
        let response = system
            .get(format!("{}/epoch_time?user=bob", system.webapp))
            .await;
        assert_eq!(response.status(), 200, "{algorithm}");
    }
}

#[tokio::test]
async fn a_bare_call_uses_the_default_user_and_echoes_a_request_id() {
    let system = System::start().await;
    let response = system.get(format!("{}/epoch_time", system.webapp)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["user"], "alice");

    let response = system
        .http
        .get(format!("{}/current_time", system.webapp))
        .header("X-Request-Id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42");
}

#[tokio::test]
async fn an_invalid_user_is_400_before_any_flow_starts() {
    let system = System::start().await;
    for bad in ["", "a%20b", "%0Aalice", &"x".repeat(65)] {
        let response = system
            .get(format!("{}/epoch_time?user={bad}", system.webapp))
            .await;
        assert_eq!(response.status(), 400, "{bad:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
}

#[tokio::test]
async fn a_token_is_good_for_its_endpoint_and_user_only() {
    let system = System::start().await;
    let token = system.token_for("epoch_time", "alice").await;
    assert_eq!(
        system
            .call_resource("/epoch_time", "alice", &token)
            .await
            .status(),
        200
    );

    let other_endpoint = system.call_resource("/current_time", "alice", &token).await;
    assert_eq!(other_endpoint.status(), 403);
    let challenge = other_endpoint.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");

    let other_user = system.call_resource("/epoch_time", "bob", &token).await;
    assert_eq!(other_user.status(), 403);
}

/// The three services on one manual clock, moved past the token's 5 seconds: no leeway.
#[tokio::test]
async fn a_token_is_refused_once_its_five_seconds_are_over() {
    // On a whole second, so that the token's `iat` is the clock's time to the millisecond.
    let start = UNIX_EPOCH + Duration::from_secs(now_secs().unsigned_abs());
    let clock = Arc::new(ManualClock::new(start));
    let system = System::start_on(clock.clone()).await;
    let token = system.token_for("current_time", "alice").await;
    let fresh = system.call_resource("/current_time", "alice", &token).await;
    assert_eq!(fresh.status(), 200);
    clock.advance(Duration::from_millis(4_900));
    let nearly = system.call_resource("/current_time", "alice", &token).await;
    assert_eq!(nearly.status(), 200, "refused before its 5 s");
    clock.advance(Duration::from_millis(200));
    let late = system.call_resource("/current_time", "alice", &token).await;
    assert_eq!(late.status(), 401);
    let challenge = late.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
}
