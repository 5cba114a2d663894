//! The JWKS cache: fetched when first needed, refetched (rate-limited, single-flight) on an
//! unknown `kid` and once older than the response's `max-age`, replaced on refetch, 503 when it
//! cannot be fetched. The refetch interval and the max-age run on the injected clock: the tests
//! move it instead of sleeping.

use std::time::Duration;

use axum::http::StatusCode;
use oauth::Scope;

use crate::helpers::*;

/// The refetch interval of the tests that need one; the manual clock is moved past it.
const SHORT: Duration = Duration::from_secs(10);

/// A refetch interval below the max-age, so that the max-age alone decides when a set is stale.
const REFETCH: Duration = Duration::from_secs(1);

/// The max-age without a usable `Cache-Control` (the authorization server's default too).
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5);

const MILLISECOND: Duration = Duration::from_millis(1);

async fn spawn_refreshing() -> TestApp {
    TestApp::spawn_with(|config| config.jwks_refetch_interval = REFETCH).await
}

/// `GET /epoch_time` with `token`, in a task of its own.
fn spawn_call(app: &TestApp, token: &str) -> tokio::task::JoinHandle<reqwest::Response> {
    let request = app
        .client
        .get(format!("{}/epoch_time?user=alice", app.base))
        .bearer_auth(token);
    tokio::spawn(async move { request.send().await.unwrap() })
}

/// A call with a token of `app.key` signed now (expiry cannot decide the outcome).
async fn call_with_fresh_token(app: &TestApp) -> reqwest::Response {
    let token = app.token(Scope::EpochTime, "alice");
    app.get("/epoch_time?user=alice", Some(&token)).await
}

/// The JWKS answers with `cache_control`; the key the server trusts is then dropped from it: it
/// must still validate a millisecond before `trusted_for` has passed since the fetch, and be
/// refused from then on.
async fn assert_a_retired_key_is_trusted_for(cache_control: Option<&str>, trusted_for: Duration) {
    let app = spawn_refreshing().await;
    app.jwks.cache_control(cache_control);
    assert_eq!(call_with_fresh_token(&app).await.status(), 200);
    let next = TestKey::generate("key-2");
    app.jwks.serve_keys(vec![next.jwk()]);

    app.clock.advance(trusted_for - MILLISECOND);
    let response = call_with_fresh_token(&app).await;
    assert_eq!(response.status(), 200, "{cache_control:?}");
    assert_eq!(
        app.jwks.fetches(),
        1,
        "{cache_control:?}: fresh, not refetched"
    );

    app.clock.advance(MILLISECOND);
    assert_refused(call_with_fresh_token(&app).await, 401, "invalid_token").await;
    assert_eq!(app.jwks.fetches(), 2, "{cache_control:?}");
    let token = next.token(Scope::EpochTime, "alice", app.now_secs());
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_eq!(response.status(), 200, "the key still published works");
}

