//! The JWKS cache: fetched when first needed, refetched (rate-limited, single-flight) on an
//! unknown `kid`, replaced on refetch, 503 when it cannot be fetched. The refetch interval runs
//! on the injected clock: the tests move it instead of sleeping.

use std::time::Duration;

use axum::http::StatusCode;
use common::Scope;

use crate::helpers::*;

/// The refetch interval of the tests that need one; the manual clock is moved past it.
const SHORT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn keys_are_fetched_when_first_needed_then_cached() {
    let app = TestApp::spawn().await;
    assert_eq!(app.jwks.fetches(), 0);
    for _ in 0..3 {
        let token = app.token(Scope::EpochTime, "alice");
        let response = app.get("/epoch_time?user=alice", Some(&token)).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.jwks.fetches(), 1);
}

#[tokio::test]
async fn a_fetch_carries_the_request_id_of_the_call_that_needed_it() {
    let app = TestApp::spawn().await;
    let token = app.token(Scope::EpochTime, "alice");
    let response = app
        .client
        .get(format!("{}/epoch_time?user=alice", app.base))
        .bearer_auth(&token)
        .header("x-request-id", "needs-keys-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.jwks.request_ids(), ["needs-keys-1"]);
}

#[tokio::test]
async fn concurrent_unknown_kids_cause_one_fetch_per_interval() {
    let app = TestApp::spawn_with(|config| config.jwks_refetch_interval = SHORT).await;
    let token = app.token(Scope::EpochTime, "alice");
    assert_eq!(
        app.get("/epoch_time?user=alice", Some(&token))
            .await
            .status(),
        200
    );
    assert_eq!(app.jwks.fetches(), 1);

    app.clock.advance(SHORT);
    app.jwks.delay(Duration::from_millis(200));
    let stranger = TestKey::generate("unknown-kid");
    let token = stranger.token(Scope::EpochTime, "alice", app.now_secs());
    let requests: Vec<_> = (0..64)
        .map(|_| {
            let request = app
                .client
                .get(format!("{}/epoch_time?user=alice", app.base))
                .bearer_auth(&token);
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    for request in requests {
        assert_refused(request.await.unwrap(), 401, "invalid_token").await;
    }
    assert_eq!(
        app.jwks.fetches(),
        2,
        "one refetch for 64 concurrent requests"
    );

    // within the interval: no further fetch
    app.clock.advance(SHORT - Duration::from_millis(1));
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_refused(response, 401, "invalid_token").await;
    assert_eq!(app.jwks.fetches(), 2);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_the_old_one_dropped() {
    let app = TestApp::spawn_with(|config| config.jwks_refetch_interval = SHORT).await;
    let old = app.token(Scope::EpochTime, "alice");
    assert_eq!(
        app.get("/epoch_time?user=alice", Some(&old)).await.status(),
        200
    );

    let next = TestKey::generate("key-2");
    app.jwks.serve_keys(vec![next.jwk()]);
    app.clock.advance(SHORT);
    let token = next.token(Scope::EpochTime, "alice", app.now_secs());
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.jwks.fetches(), 2);

    // the refetched set replaced the old one: key-1 is no longer trusted, even for a fresh token
    let old = app.token(Scope::EpochTime, "alice");
    let response = app.get("/epoch_time?user=alice", Some(&old)).await;
    assert_refused(response, 401, "invalid_token").await;
}

#[tokio::test]
async fn an_unreachable_jwks_is_503_and_healthz_still_answers() {
    let config = config(&closed_url().await);
    let clock = std::sync::Arc::new(common::clock::ManualClock::new(
        std::time::UNIX_EPOCH + Duration::from_secs(START),
    ));
    let base = start_resource_server(config, clock).await;
    let key = TestKey::generate("key-1");
    let token = key.token(Scope::EpochTime, "alice", START);
    let response = reqwest::Client::new()
        .get(format!("{base}/epoch_time?user=alice"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_refused(response, 503, "temporarily_unavailable").await;
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_broken_jwks_is_503_until_it_recovers() {
    let app = TestApp::spawn_with(|config| config.jwks_refetch_interval = SHORT).await;
    app.jwks.answer_with(StatusCode::INTERNAL_SERVER_ERROR);
    let token = app.token(Scope::EpochTime, "alice");
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_refused(response, 503, "temporarily_unavailable").await;
    // rate-limited: failing again within the interval without fetching
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_refused(response, 503, "temporarily_unavailable").await;
    assert_eq!(app.jwks.fetches(), 1);

    app.jwks.answer_with(StatusCode::OK);
    app.clock.advance(SHORT - Duration::from_millis(1));
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_refused(response, 503, "temporarily_unavailable").await;
    assert_eq!(
        app.jwks.fetches(),
        1,
        "a millisecond before the interval ends"
    );
    app.clock.advance(Duration::from_millis(1));
    let token = app.token(Scope::EpochTime, "alice");
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.jwks.fetches(), 2);
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_jwks_is_down() {
    let app = TestApp::spawn_with(|config| config.jwks_refetch_interval = SHORT).await;
    let token = app.token(Scope::EpochTime, "alice");
    assert_eq!(
        app.get("/epoch_time?user=alice", Some(&token))
            .await
            .status(),
        200
    );
    app.jwks.answer_with(StatusCode::BAD_GATEWAY);
    app.clock.advance(SHORT);
    let token = app.token(Scope::EpochTime, "alice");
    assert_eq!(
        app.get("/epoch_time?user=alice", Some(&token))
            .await
            .status(),
        200
    );
    assert_eq!(app.jwks.fetches(), 1);
}

#[tokio::test]
async fn keys_for_another_algorithm_are_not_trusted() {
    let app = TestApp::spawn().await;
    let mut jwk = app.key.jwk();
    jwk["alg"] = "ES256".into();
    app.jwks.serve_keys(vec![jwk]);
    let token = app.token(Scope::EpochTime, "alice");
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_refused(response, 401, "invalid_token").await;
}