#[tokio::test]
async fn a_retired_key_validates_until_the_max_age_ends_then_is_refused() {
    assert_a_retired_key_is_trusted_for(Some("public, max-age=30"), Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_missing_or_unusable_max_age_is_5_s_and_a_long_one_300_s() {
    for (cache_control, trusted_for) in [
        (None, DEFAULT_MAX_AGE),
        (Some("public, max-age=soon"), DEFAULT_MAX_AGE),
        (Some("public, max-age=-3"), DEFAULT_MAX_AGE),
        (Some("public, s-maxage=60"), DEFAULT_MAX_AGE),
        (Some("public, max-age=3600"), Duration::from_secs(300)),
        (
            Some("public, max-age=99999999999999999999999999"),
            Duration::from_secs(300),
        ),
    ] {
        assert_a_retired_key_is_trusted_for(cache_control, trusted_for).await;
    }
}

/// A server whose key set has just gone stale, with its JWKS holding answers, and a token.
async fn stale_with_held_jwks() -> (TestApp, String) {
    let app = spawn_refreshing().await;
    assert_eq!(call_with_fresh_token(&app).await.status(), 200);
    app.jwks.hold();
    app.clock.advance(DEFAULT_MAX_AGE);
    let token = app.token(Scope::EpochTime, "alice");
    (app, token)
}

#[tokio::test]
async fn requests_during_a_refresh_are_answered_from_the_old_set() {
    let (app, token) = stale_with_held_jwks().await;
    let refreshing = spawn_call(&app, &token);
    app.jwks.wait_for_fetches(2).await;

    assert_eq!(call_with_fresh_token(&app).await.status(), 200);
    assert!(
        !refreshing.is_finished(),
        "answered while the refresh is held"
    );
    assert_eq!(app.jwks.fetches(), 2, "no second refresh");
    app.jwks.release();
    assert_eq!(refreshing.await.unwrap().status(), 200);
}

#[tokio::test]
async fn concurrent_requests_after_expiry_cause_one_fetch() {
    let (app, token) = stale_with_held_jwks().await;
    let requests: Vec<_> = (0..32).map(|_| spawn_call(&app, &token)).collect();
    app.jwks.wait_for_fetches(2).await;
    app.jwks.release();
    for request in requests {
        assert_eq!(request.await.unwrap().status(), 200);
    }
    assert_eq!(
        app.jwks.fetches(),
        2,
        "one refresh for 32 concurrent requests"
    );
    assert_eq!(
        app.metric(r#"jwks_fetches_total{outcome="ok",reason="expired"}"#)
            .await,
        Some(1.0)
    );
}

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
    app.jwks.hold();
    let stranger = TestKey::generate("unknown-kid");
    let token = stranger.token(Scope::EpochTime, "alice", app.now_secs());
    let requests: Vec<_> = (0..64).map(|_| spawn_call(&app, &token)).collect();
    // The refetch is held until the other calls have had their turns to arrive and wait for it
    // (one thread runs them all: loopback I/O is seen at each yield). One arriving later still
    // finds the fetch done within the interval, so the count below holds either way.
    app.jwks.wait_for_fetches(2).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    app.jwks.release();
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
async fn a_failed_refresh_keeps_the_old_set_and_is_retried_after_the_refetch_interval() {
    let app = spawn_refreshing().await;
    assert_eq!(call_with_fresh_token(&app).await.status(), 200);
    app.jwks.answer_with(StatusCode::BAD_GATEWAY);
    app.clock.advance(DEFAULT_MAX_AGE);
    assert_eq!(call_with_fresh_token(&app).await.status(), 200);
    assert_eq!(app.jwks.fetches(), 2, "the refresh was tried");
    assert_eq!(
        app.metric(r#"jwks_fetches_total{outcome="failed",reason="expired"}"#)
            .await,
        Some(1.0)
    );

    app.clock.advance(REFETCH - MILLISECOND);
    assert_eq!(call_with_fresh_token(&app).await.status(), 200);
    assert_eq!(
        app.jwks.fetches(),
        2,
        "not retried within the refetch interval"
    );

    // recovered, and key-1 retired meanwhile: the retry replaces the set
    app.jwks.answer_with(StatusCode::OK);
    app.jwks.serve_keys(vec![TestKey::generate("key-2").jwk()]);
    app.clock.advance(MILLISECOND);
    assert_refused(call_with_fresh_token(&app).await, 401, "invalid_token").await;
    assert_eq!(app.jwks.fetches(), 3);
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

/// The JWKS is read up to `MAX_JWKS_BYTES` (256 KiB, above the client's default limit for other
/// answers) and no further: a larger one is not held, and the call is 503.
#[tokio::test]
async fn a_jwks_larger_than_its_limit_is_not_read() {
    let app = TestApp::spawn_with(|config| config.jwks_refetch_interval = SHORT).await;
    // a key of another type, dropped as unusable, whose only job is the size of the document
    let padded = |bytes: usize| {
        let padding = serde_json::json!({ "kty": "oct", "kid": "pad", "k": "A".repeat(bytes) });
        vec![app.key.jwk(), padding]
    };
    app.jwks
        .serve_keys(padded(resource_server::jwks::MAX_JWKS_BYTES));
    let token = app.token(Scope::EpochTime, "alice");
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_refused(response, 503, "temporarily_unavailable").await;

    app.jwks
        .serve_keys(padded(resource_server::jwks::MAX_JWKS_BYTES - 1024));
    app.clock.advance(SHORT);
    let token = app.token(Scope::EpochTime, "alice");
    let response = app.get("/epoch_time?user=alice", Some(&token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.jwks.fetches(), 2);
}
